using TwoPhase.Harness.Topology;

namespace TwoPhase.Harness.Faults;

/// <summary>The nemeses of a topology run, as Jepsen names the network ones, plus the process and database faults.</summary>
public enum NemesisKind
{
    /// <summary>One node cut from every other node and from the harness, both ways.</summary>
    Isolate,

    /// <summary>The nodes in two random halves; no packet crosses between them.</summary>
    Split,

    /// <summary>Two halves and one node that sees both (Jepsen's bridge).</summary>
    Bridge,

    /// <summary>Random loss, both ways, between two nodes that talk to each other.</summary>
    FlakyLink,

    /// <summary>A token bucket (tbf) on one node's interface.</summary>
    SlowLink,

    /// <summary>kill -9 of a replica or a balancer, restart after the duration.</summary>
    Kill,

    /// <summary>SIGSTOP of a replica, balancer or database, SIGCONT after the duration.</summary>
    Pause,

    /// <summary>Immediate stop of a service's PostgreSQL cluster, start after the duration.</summary>
    DatabaseKill,
}

/// <summary>One planned fault.</summary>
/// <param name="Kind">The nemesis.</param>
/// <param name="Nodes">Every node it touches (for Split and Bridge every node of the topology).</param>
/// <param name="Description">What it does, for the report.</param>
/// <param name="Duration">How long it lasts before it is healed.</param>
public sealed record NemesisEvent(NemesisKind Kind, IReadOnlyList<string> Nodes, string Description, TimeSpan Duration)
{
    /// <summary>It starts once the load has started this order (0-based).</summary>
    public int AfterOrder { get; init; }

    /// <summary>Split and Bridge: the first half.</summary>
    public IReadOnlyList<string> HalfA { get; init; } = [];

    /// <summary>Split and Bridge: the second half.</summary>
    public IReadOnlyList<string> HalfB { get; init; } = [];

    /// <summary>Bridge: the node that sees both halves.</summary>
    public string? BridgeNode { get; init; }

    /// <summary>FlakyLink: the share of packets dropped.</summary>
    public int LossPercent { get; init; }

    /// <summary>SlowLink: the rate of the node's interface.</summary>
    public int KilobitsPerSecond { get; init; }

    /// <summary>Whether it acts on the network rules (at most one such fault at a time: <see cref="LinkFaults.HealAsync"/> heals them all).</summary>
    public bool IsLinkFault => Kind is NemesisKind.Isolate or NemesisKind.Split or NemesisKind.Bridge or NemesisKind.FlakyLink or NemesisKind.SlowLink;
}

/// <summary>A node as the schedule sees it: its name, role and service.</summary>
public sealed record NemesisNode(string Name, NodeRole Role, ServiceKind Service)
{
    public static NemesisNode From(TopologyNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        return new NemesisNode(node.Name, node.Role, node.Service);
    }

    /// <summary>The nodes a topology of these sizes has, named as <see cref="TopologySystem"/> names them.</summary>
    public static IReadOnlyList<NemesisNode> Layout(int coordinators, int storage, int delivery)
    {
        var nodes = new List<NemesisNode>();
        foreach (var (kind, count) in new[] { (ServiceKind.Order, coordinators), (ServiceKind.Storage, storage), (ServiceKind.Delivery, delivery) })
        {
            for (var i = 1; i <= count; i++)
            {
                nodes.Add(new NemesisNode($"{kind.ShortName()}-{i}", kind == ServiceKind.Order ? NodeRole.Coordinator : NodeRole.Participant, kind));
            }

            nodes.Add(new NemesisNode($"pg-{kind.ShortName()}", NodeRole.Database, kind));
            nodes.Add(new NemesisNode($"lb-{kind.ShortName()}", NodeRole.Balancer, kind));
        }

        return nodes;
    }
}

/// <summary>The bounds of a schedule.</summary>
public sealed record NemesisScheduleOptions
{
    /// <summary>How many faults.</summary>
    public int Faults { get; init; } = 100;

    /// <summary>Orders of the load the faults are laid over.</summary>
    public int Orders { get; init; } = 20_000;

    public TimeSpan MinDuration { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxDuration { get; init; } = TimeSpan.FromSeconds(4);

    /// <summary>FlakyLink drops between these shares of the packets.</summary>
    public int MinLossPercent { get; init; } = 20;

    public int MaxLossPercent { get; init; } = 60;

    /// <summary>SlowLink limits the interface to between these rates.</summary>
    public int MinKilobitsPerSecond { get; init; } = 64;

    public int MaxKilobitsPerSecond { get; init; } = 512;

    /// <summary>The most faults at once.</summary>
    public int MaxConcurrent { get; init; } = 2;
}

/// <summary>
/// A seeded random schedule over every nemesis and every kind of node. Kinds are dealt round-robin (so with at least as
/// many faults as kinds every kind appears), each kind deals its node roles round-robin (so every role it can hit is hit),
/// then the list is shuffled and laid over the load stratified, as <see cref="FaultPlan"/> does: each fault falls at a
/// random order within its own slot of the 5%-90% window.
/// </summary>
public static class NemesisSchedule
{
    private const double FirstShare = 0.05;
    private const double LastShare = 0.90;

