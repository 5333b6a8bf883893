using System.Security.Cryptography;

namespace TwoPhase.Harness;

/// <summary>
/// The reference system as a whole: the order service (coordinator), storage and delivery as real processes on
/// loopback, each with its own fresh database (a SQLite file in the system's folder, or a new PostgreSQL database),
/// a shared secret, optionally a fault proxy on the coordinator's link to a participant. The CLI's demo, chaos and
/// bench and every test project drive the system through this. Disposal kills every process, stops the proxies and
/// drops the databases.
/// </summary>
public sealed class ReferenceSystem : IAsyncDisposable
{
    private readonly Action<string> _log;
    private readonly bool _ownsFolder;
    private readonly Dictionary<ServiceKind, ServiceProcess> _services = [];
    private readonly Dictionary<ServiceKind, FaultProxy> _proxies = [];
    private readonly HashSet<ServiceKind> _crashArmed = [];
    private readonly HttpClient _probe = new(new SocketsHttpHandler { PooledConnectionIdleTimeout = TimeSpan.FromSeconds(5) });

    /// <summary>Sets the system up without starting anything (see <see cref="StartAsync(CancellationToken)"/>); disposal cleans up either way.</summary>
    /// <param name="options">What to run.</param>
    /// <param name="log">Where progress lines go (a test's output, the console); none if null.</param>
    public ReferenceSystem(SystemOptions options, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options;
        _log = log ?? (_ => { });
        _ownsFolder = options.Folder is null;
        Folder = Path.GetFullPath(options.Folder ?? Path.Combine(Path.GetTempPath(), "twophase-system", $"{DateTime.UtcNow:HHmmss}-{Guid.NewGuid():N}"[..22]));
        Directory.CreateDirectory(Folder);
        Secret = options.Secret ?? NewSecret();
        RepoRoot = options.RepoRoot ?? RepoLocator.FindRepoRoot(Directory.GetCurrentDirectory(), AppContext.BaseDirectory)
            ?? throw new ServiceStartException($"No {RepoLocator.SolutionFile} above {Directory.GetCurrentDirectory()} or {AppContext.BaseDirectory}.");
        Ports = options.Ports ?? PortAllocator.PickFree();
    }

    public SystemOptions Options { get; }

    public string RepoRoot { get; }

    public ServicePorts Ports { get; }

    /// <summary>Logs, SQLite files and the secret file.</summary>
    public string Folder { get; }

    /// <summary>What the services authenticate with: the configured or fresh one, or with <see cref="SystemOptions.GeneratedSecret"/> the one they wrote.</summary>
    public string Secret { get; private set; }

    /// <summary>
    /// The cookie file every service of this system is pointed at (<c>TwoPhase__SecretFile</c>), in <see cref="Folder"/>,
    /// so that no run ever writes into the real user's ~/.config, whatever it configures.
    /// </summary>
    public string SecretFile => Path.Combine(Folder, "config", "twophase", "secret");

    /// <summary>The PostgreSQL databases, with <see cref="Store.Postgres"/>.</summary>
    public PostgresDatabases? Databases { get; private set; }

    public ServiceProcess this[ServiceKind kind] => _services[kind];

    public ServiceProcess Order => _services[ServiceKind.Order];

    public ServiceProcess Storage => _services[ServiceKind.Storage];

    public ServiceProcess Delivery => _services[ServiceKind.Delivery];

    public IEnumerable<ServiceProcess> Services => ServiceKinds.All.Select(k => _services[k]);

    /// <summary>The proxy on the coordinator's link to <paramref name="participant"/> (<see cref="SystemOptions.Proxied"/>).</summary>
    public FaultProxy Proxy(ServiceKind participant) => _proxies[participant];

    public IReadOnlyDictionary<ServiceKind, FaultProxy> Proxies => _proxies;

    public Uri UrlOf(ServiceKind kind) => new($"http://{Options.Host}:{Ports.For(kind)}/");

