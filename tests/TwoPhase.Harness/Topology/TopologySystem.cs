namespace TwoPhase.Harness.Topology;

/// <summary>
/// The reference system as several hosts on one machine: a PostgreSQL cluster per service, N replicas of each
/// service, an HAProxy per service in front of its replicas; each node in a network namespace of its own on one
/// bridge (10.211.0.0/24), or everything on 127.0.0.1 without namespaces. Disposal removes all of it.
/// </summary>
public sealed class TopologySystem : IAsyncDisposable
{
    private readonly List<TopologyNode> _nodes = [];

    private TopologySystem(TopologyOptions options) => Options = options;

    public TopologyOptions Options { get; }

    public IReadOnlyList<TopologyNode> Nodes => _nodes;

    public TopologyNode this[string name] => _nodes.FirstOrDefault(n => n.Name == name) ?? throw new KeyNotFoundException($"No node '{name}' in the topology ({string.Join(", ", _nodes.Select(n => n.Name))}).");

    public string Secret { get; private set; } = "";

    public LinkFaults? Links { get; private set; }

    public static Task<TopologySystem> StartAsync(TopologyOptions options, Action<string>? log = null, CancellationToken cancellationToken = default) => throw new NotImplementedException();

    public static void RemoveLeftovers() => throw new NotImplementedException();

    public IReadOnlyList<TopologyNode> Replicas(ServiceKind kind) => [.. _nodes.Where(n => n.Service == kind && n.Role is NodeRole.Coordinator or NodeRole.Participant)];

    public TopologyNode BalancerOf(ServiceKind kind) => this["lb-" + kind.ShortName()];

    public TopologyNode DatabaseOf(ServiceKind kind) => this["pg-" + kind.ShortName()];

    public Uri EntryUrl(ServiceKind kind) => BalancerOf(kind).Url!;

    public Task KillAsync(TopologyNode node, CancellationToken cancellationToken = default) => throw new NotImplementedException();

    public Task RestartAsync(TopologyNode node, CancellationToken cancellationToken = default) => throw new NotImplementedException();

    public void Pause(TopologyNode node) => throw new NotImplementedException();

    public void Resume(TopologyNode node) => throw new NotImplementedException();

    public Task WaitAllReadyAsync(TimeSpan timeout, CancellationToken cancellationToken = default) => throw new NotImplementedException();

    public ValueTask DisposeAsync() => throw new NotImplementedException();
}