    /// <summary>The node roles each nemesis can hit.</summary>
    public static IReadOnlyList<NodeRole> RolesOf(NemesisKind kind) => kind switch
    {
        NemesisKind.Kill => [NodeRole.Coordinator, NodeRole.Participant, NodeRole.Balancer],
        NemesisKind.Pause => [NodeRole.Coordinator, NodeRole.Participant, NodeRole.Balancer, NodeRole.Database],
        NemesisKind.DatabaseKill => [NodeRole.Database],
        _ => [NodeRole.Coordinator, NodeRole.Participant, NodeRole.Balancer, NodeRole.Database],
    };

    /// <summary>The smallest order count that leaves every fault its own order in the window.</summary>
    public static int MinOrders(int faults) => FaultPlan.MinOrders(faults);

    public static IReadOnlyList<NemesisEvent> Create(IReadOnlyList<NemesisNode> nodes, NemesisScheduleOptions options, int seed)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegative(options.Faults);
        if (options.MinDuration <= TimeSpan.Zero || options.MaxDuration < options.MinDuration)
        {
            throw new ArgumentException("Durations must be positive and MinDuration <= MaxDuration.", nameof(options));
        }

        if (options.Faults == 0)
        {
            return [];
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(options.Orders, MinOrders(options.Faults));
        foreach (var role in Enum.GetValues<NodeRole>())
        {
            if (!nodes.Any(n => n.Role == role))
            {
                throw new ArgumentException($"The topology has no {role} node.", nameof(nodes));
            }
        }

        var random = new Random(seed);
        var kinds = Enum.GetValues<NemesisKind>();
        var kindOrder = kinds.ToArray();
        random.Shuffle(kindOrder);
        var roleTurn = kinds.ToDictionary(k => k, _ => 0);
        var roleOrders = kinds.ToDictionary(k => k, k =>
        {
            var roles = RolesOf(k).ToArray();
            random.Shuffle(roles);
            return roles;
        });

        var events = new List<NemesisEvent>(options.Faults);
        for (var i = 0; i < options.Faults; i++)
        {
            var kind = kindOrder[i % kindOrder.Length];
            var roles = roleOrders[kind];
            var role = roles[roleTurn[kind]++ % roles.Length];
            events.Add(Make(kind, role, nodes, options, random));
        }

        var shuffled = events.ToArray();
        random.Shuffle(shuffled);
        var first = (int)(options.Orders * FirstShare);
        var slot = ((options.Orders * LastShare) - first) / shuffled.Length;
        for (var k = 0; k < shuffled.Length; k++)
        {
            var from = first + (int)Math.Ceiling(k * slot);
            var to = Math.Max(from + 1, first + (int)Math.Ceiling((k + 1) * slot));
            shuffled[k] = shuffled[k] with { AfterOrder = random.Next(from, to) };
        }

        return shuffled;
    }