    /// <summary>A fresh 32-byte secret as lowercase hex.</summary>
    public static string NewSecret() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    /// <summary>Makes the stores and proxies, starts <see cref="SystemOptions.StartNow"/> and waits until they are ready; on failure everything made is removed.</summary>
    /// <param name="options">What to run.</param>
    /// <param name="log">Where progress lines go (a test's output, the console); none if null.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    public static async Task<ReferenceSystem> StartAsync(SystemOptions options, Action<string>? log = null, CancellationToken cancellationToken = default)
    {
        var system = new ReferenceSystem(options, log);
        try
        {
            await system.StartAsync(cancellationToken);
            return system;
        }
        catch
        {
            await system.DisposeAsync();
            throw;
        }
    }

    /// <summary>Makes the stores and proxies, starts <see cref="SystemOptions.StartNow"/> and waits until they are ready. Once only.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await CreateAsync(cancellationToken);
        await StartServicesAsync(cancellationToken, [.. Options.StartNow]);
        if (Options.GeneratedSecret)
        {
            AdoptGeneratedSecret();
        }
    }

    private async Task CreateAsync(CancellationToken ct)
    {
        if (_services.Count > 0)
        {
            throw new InvalidOperationException("The system was started before.");
        }

        if (Options.Store == Store.Postgres)
        {
            var servers = ServiceKinds.All.ToDictionary(
                k => k,
                k => Options.PostgresServers.GetValueOrDefault(k) ?? Options.PostgresServer
                     ?? throw new ServiceStartException($"{k.ProjectName()}: PostgreSQL store but no server given."));
            Databases = await PostgresDatabases.CreateAsync(servers, Options.DatabasePrefix ?? $"tp_{Guid.NewGuid():N}"[..15], ct);
        }

        foreach (var participant in Options.Proxied)
        {
            _proxies[participant] = await FaultProxy.StartAsync(UrlOf(participant), Options.ProxyOptions, ct);
        }

        foreach (var kind in ServiceKinds.All)
        {
            var name = kind.ProjectName();
            var dll = Path.Combine(RepoRoot, "src", name, "bin", Options.Configuration, "net10.0", name + ".dll");
            _services[kind] = new ServiceProcess(kind, dll, UrlOf(kind), EnvironmentFor(kind), Path.Combine(Folder, kind.ShortName() + ".log"), Options.DotnetPath);
        }

        var via = string.Join("", _proxies.Select(kv => $"; the coordinator reaches {kv.Key.ShortName()} through proxy {kv.Value.Url}"));
        Log($"system on {Options.Store} in {Folder}: order {UrlOf(ServiceKind.Order)}, storage {UrlOf(ServiceKind.Storage)}, delivery {UrlOf(ServiceKind.Delivery)}{via}");
    }

    /// <summary>The configuration a service gets, as ASP.NET Core environment variables (<c>Section__Key</c>).</summary>
    private Dictionary<string, string> EnvironmentFor(ServiceKind kind) => ServiceEnvironment.For(kind, new ServiceEnvironmentSettings
    {
        SecretFile = SecretFile,
        Secret = Options.GeneratedSecret ? null : Secret,
        SeedEnabled = Options.SeedEnabled,
        LogLevel = Options.LogLevel,
        DatabaseProvider = Databases is null ? "sqlite" : "postgres",
        ConnectionString = Databases is { } databases
            ? databases.ConnectionStrings[kind]
            : $"Data Source={Path.Combine(Folder, kind.ShortName() + ".db")}",
        MaxPoolSize = Databases is { } d ? Options.PoolSizePerService ?? d.PoolSizePerService : null,
        // Storage first: a stock refusal is the more common no, and its reason reads best first.
        Participants = [.. new[] { ServiceKind.Storage, ServiceKind.Delivery }.Select(p => new ParticipantLink(
            p, _proxies.TryGetValue(p, out var proxy) ? proxy.Url : UrlOf(p), p == ServiceKind.Delivery ? Options.DeliveryProtocol : "v1"))],
        BatchMessages = Options.BatchMessages,
        PrepareDeadlineMs = Options.PrepareDeadlineMs,
        CoordinatorUrl = UrlOf(ServiceKind.Order),
        Recovery = Options.Recovery,
        Extra = [Options.ExtraEnvironment, Options.Environment.GetValueOrDefault(kind) ?? new Dictionary<string, string>()],
    });

    /// <summary>
    /// The services authenticate with the secret they wrote to <see cref="SecretFile"/>. A missing file is left for the
    /// caller to find (the system's secret then stays its own, which no service knows).
    /// </summary>
    private void AdoptGeneratedSecret()
    {
        if (!File.Exists(SecretFile))
        {
            Log($"no secret file at {SecretFile}: the services generated no secret");
            return;
        }

        Secret = File.ReadAllText(SecretFile).Trim();
        Log($"using the secret the services generated in {SecretFile}");
    }

    /// <summary>Starts the given services (the crash point goes to its service's first start only) and waits until all are ready.</summary>
    public Task StartServicesAsync(params ServiceKind[] services) => StartServicesAsync(CancellationToken.None, services);

    /// <inheritdoc cref="StartServicesAsync(ServiceKind[])"/>
    public async Task StartServicesAsync(CancellationToken cancellationToken, params ServiceKind[] services)
    {
        foreach (var kind in services)
        {
            Dictionary<string, string>? crash = null;
            if (Options.CrashAt is { } c && c.Service == kind && _crashArmed.Add(kind))
            {
                crash = new Dictionary<string, string> { ["TWOPHASE_CRASH_AT"] = c.Point };
            }

            _services[kind].Start(crash);
            Log($"started {kind}{(crash is null ? "" : $" with TWOPHASE_CRASH_AT={crash["TWOPHASE_CRASH_AT"]}")}");
        }

        await Task.WhenAll(services.Select(k => _services[k].WaitReadyAsync(_probe, Options.ReadyTimeout, cancellationToken)));
        if (services.Select(k => _services[k]).FirstOrDefault(s => !s.IsRunning) is { } dead)
        {
            throw new ServiceStartException($"{dead.Kind.ProjectName()} exited right after it was ready.\n{dead.Tail()}");
        }

        Log($"ready: {string.Join(", ", services)}");
    }

    /// <summary>kill -9 of one service (with its process tree).</summary>
    public async Task KillAsync(ServiceKind kind)
    {
        await _services[kind].KillAsync();
        Log($"killed {kind}");
    }

    /// <summary>SIGSTOP of one service, until <see cref="Resume"/>.</summary>
    public void Pause(ServiceKind kind) => _services[kind].Pause();

    /// <summary>SIGCONT of a paused service.</summary>
    public void Resume(ServiceKind kind) => _services[kind].Resume();

    /// <summary>Starts a service again (killing it first if it runs) with the same settings and waits until it is ready.</summary>
    public Task RestartAsync(ServiceKind kind, CancellationToken cancellationToken = default) =>
        _services[kind].RestartAsync(_probe, Options.ReadyTimeout, cancellationToken);

    /// <summary>Kills every service that is running. Safe to call more than once.</summary>
    public Task StopAsync() => Task.WhenAll(_services.Values.Select(s => s.KillAsync()));

    /// <summary>Last-resort cleanup for process-exit handlers, where nothing can be awaited: kills every service tree without waiting.</summary>
    public void KillAllNow()
    {
        // Called from another thread while the system may still be being made: a snapshot, not the live dictionary.
        foreach (var service in _services.Values.ToArray())
        {
            service.KillNow();
        }
    }

    /// <summary>Every service's log tail, for failure messages.</summary>
    public string Tails(int lines = 30) => string.Join("\n", _services.Values.Select(s => s.Tail(lines)));

    public async ValueTask DisposeAsync()
    {
        foreach (var service in _services.Values)
        {
            await service.DisposeAsync();
        }

        foreach (var proxy in _proxies.Values)
        {
            await proxy.DisposeAsync();
        }

        _probe.Dispose();
        if (Databases is { } databases && !Options.KeepDatabases)
        {
            // Not the run's token: cleanup must still happen after a cancellation.
            foreach (var problem in await databases.DropAsync(CancellationToken.None))
            {
                Log($"could not drop {problem}");
            }
        }

        if (_ownsFolder && System.Environment.GetEnvironmentVariable("TWOPHASE_E2E_KEEP") != "1")
        {
            try
            {
                Directory.Delete(Folder, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A file still held open by a dying process is left to the OS's temp cleanup.
            }
        }

        Log(_ownsFolder ? $"disposed (TWOPHASE_E2E_KEEP=1 keeps {Folder})" : "disposed");
    }

    private void Log(string message) => _log(message);
}
