using System.Globalization;

namespace TwoPhase.Harness.Topology;

/// <summary>
/// Per-link faults between nodes by name ("harness" names the root namespace, 10.211.0.1), made with nft and tc inside
/// the nodes' namespaces: one table <c>inet twophase_faults</c> per namespace (input and output chains), a tbf qdisc on
/// a node's eth0 for a slow link. A fault that involves the harness is applied on the node's side only: the root
/// namespace's own firewall is never touched. <see cref="HealAsync"/> removes every fault.
/// </summary>
public sealed class LinkFaults
{
    /// <summary>The name of the root namespace's side (the harness: load, audit) in link faults.</summary>
    public const string Harness = "harness";

    private const string Table = "twophase_faults";
    private static readonly Lazy<bool> Netem = new(ProbeNetem);

    private readonly IReadOnlyDictionary<string, (string Address, string Namespace)> _nodes;
    private readonly Lock _gate = new();
    private readonly List<string> _active = [];
    private readonly HashSet<string> _tables = new(StringComparer.Ordinal);
    private readonly HashSet<string> _qdiscs = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _serial = new(1, 1);

    internal LinkFaults(IReadOnlyDictionary<string, (string Address, string Namespace)> nodes) => _nodes = nodes;

    /// <summary>
    /// Whether tc netem works in this kernel: tried once in a scratch namespace (false where CONFIG_NET_SCH_NETEM is not
    /// set, as on the machine this was written on).
    /// </summary>
    public static bool DelaySupported => Netem.Value;

    /// <summary>The faults in force, one line each ("cut order-1 -&gt; lb-storage", "loss 20% harness &lt;-&gt; lb-order", ...).</summary>
    public IReadOnlyList<string> Active
    {
        get
        {
            lock (_gate)
            {
                return [.. _active];
            }
        }
    }

    /// <summary>Packets from <paramref name="from"/> to <paramref name="to"/> are dropped (one way; replies the other way still flow).</summary>
    public Task CutAsync(string from, string to, CancellationToken cancellationToken = default) =>
        ApplyAsync($"cut {from} -> {to}", [Drop(from, to, "drop")], cancellationToken);

    /// <summary>Packets both ways between the two are dropped.</summary>
    public Task CutBothAsync(string a, string b, CancellationToken cancellationToken = default) =>
        ApplyAsync($"cut {a} <-> {b}", [Drop(a, b, "drop"), Drop(b, a, "drop")], cancellationToken);