    private static NemesisEvent Make(NemesisKind kind, NodeRole role, IReadOnlyList<NemesisNode> nodes, NemesisScheduleOptions o, Random random)
    {
        var duration = o.MinDuration + ((o.MaxDuration - o.MinDuration) * random.NextDouble());
        duration = TimeSpan.FromMilliseconds(Math.Round(duration.TotalMilliseconds));
        var ofRole = nodes.Where(n => n.Role == role).ToList();
        var target = ofRole[random.Next(ofRole.Count)];
        var all = nodes.Select(n => n.Name).ToList();
        switch (kind)
        {
            case NemesisKind.Split:
            {
                // The role picks a node that lands in the first half, so every role is seen on a side.
                var (a, b) = Halves(nodes.Where(n => n != target).ToList(), random, target);
                return new NemesisEvent(kind, all, $"split [{string.Join(" ", a)}] | [{string.Join(" ", b)}]", duration) { HalfA = a, HalfB = b };
            }

            case NemesisKind.Bridge:
            {
                // The role picks the bridge node.
                var (a, b) = Halves(nodes.Where(n => n != target).ToList(), random, null);
                return new NemesisEvent(kind, all, $"bridge {target.Name} between [{string.Join(" ", a)}] and [{string.Join(" ", b)}]", duration)
                {
                    HalfA = a, HalfB = b, BridgeNode = target.Name,
                };
            }

            case NemesisKind.FlakyLink:
            {
                var peers = Peers(target, nodes);
                var peer = peers[random.Next(peers.Count)];
                var percent = random.Next(o.MinLossPercent, o.MaxLossPercent + 1);
                return new NemesisEvent(kind, [target.Name, peer.Name], $"{percent}% loss {target.Name} <-> {peer.Name}", duration) { LossPercent = percent };
            }

            case NemesisKind.SlowLink:
            {
                var rate = random.Next(o.MinKilobitsPerSecond, o.MaxKilobitsPerSecond + 1);
                return new NemesisEvent(kind, [target.Name], $"{target.Name} at {rate} kbit/s", duration) { KilobitsPerSecond = rate };
            }

            case NemesisKind.Isolate:
                return new NemesisEvent(kind, [target.Name], $"isolate {target.Name}", duration);
            case NemesisKind.Kill:
                return new NemesisEvent(kind, [target.Name], $"kill -9 {target.Name}", duration);
            case NemesisKind.Pause:
                return new NemesisEvent(kind, [target.Name], $"SIGSTOP {target.Name}", duration);
            case NemesisKind.DatabaseKill:
                return new NemesisEvent(kind, [target.Name], $"immediate stop of {target.Name}", duration);
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, null);
        }
    }

    /// <summary>The rest in two non-empty random halves; <paramref name="first"/>, when given, goes to the first.</summary>
    private static (IReadOnlyList<string> A, IReadOnlyList<string> B) Halves(List<NemesisNode> rest, Random random, NemesisNode? first)
    {
        var shuffled = rest.ToArray();
        random.Shuffle(shuffled);
        var total = shuffled.Length + (first is null ? 0 : 1);
        var sizeA = Math.Max(1, total / 2);
        var a = new List<string>();
        if (first is not null)
        {
            a.Add(first.Name);
        }

        a.AddRange(shuffled.Take(sizeA - a.Count).Select(n => n.Name));
        var b = shuffled.Skip(sizeA - (first is null ? 0 : 1)).Select(n => n.Name).ToList();
        return (a, b);
    }

    /// <summary>The nodes that <paramref name="node"/> exchanges packets with: its balancer, its database, the balancers it calls.</summary>
    public static IReadOnlyList<NemesisNode> Peers(NemesisNode node, IReadOnlyList<NemesisNode> nodes)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(nodes);
        bool Talks(NemesisNode a, NemesisNode b) => (a.Role, b.Role) switch
        {
            (NodeRole.Coordinator or NodeRole.Participant, NodeRole.Database) => a.Service == b.Service,
            (NodeRole.Coordinator or NodeRole.Participant, NodeRole.Balancer) => a.Service == b.Service // its own balancer forwards to it
                || a.Role == NodeRole.Coordinator // the coordinator calls the participants' balancers
                || b.Service == ServiceKind.Order, // participants ask the coordinator group about in-doubt rows
            _ => false,
        };
        var peers = nodes.Where(n => n != node && (Talks(node, n) || Talks(n, node))).ToList();
        return peers.Count > 0 ? peers : nodes.Where(n => n != node).ToList();
    }

    /// <summary>
    /// What a fault needs undisturbed besides its own nodes: a killed replica's restart needs its database.
    /// </summary>
    public static IReadOnlySet<string> Footprint(NemesisEvent e, IReadOnlyList<NemesisNode> nodes)
    {
        ArgumentNullException.ThrowIfNull(e);
        ArgumentNullException.ThrowIfNull(nodes);
        var set = new HashSet<string>(e.Nodes, StringComparer.Ordinal);
        if (e.Kind == NemesisKind.Kill && nodes.FirstOrDefault(n => n.Name == e.Nodes[0]) is { Role: NodeRole.Coordinator or NodeRole.Participant } replica)
        {
            set.Add($"pg-{replica.Service.ShortName()}");
        }

        return set;
    }

    /// <summary>
    /// Whether <paramref name="next"/> may start while <paramref name="active"/> lasts: never two network faults (their rules
    /// heal together), never on a node the other touches or needs (so a restart always meets what it needs).
    /// </summary>
    public static bool CanOverlap(NemesisEvent active, NemesisEvent next, IReadOnlyList<NemesisNode> nodes)
    {
        ArgumentNullException.ThrowIfNull(active);
        ArgumentNullException.ThrowIfNull(next);
        if (active.IsLinkFault && next.IsLinkFault)
        {
            return false;
        }

        return !Footprint(active, nodes).Overlaps(Footprint(next, nodes));
    }
}
