namespace TwoPhase.Harness;

/// <summary>
/// Recovery intervals tighter than the services' defaults (DESIGN §2: recovery scan 1 s, in-doubt after 5 s, retries
/// capped at 5 s), so that faults heal within seconds. Null fields keep the services' defaults.
/// </summary>
public sealed record RecoverySettings
{
    /// <summary>What the end-to-end tests run with.</summary>
    public static RecoverySettings Quick { get; } = new()
    {
        CoordinatorScanMs = 200, DecisionTimeoutMs = 1000, CoordinatorRetryMaxDelayMs = 500,
        InDoubtAfterMs = 500, ParticipantCheckMs = 200, ParticipantRetryMaxDelayMs = 500,
    };

    /// <summary>What chaos runs with: quick enough to converge within seconds of the last restart, under load.</summary>
    public static RecoverySettings Chaos { get; } = new()
    {
        CoordinatorScanMs = 250, CoordinatorRetryMaxDelayMs = 1000,
        InDoubtAfterMs = 1000, ParticipantCheckMs = 250, ParticipantRetryMaxDelayMs = 1000,
    };

    public int? CoordinatorScanMs { get; init; }

    public int? DecisionTimeoutMs { get; init; }

    public int? CoordinatorRetryMaxDelayMs { get; init; }

    public int? InDoubtAfterMs { get; init; }

    public int? ParticipantCheckMs { get; init; }

    public int? ParticipantRetryMaxDelayMs { get; init; }

    /// <summary>The settings as environment variables of <paramref name="kind"/>.</summary>
    public IEnumerable<(string Key, int? Value)> For(ServiceKind kind) => kind == ServiceKind.Order
        ?
        [
            ("TwoPhase__Coordinator__RecoveryIntervalMs", CoordinatorScanMs),
            ("TwoPhase__Coordinator__DecisionTimeoutMs", DecisionTimeoutMs),
            ("TwoPhase__Coordinator__RetryMaxDelayMs", CoordinatorRetryMaxDelayMs),
        ]
        :
        [
            ("TwoPhase__Participant__InDoubtAfterMs", InDoubtAfterMs),
            ("TwoPhase__Participant__CheckIntervalMs", ParticipantCheckMs),
            ("TwoPhase__Participant__RetryMaxDelayMs", ParticipantRetryMaxDelayMs),
        ];
}

/// <summary>How to run the reference system: where it is built, its ports, stores, secret, faults and settings.</summary>
public sealed record SystemOptions
{
    /// <summary>The repository root (the folder with TwoPhase.slnx); the services run from src/&lt;Svc&gt;/bin/&lt;cfg&gt;/net10.0. Default: found above the current directory or this assembly.</summary>
    public string? RepoRoot { get; init; }

    /// <summary>Debug or Release: which build output to run. Default: the configuration this harness was built in.</summary>
    public string Configuration { get; init; } = RepoLocator.BuildConfiguration;

    /// <summary>The services' ports; null picks free ones (never 8000-8002).</summary>
    public ServicePorts? Ports { get; init; }

    /// <summary>The loopback address the services listen on; the design says loopback unless told otherwise.</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>
    /// Logs, SQLite files and the secret file go here. Null: a fresh temporary folder, removed at disposal (unless
    /// <c>TWOPHASE_E2E_KEEP=1</c>); a given folder is always kept.
    /// </summary>
    public string? Folder { get; init; }

    public Store Store { get; init; } = Store.Sqlite;

    /// <summary>With <see cref="Store.Postgres"/>: the server (a connection string without Database) every service gets its database on.</summary>
    public string? PostgresServer { get; init; }

    /// <summary>With <see cref="Store.Postgres"/>: a server of its own for these services, in place of <see cref="PostgresServer"/>.</summary>
    public IReadOnlyDictionary<ServiceKind, string> PostgresServers { get; init; } = new Dictionary<ServiceKind, string>();

    /// <summary>Start of the PostgreSQL database names (lowercase letters, digits, underscores); null: a random one.</summary>
    public string? DatabasePrefix { get; init; }

    /// <summary><c>TwoPhase__Database__MaxPoolSize</c> of each service; null: what the servers' connection limits allow.</summary>
    public int? PoolSizePerService { get; init; }

    /// <summary>Leave the PostgreSQL databases in place at disposal, for a look after the run.</summary>
    public bool KeepDatabases { get; init; }

    /// <summary>
    /// The shared secret the services authenticate each other with (<c>TwoPhase__Secret</c>); null: a fresh one per run.
    /// Ignored with <see cref="GeneratedSecret"/>.
    /// </summary>
    public string? Secret { get; init; }

    /// <summary>
    /// Configure no secret, as on a fresh machine: the services must find one themselves in the cookie file
    /// (<see cref="ReferenceSystem.SecretFile"/>); the system's <see cref="ReferenceSystem.Secret"/> is then what they wrote there.
    /// </summary>
    public bool GeneratedSecret { get; init; }

    /// <summary>Whether the services seed their own demo data (<c>Seed__Enabled</c>); the CLI and the tests seed through the API instead.</summary>
    public bool SeedEnabled { get; init; }

    /// <summary>Services started by <see cref="ReferenceSystem.StartAsync(CancellationToken)"/>; the others stay down until started.</summary>
    public IReadOnlySet<ServiceKind> StartNow { get; init; } = new HashSet<ServiceKind>(ServiceKinds.All);

    /// <summary>The one service that gets <c>TWOPHASE_CRASH_AT</c> at its first start, and the point.</summary>
    public (ServiceKind Service, string Point)? CrashAt { get; init; }

    /// <summary>Put a <see cref="FaultProxy"/> between the coordinator and these participants.</summary>
    public IReadOnlySet<ServiceKind> Proxied { get; init; } = new HashSet<ServiceKind>();

    /// <summary>How the proxies are set up.</summary>
    public FaultProxyOptions? ProxyOptions { get; init; }

    /// <summary><c>v1</c> or <c>legacy</c>: how the coordinator talks to delivery.</summary>
    public string DeliveryProtocol { get; init; } = "v1";

    /// <summary>The coordinator batches protocol messages (the default) or sends one request per message.</summary>
    public bool BatchMessages { get; init; } = true;

    /// <summary><c>TwoPhase__Coordinator__PrepareDeadlineMs</c>; null: the service's default.</summary>
    public int? PrepareDeadlineMs { get; init; }

    /// <summary>Recovery intervals; null: the services' defaults.</summary>
    public RecoverySettings? Recovery { get; init; }

    /// <summary>The services' default log level (<c>Logging__LogLevel__Default</c>).</summary>
    public string LogLevel { get; init; } = "Information";

    /// <summary>Extra environment for every service, applied after the settings above.</summary>
    public IReadOnlyDictionary<string, string> ExtraEnvironment { get; init; } = new Dictionary<string, string>();

    /// <summary>More configuration for one service, as <c>Section__Key</c> environment variables; applied last.</summary>
    public IReadOnlyDictionary<ServiceKind, IReadOnlyDictionary<string, string>> Environment { get; init; } =
        new Dictionary<ServiceKind, IReadOnlyDictionary<string, string>>();

    /// <summary>How long each service may take to become ready.</summary>
    public TimeSpan ReadyTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>The dotnet host that runs the service assemblies.</summary>
    public string DotnetPath { get; init; } = DotnetHost.Path;
}
