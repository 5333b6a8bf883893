namespace TwoPhase.Harness.Topology;

/// <summary>
/// What a <see cref="TopologySystem"/> runs: how many replicas of each service, whether each node gets a network
/// namespace of its own (so links between nodes can be cut) or everything runs on 127.0.0.1, and the services' settings.
/// </summary>
public sealed record TopologyOptions
{
    /// <summary>The most replicas of one service (addresses are laid out for this many).</summary>
    public const int MaxReplicas = 9;

    /// <summary>Order-service replicas: one coordinator group sharing one decision log (one database).</summary>
    public int Coordinators { get; init; } = 3;

    public int StorageReplicas { get; init; } = 2;

    public int DeliveryReplicas { get; init; } = 2;

    /// <summary>
    /// True: every node in a namespace <c>tp-&lt;node&gt;</c> on the bridge <c>tp-br0</c> (10.211.0.0/24), link faults
    /// available; needs root, ip, nft, tc. False: everything on 127.0.0.1 on free ports, no link faults (bench).
    /// </summary>
    public bool Namespaces { get; init; } = true;

    /// <summary>Debug or Release: which build output of the services to run.</summary>
    public string Configuration { get; init; } = RepoLocator.BuildConfiguration;

    /// <summary>Logs, configs, data; a temporary folder (removed at disposal unless TWOPHASE_E2E_KEEP=1) when null.</summary>
    public string? Folder { get; init; }

    public RecoverySettings? Recovery { get; init; }

    public int? PrepareDeadlineMs { get; init; }

    public string LogLevel { get; init; } = "Warning";

    public bool BatchMessages { get; init; } = true;

    /// <summary><c>TwoPhase__Database__MaxPoolSize</c> of every replica; null: what the database's connection limit allows for all replicas.</summary>
    public int? PoolSizePerService { get; init; }

    /// <summary><c>TwoPhase__Coordinator__Group</c> of every order replica.</summary>
    public string CoordinatorGroup { get; init; } = "orders";

    public bool SeedEnabled { get; init; }

    /// <summary>Extra environment for every replica, applied last.</summary>
    public IReadOnlyDictionary<string, string> ExtraEnvironment { get; init; } = new Dictionary<string, string>();

    /// <summary>How long each replica (and the whole system at start) may take to become ready.</summary>
    public TimeSpan ReadyTimeout { get; init; } = TimeSpan.FromSeconds(120);
}

/// <summary>What a node of the topology is.</summary>
public enum NodeRole
{
    /// <summary>An order-service replica.</summary>
    Coordinator,

    /// <summary>A storage or delivery replica.</summary>
    Participant,

    /// <summary>A service's PostgreSQL cluster.</summary>
    Database,

    /// <summary>A service's HAProxy.</summary>
    Balancer,
}

/// <summary>One host of the topology: a replica, a database or a balancer, with its address (and namespace).</summary>
public sealed class TopologyNode
{
    internal TopologyNode(string name, NodeRole role, ServiceKind service, string address, string? @namespace)
    {
        Name = name;
        Role = role;
        Service = service;
        Address = address;
        Namespace = @namespace;
    }

    /// <summary>"order-1", "storage-2", "pg-order", "lb-delivery", ...</summary>
    public string Name { get; }

    public NodeRole Role { get; }

    /// <summary>The service the node belongs to (pg-order and lb-order: Order).</summary>
    public ServiceKind Service { get; }

    /// <summary>10.211.0.N with namespaces, else 127.0.0.1.</summary>
    public string Address { get; }

    /// <summary>"tp-order-1" etc.; null without namespaces.</summary>
    public string? Namespace { get; }

    /// <summary>Replicas only.</summary>
    public ServiceProcess? Process { get; internal set; }

    /// <summary>Databases only.</summary>
    public PostgresCluster? Database { get; internal set; }

    /// <summary>Balancers only.</summary>
    public HaProxy? Balancer { get; internal set; }

    /// <summary>Replicas and balancers: http://Address:Port/.</summary>
    public Uri? Url { get; internal set; }

    /// <summary>The port it listens on (the database's too).</summary>
    internal int Port { get; set; }

    public override string ToString() => $"{Name} ({Role}, {Address}{(Port > 0 ? $":{Port}" : "")})";
}
