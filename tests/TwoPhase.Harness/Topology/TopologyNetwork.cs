using System.Globalization;
using System.Net;

namespace TwoPhase.Harness.Topology;

/// <summary>
/// The hosts' network: the bridge <c>tp-br0</c> in the root namespace with 10.211.0.1/24 (the harness), and per node a
/// namespace <c>tp-&lt;node&gt;</c> with lo up and a veth pair, the root end (<c>tpv-&lt;node&gt;</c>) on the bridge, the node
/// end (<c>eth0</c>) with the node's 10.211.0.N/24. No default route in a node: it can reach only the subnet. Only this
/// subnet is ever configured; everything is removed again by <see cref="Remove"/> (or by <see cref="RemoveLeftovers"/>
/// after a run that was killed).
/// </summary>
internal sealed class TopologyNetwork
{
    public const string Bridge = "tp-br0";
    public const string HarnessAddress = "10.211.0.1";
    public const string Subnet = "10.211.0.0/24";
    public const string NamespacePrefix = "tp-";
    public const string NodeInterface = "eth0";

    private readonly List<string> _namespaces = [];
    private readonly Action<string> _log;

    public TopologyNetwork(Action<string> log) => _log = log;

    public IReadOnlyList<string> Namespaces => _namespaces;

    /// <summary>Root, and ip, nft, tc and haproxy on the machine; otherwise a message naming what is missing.</summary>
    public static void CheckPrerequisites()
    {
        var missing = new List<string>();
        if (!IsRoot)
        {
            missing.Add("root (network namespaces, veth pairs and nft rules need it; run as root or use Namespaces=false)");
        }

        foreach (var (tool, package) in new[] { ("ip", "iproute2"), ("nft", "nftables"), ("tc", "iproute2"), ("haproxy", "haproxy") })
        {
            if (HostCommand.Find(tool) is null)
            {
                missing.Add($"{tool} (apt-get install {package})");
            }
        }

        if (missing.Count > 0)
        {
            throw new TopologyException("The topology with namespaces cannot start; missing: " + string.Join("; ", missing) + ".");
        }
    }

    /// <summary>haproxy alone (the topology without namespaces needs only it).</summary>
    public static void CheckHaProxy()
    {
        if (HostCommand.Find("haproxy") is null)
        {
            throw new TopologyException("The topology cannot start: haproxy is not installed (apt-get install haproxy).");
        }
    }

    public static bool IsRoot => Environment.UserName == "root";

    /// <summary>The namespace name of a node.</summary>
    public static string NamespaceOf(string node) => NamespacePrefix + node;

    /// <summary>The root end of a node's veth pair (at most 15 characters: the kernel's limit).</summary>
    public static string VethOf(string node)
    {
        var name = "tpv-" + node;
        return name.Length <= 15 ? name : throw new ArgumentException($"Node name '{node}' makes a veth name longer than 15 characters.", nameof(node));
    }

    /// <summary>
    /// Removes every <c>tp-*</c> namespace (killing what still runs in it first, or the namespace and its veth would
    /// live on), any <c>tpv-*</c> veth left in the root namespace, and the bridge.
    /// </summary>
    public static void RemoveLeftovers(Action<string>? log = null)
    {
        if (!IsRoot || HostCommand.Find("ip") is null)
        {
            return;
        }

        var list = HostCommand.Run("ip", ["netns", "list"], check: false);
        foreach (var name in list.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                     .Select(l => l.Split(' ')[0])
                     .Where(n => n.StartsWith(NamespacePrefix, StringComparison.Ordinal)))
        {
            log?.Invoke($"removing leftover namespace {name}");
            DeleteNamespace(name);
        }

        var links = HostCommand.Run("ip", ["-o", "link", "show"], check: false).StandardOutput;
        foreach (var link in links.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                     .Select(l => l.Split(':', 3) is { Length: 3 } parts ? parts[1].Trim().Split('@')[0] : "")
                     .Where(n => n.StartsWith("tpv-", StringComparison.Ordinal)))
        {
            log?.Invoke($"removing leftover veth {link}");
            HostCommand.Run("ip", ["link", "del", link], check: false);
        }

        if (HostCommand.Run("ip", ["link", "show", Bridge], check: false).ExitCode == 0)
        {
            log?.Invoke($"removing leftover bridge {Bridge}");
            HostCommand.Run("ip", ["link", "del", Bridge]);
        }
    }

