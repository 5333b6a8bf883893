namespace TwoPhase.Cli.Hosting;

/// <summary>How to start the three services: where they are built, their ports, stores and shared secret.</summary>
public sealed record SystemUnderTestOptions
{
    /// <summary>The repository root (the folder with TwoPhase.slnx); the services run from src/&lt;Svc&gt;/bin/&lt;cfg&gt;/net10.0.</summary>
    public required string RepoRoot { get; init; }

    /// <summary>Debug or Release: which build output to run.</summary>
    public string Configuration { get; init; } = "Debug";

    public ServicePorts Ports { get; init; } = ServicePorts.Default;

    /// <summary>The loopback address the services listen on; the design says loopback unless told otherwise.</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>Each service's own store.</summary>
    public required IReadOnlyDictionary<ServiceKind, DatabaseSetup> Databases { get; init; }

    /// <summary>The shared secret the services use to authenticate each other (<c>TwoPhase__Secret</c>).</summary>
    public required string Secret { get; init; }

    /// <summary>Where the services' logs go, one file per service.</summary>
    public required string LogFolder { get; init; }

    /// <summary>Whether the services seed their own demo data (<c>Seed__Enabled</c>); the CLI seeds through the API instead.</summary>
    public bool SeedEnabled { get; init; }

    /// <summary>The coordinator protocol for both participants (<c>v1</c> or <c>legacy</c>).</summary>
    public string ParticipantProtocol { get; init; } = "v1";

    /// <summary>
    /// Where the coordinator reaches each participant, when not at the participant's own URL: chaos puts a fault
    /// proxy in between. Participants still reach the coordinator directly.
    /// </summary>
    public IReadOnlyDictionary<ServiceKind, Uri> ParticipantUrls { get; init; } = new Dictionary<ServiceKind, Uri>();

    /// <summary>Extra environment for every service, e.g. shorter timeouts in tests; applied after the defaults.</summary>
    public IReadOnlyDictionary<string, string> ExtraEnvironment { get; init; } = new Dictionary<string, string>();

    /// <summary>Extra environment for one service; applied last.</summary>
    public IReadOnlyDictionary<ServiceKind, IReadOnlyDictionary<string, string>> ServiceEnvironment { get; init; } =
        new Dictionary<ServiceKind, IReadOnlyDictionary<string, string>>();

    /// <summary>How long each service may take to become ready.</summary>
    public TimeSpan ReadyTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>The dotnet host that runs the service assemblies.</summary>
    public string DotnetPath { get; init; } = DotnetHost.Path;

    public Uri UrlOf(ServiceKind kind) => new($"http://{Host}:{Ports.For(kind)}");
}