    /// <summary>Each packet between the two, either way, dropped with probability <paramref name="percent"/> % (nft numgen).</summary>
    public Task LossAsync(string a, string b, int percent, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(percent, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(percent, 100);
        var verdict = $"numgen random mod 100 < {percent.ToString(CultureInfo.InvariantCulture)} drop";
        return ApplyAsync($"loss {percent}% {a} <-> {b}", [Drop(a, b, verdict), Drop(b, a, verdict)], cancellationToken);
    }

    /// <summary>Everything the node sends leaves at <paramref name="kilobitsPerSecond"/> (tbf on its eth0; what it receives is not limited).</summary>
    public async Task SlowAsync(string node, int kilobitsPerSecond, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(kilobitsPerSecond, 8);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(kilobitsPerSecond, 10_000_000);
        var (_, ns) = Resolve(node, allowHarness: false);
        // The bucket holds at least two full frames (else nothing larger than it ever leaves), or 20 ms at the rate.
        var burst = Math.Max(3_200, kilobitsPerSecond * 1000 / 8 / 50);
        await _serial.WaitAsync(cancellationToken);
        try
        {
            await Tc(ns, ["qdisc", "replace", "dev", TopologyNetwork.NodeInterface, "root", "tbf",
                "rate", $"{kilobitsPerSecond.ToString(CultureInfo.InvariantCulture)}kbit", "burst", burst.ToString(CultureInfo.InvariantCulture), "latency", "400ms"], cancellationToken);
            lock (_gate)
            {
                _qdiscs.Add(ns);
                _active.Add($"slow {node} {kilobitsPerSecond} kbit/s");
            }
        }
        finally
        {
            _serial.Release();
        }
    }

    /// <summary>
    /// Packets between the two, either way, held back by <paramref name="delay"/> (tc netem behind a prio qdisc, filtered by
    /// destination). With the harness on one side only the node's outgoing direction is delayed (the root namespace is
    /// never changed). <see cref="NotSupportedException"/> when <see cref="DelaySupported"/> is false.
    /// </summary>
    public async Task DelayAsync(string a, string b, TimeSpan delay, CancellationToken cancellationToken = default)
    {
        if (!DelaySupported)
        {
            throw new NotSupportedException("tc netem is not available in this kernel (CONFIG_NET_SCH_NETEM), so links cannot be delayed here.");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(delay, TimeSpan.FromMilliseconds(1));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(delay, TimeSpan.FromSeconds(30));
        var ms = ((int)delay.TotalMilliseconds).ToString(CultureInfo.InvariantCulture) + "ms";
        await _serial.WaitAsync(cancellationToken);
        try
        {
            foreach (var (source, target) in new[] { (a, b), (b, a) })
            {
                if (source == Harness)
                {
                    continue;
                }

                var (_, ns) = Resolve(source, allowHarness: false);
                var (address, _) = Resolve(target, allowHarness: true);
                bool fresh;
                lock (_gate)
                {
                    fresh = _qdiscs.Add(ns);
                }

                if (fresh)
                {
                    await Tc(ns, ["qdisc", "replace", "dev", TopologyNetwork.NodeInterface, "root", "handle", "1:", "prio", "bands", "4", "priomap", "1", "2", "2", "2", "1", "2", "0", "0", "1", "1", "1", "1", "1", "1", "1", "1"], cancellationToken);
                    await Tc(ns, ["qdisc", "add", "dev", TopologyNetwork.NodeInterface, "parent", "1:4", "handle", "40:", "netem", "delay", ms], cancellationToken);
                }

                await Tc(ns, ["filter", "add", "dev", TopologyNetwork.NodeInterface, "parent", "1:", "protocol", "ip", "u32", "match", "ip", "dst", address + "/32", "flowid", "1:4"], cancellationToken);
            }

            lock (_gate)
            {
                _active.Add($"delay {ms} {a} <-> {b}");
            }
        }
        finally
        {
            _serial.Release();
        }
    }

    /// <summary>Every fault removed: each namespace's table deleted, each qdisc put back to the default.</summary>
    public async Task HealAsync(CancellationToken cancellationToken = default)
    {
        await _serial.WaitAsync(cancellationToken);
        try
        {
            string[] tables, qdiscs;
            lock (_gate)
            {
                tables = [.. _tables];
                qdiscs = [.. _qdiscs];
            }

            foreach (var ns in tables)
            {
                await Nft(ns, ["delete", "table", "inet", Table], cancellationToken);
                lock (_gate)
                {
                    _tables.Remove(ns);
                }
            }

            foreach (var ns in qdiscs)
            {
                await Tc(ns, ["qdisc", "del", "dev", TopologyNetwork.NodeInterface, "root"], cancellationToken);
                lock (_gate)
                {
                    _qdiscs.Remove(ns);
                }
            }

            lock (_gate)
            {
                _active.Clear();
            }
        }
        finally
        {
            _serial.Release();
        }
    }

    /// <summary>
    /// One direction's rule: at the sender's output when the sender is a node (to the receiver's address), else (the
    /// harness sends) at the receiver's input from the harness's address.
    /// </summary>
    private (string Namespace, string Rule) Drop(string from, string to, string verdict)
    {
        if (from == to)
        {
            throw new ArgumentException($"A link needs two ends; both are '{from}'.", nameof(to));
        }

        var (fromAddress, fromNs) = Resolve(from, allowHarness: true);
        var (toAddress, toNs) = Resolve(to, allowHarness: true);
        return from == Harness
            ? (toNs, $"add rule inet {Table} input ip saddr {fromAddress} {verdict}")
            : (fromNs, $"add rule inet {Table} output ip daddr {toAddress} {verdict}");
    }

    private (string Address, string Namespace) Resolve(string node, bool allowHarness)
    {
        if (node == Harness)
        {
            return allowHarness ? (TopologyNetwork.HarnessAddress, "") : throw new ArgumentException("This fault applies to a node, not the harness.", nameof(node));
        }

        return _nodes.TryGetValue(node, out var found)
            ? found
            : throw new ArgumentException($"No node '{node}' (nodes: {string.Join(", ", _nodes.Keys)}, and '{Harness}').", nameof(node));
    }

    private async Task ApplyAsync(string description, IReadOnlyList<(string Namespace, string Rule)> rules, CancellationToken ct)
    {
        await _serial.WaitAsync(ct);
        try
        {
            foreach (var (ns, rule) in rules)
            {
                bool fresh;
                lock (_gate)
                {
                    fresh = !_tables.Contains(ns);
                }

                if (fresh)
                {
                    // A priority before the default filter hooks, so the fault wins over anything else there.
                    await NftScript(ns, $$"""
                        table inet {{Table}} {
                            chain input { type filter hook input priority -50; policy accept; }
                            chain output { type filter hook output priority -50; policy accept; }
                        }
                        """, ct);
                    lock (_gate)
                    {
                        _tables.Add(ns);
                    }
                }

                await NftScript(ns, rule + "\n", ct);
            }

            lock (_gate)
            {
                _active.Add(description);
            }
        }
        finally
        {
            _serial.Release();
        }
    }

    private static Task Nft(string ns, string[] arguments, CancellationToken ct) =>
        HostCommand.RunAsync("ip", ["netns", "exec", ns, "nft", .. arguments], cancellationToken: ct);

    private static Task NftScript(string ns, string script, CancellationToken ct) =>
        HostCommand.RunAsync("ip", ["netns", "exec", ns, "nft", "-f", "-"], standardInput: script, cancellationToken: ct);

    private static Task Tc(string ns, string[] arguments, CancellationToken ct) =>
        HostCommand.RunAsync("ip", ["netns", "exec", ns, "tc", .. arguments], cancellationToken: ct);

    private static bool ProbeNetem()
    {
        if (!TopologyNetwork.IsRoot || HostCommand.Find("ip") is null || HostCommand.Find("tc") is null)
        {
            return false;
        }

        var ns = $"tp-netem-{Environment.ProcessId % 100000}";
        try
        {
            HostCommand.Run("ip", ["netns", "add", ns]);
            HostCommand.Run("ip", ["-n", ns, "link", "set", "lo", "up"]);
            return HostCommand.Run("ip", ["netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"], check: false).ExitCode == 0;
        }
        catch (TopologyException)
        {
            return false;
        }
        finally
        {
            HostCommand.Run("ip", ["netns", "del", ns], check: false);
        }
    }
}