    /// <summary>Refuses to touch a subnet that something else on this machine already routes or addresses.</summary>
    public static void CheckSubnetFree()
    {
        var ours = IPNetwork.Parse(Subnet);
        foreach (var table in new[] { "all" })
        {
            var routes = HostCommand.Run("ip", ["-4", "route", "show", "table", table]).StandardOutput;
            foreach (var line in routes.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                // "local 10.211.0.1 dev ..." and "broadcast ..." lead with the type; the prefix follows.
                var prefix = words[0] is "local" or "broadcast" or "unicast" or "multicast" or "blackhole" or "unreachable" or "prohibit" or "throw" or "anycast" && words.Length > 1 ? words[1] : words[0];
                if (prefix == "default" || !TryParseNetwork(prefix, out var network))
                {
                    continue;
                }

                if (Overlaps(ours, network))
                {
                    throw new TopologyException($"{Subnet} is already in use on this machine (route `{line}`); the topology uses only that subnet and will not share it. Remove what uses it (TopologySystem.RemoveLeftovers() removes what an earlier run left).");
                }
            }
        }
    }

    public void CreateBridge()
    {
        HostCommand.Run("ip", ["link", "add", Bridge, "type", "bridge"]);
        HostCommand.Run("ip", ["addr", "add", HarnessAddress + "/24", "dev", Bridge]);
        HostCommand.Run("ip", ["link", "set", Bridge, "up"]);
        _log($"bridge {Bridge} with {HarnessAddress}/24");
    }

    /// <summary>The node's namespace, lo up, its veth pair on the bridge, its address.</summary>
    public void AddNode(string node, string address)
    {
        var ns = NamespaceOf(node);
        var veth = VethOf(node);
        HostCommand.Run("ip", ["netns", "add", ns]);
        _namespaces.Add(ns);
        HostCommand.Run("ip", ["-n", ns, "link", "set", "lo", "up"]);
        HostCommand.Run("ip", ["link", "add", veth, "type", "veth", "peer", "name", NodeInterface, "netns", ns]);
        HostCommand.Run("ip", ["link", "set", veth, "master", Bridge]);
        HostCommand.Run("ip", ["link", "set", veth, "up"]);
        HostCommand.Run("ip", ["-n", ns, "addr", "add", address + "/24", "dev", NodeInterface]);
        HostCommand.Run("ip", ["-n", ns, "link", "set", NodeInterface, "up"]);
    }

    /// <summary>Every namespace (and so every veth) and the bridge; errors are collected, not thrown half-way.</summary>
    public IReadOnlyList<string> Remove()
    {
        var problems = new List<string>();
        foreach (var ns in _namespaces)
        {
            try
            {
                DeleteNamespace(ns);
            }
            catch (TopologyException e)
            {
                problems.Add(e.Message);
            }
        }

        _namespaces.Clear();
        try
        {
            if (HostCommand.Run("ip", ["link", "show", Bridge], check: false).ExitCode == 0)
            {
                HostCommand.Run("ip", ["link", "del", Bridge]);
            }
        }
        catch (TopologyException e)
        {
            problems.Add(e.Message);
        }

        return problems;
    }

    /// <summary>Kills every process in the namespace (a namespace with processes in it outlives its deletion), then deletes it.</summary>
    private static void DeleteNamespace(string ns)
    {
        for (var round = 0; round < 50; round++)
        {
            var pids = HostCommand.Run("ip", ["netns", "pids", ns], check: false).StandardOutput
                .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(p => int.TryParse(p, CultureInfo.InvariantCulture, out var pid) ? pid : 0)
                .Where(p => p > 0)
                .ToList();
            if (pids.Count == 0)
            {
                break;
            }

            foreach (var pid in pids)
            {
                // SIGCONT first: a paused process dies of SIGKILL too, but its children may be stopped as well.
                HostCommand.Run("kill", ["-CONT", pid.ToString(CultureInfo.InvariantCulture)], check: false);
                HostCommand.Run("kill", ["-KILL", pid.ToString(CultureInfo.InvariantCulture)], check: false);
            }

            Thread.Sleep(100);
        }

        HostCommand.Run("ip", ["netns", "del", ns], check: false);
        var veth = "tpv-" + ns[NamespacePrefix.Length..];
        if (veth.Length <= 15 && HostCommand.Run("ip", ["link", "show", veth], check: false).ExitCode == 0)
        {
            HostCommand.Run("ip", ["link", "del", veth], check: false);
        }
    }

    private static bool TryParseNetwork(string text, out IPNetwork network)
    {
        if (IPNetwork.TryParse(text.Contains('/', StringComparison.Ordinal) ? text : text + "/32", out network))
        {
            return true;
        }

        return false;
    }

    private static bool Overlaps(IPNetwork a, IPNetwork b) => a.Contains(b.BaseAddress) || b.Contains(a.BaseAddress);
}
