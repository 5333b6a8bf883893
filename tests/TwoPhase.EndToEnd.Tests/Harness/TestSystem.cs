using System.Diagnostics;
using System.Security.Cryptography;
using Xunit.Abstractions;

namespace TwoPhase.EndToEnd.Tests.Harness;

/// <summary>How to set up one system under test.</summary>
public sealed class SystemOptions
{
    /// <summary>Services started by <see cref="TestSystem.StartAsync"/>; the others stay down until a test starts them.</summary>
    public IReadOnlySet<Service> StartNow { get; init; } = new HashSet<Service> { Service.Order, Service.Storage, Service.Delivery };

    /// <summary>The one service that gets <c>TWOPHASE_CRASH_AT</c> at its first start, and the point.</summary>
    public (Service Service, string Point)? CrashAt { get; init; }

    /// <summary>Put a <see cref="FaultProxy"/> between the coordinator and these participants.</summary>
    public IReadOnlySet<Service> Proxied { get; init; } = new HashSet<Service>();

    /// <summary><c>v1</c> or <c>legacy</c>: how the coordinator talks to delivery.</summary>
    public string DeliveryProtocol { get; init; } = "v1";

    /// <summary>
    /// Short, so that recovery of an abandoned prepare is quick, but not so short that a cold first PREPARE on a busy
    /// two-core machine (JIT, first connections) misses it and turns an all-yes order into an abort.
    /// </summary>
    public int PrepareDeadlineMs { get; init; } = 3000;

    /// <summary>The coordinator batches protocol messages (the default) or sends one request per message.</summary>
    public bool BatchMessages { get; init; } = true;

    /// <summary>
    /// Configure no secret, as on a fresh machine: the services must find one themselves in the cookie file
    /// (<see cref="TestSystem.SecretFile"/>); the test's client then uses what they wrote there.
    /// </summary>
    public bool GeneratedSecret { get; init; }

    /// <summary>
    /// With <see cref="Store.Postgres"/>: the server (a connection string without Database) each of these services gets its
    /// database on, in place of the shared <c>TWOPHASE_TEST_POSTGRES</c> server; a test that crashes a server brings its own.
    /// </summary>
    public IReadOnlyDictionary<Service, string> PostgresServers { get; init; } = new Dictionary<Service, string>();

    /// <summary>More configuration, per service, as <c>Section__Key</c> environment variables.</summary>
    public IReadOnlyDictionary<Service, IReadOnlyDictionary<string, string>> Environment { get; init; } =
        new Dictionary<Service, IReadOnlyDictionary<string, string>>();
}

/// <summary>
/// The order service (coordinator), storage and delivery as real processes on free loopback ports, each with its own
/// fresh database (a SQLite file in a temporary folder, or a new PostgreSQL database), no seed data, a shared secret,
/// and short recovery intervals so that faults heal within seconds. Disposal kills every process and drops every database.
/// </summary>
public sealed class TestSystem : IAsyncDisposable
{
    public static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(60);

    private readonly ITestOutputHelper _output;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly List<(string Name, string? Server)> _postgresDatabases = [];
    private readonly Dictionary<Service, ServiceProcess> _services = [];
    private readonly Dictionary<Service, FaultProxy> _proxies = [];
    private readonly HttpClient _http;

    private TestSystem(Store store, SystemOptions options, ITestOutputHelper output, string folder, string secret)
    {
        Store = store;
        Options = options;
        _output = output;
        Folder = folder;
        Secret = secret;
        _http = Api.CreateHttpClient(secret);
    }

    public Store Store { get; }

    public SystemOptions Options { get; }

    /// <summary>Temporary folder: SQLite files and service logs.</summary>
    public string Folder { get; }

    /// <summary>What the services authenticate with: the harness's own, or with <see cref="SystemOptions.GeneratedSecret"/> the one they wrote.</summary>
    public string Secret { get; private set; }

    /// <summary>
    /// The cookie file every service of this system is pointed at (<c>TwoPhase__SecretFile</c>), in <see cref="Folder"/>,
    /// so that no test ever writes into the real user's ~/.config, whatever it configures.
    /// </summary>
    public string SecretFile => Path.Combine(Folder, "config", "twophase", "secret");

    public Api Api { get; private set; } = null!;

    public ServiceProcess this[Service service] => _services[service];

    public ServiceProcess Order => _services[Service.Order];

    public ServiceProcess Storage => _services[Service.Storage];

    public ServiceProcess Delivery => _services[Service.Delivery];

    public FaultProxy Proxy(Service participant) => _proxies[participant];

    public static async Task<TestSystem> StartAsync(Store store, ITestOutputHelper output, SystemOptions? options = null)
    {
        options ??= new SystemOptions();
        var folder = Path.Combine(Path.GetTempPath(), "twophase-e2e", $"{DateTime.UtcNow:HHmmss}-{Guid.NewGuid():N}"[..22]);
        Directory.CreateDirectory(folder);
        var system = new TestSystem(store, options, output, folder, Convert.ToHexString(RandomNumberGenerator.GetBytes(16)));
        try
        {
            await system.CreateAsync();
            await system.StartServicesAsync(options.StartNow.ToArray());
            if (options.GeneratedSecret)
            {
                system.AdoptGeneratedSecret();
            }

            return system;
        }
        catch
        {
            await system.DisposeAsync();
            throw;
        }
    }

    private async Task CreateAsync()
    {
        var ports = new Dictionary<Service, int>
        {
            [Service.Order] = FreePorts.Next(),
            [Service.Storage] = FreePorts.Next(),
            [Service.Delivery] = FreePorts.Next(),
        };
        var participantUrls = new Dictionary<Service, Uri>();
        foreach (var participant in new[] { Service.Storage, Service.Delivery })
        {
            var direct = new Uri($"http://127.0.0.1:{ports[participant]}/");
            if (Options.Proxied.Contains(participant))
            {
                var proxy = await FaultProxy.StartAsync(direct);
                _proxies[participant] = proxy;
                participantUrls[participant] = proxy.Url;
            }
            else
            {
                participantUrls[participant] = direct;
            }
        }

        var coordinatorUrl = $"http://127.0.0.1:{ports[Service.Order]}";
        foreach (var service in Enum.GetValues<Service>())
        {
            var env = new Dictionary<string, string>
            {
                ["Seed__Enabled"] = "false",
                ["TwoPhase__SecretFile"] = SecretFile,
                ["Logging__LogLevel__Default"] = "Information",
                ["Logging__LogLevel__Microsoft.AspNetCore"] = "Warning",
                ["Logging__Console__FormatterName"] = "simple",
                ["Logging__Console__FormatterOptions__SingleLine"] = "true",
                ["Logging__Console__FormatterOptions__TimestampFormat"] = "HH:mm:ss.fff ",
            };
            if (!Options.GeneratedSecret)
            {
                env["TwoPhase__Secret"] = Secret;
            }

            foreach (var (key, value) in await DatabaseAsync(service))
            {
                env[key] = value;
            }

            if (service == Service.Order)
            {
                env["Coordinator__Participants__0__Name"] = "storage";
                env["Coordinator__Participants__0__Url"] = participantUrls[Service.Storage].ToString();
                env["Coordinator__Participants__0__Protocol"] = "v1";
                env["Coordinator__Participants__1__Name"] = "delivery";
                env["Coordinator__Participants__1__Url"] = participantUrls[Service.Delivery].ToString();
                env["Coordinator__Participants__1__Protocol"] = Options.DeliveryProtocol;
                env["Coordinator__BatchMessages"] = Options.BatchMessages ? "true" : "false";
                env["Coordinator__RecoveryIntervalMs"] = "200";
                env["Coordinator__PrepareDeadlineMs"] = Options.PrepareDeadlineMs.ToString(System.Globalization.CultureInfo.InvariantCulture);
                env["Coordinator__DecisionTimeoutMs"] = "1000";
                env["Coordinator__RetryMaxDelayMs"] = "500";
            }
            else
            {
                env["Participant__CoordinatorUrl"] = coordinatorUrl;
                env["Participant__InDoubtAfterMs"] = "500";
                env["Participant__CheckIntervalMs"] = "200";
                env["Participant__RetryMaxDelayMs"] = "500";
            }

            foreach (var (key, value) in Options.Environment.GetValueOrDefault(service) ?? new Dictionary<string, string>())
            {
                env[key] = value;
            }

            _services[service] = new ServiceProcess(service, ports[service], env, Path.Combine(Folder, $"{service.ToString().ToLowerInvariant()}.log"));
        }

        Api = new Api(_http, Order.Url, Storage.Url, Delivery.Url);
        Log($"system on {Store} in {Folder}: order {Order.Url}, storage {Storage.Url}{Via(Service.Storage)}, delivery {Delivery.Url}{Via(Service.Delivery)}");
    }

    /// <summary>
    /// The client authenticates with the secret the services wrote to <see cref="SecretFile"/>. A missing file is
    /// left for the test to find (its client then sends the harness's own secret, which no service knows).
    /// </summary>
    private void AdoptGeneratedSecret()
    {
        if (!File.Exists(SecretFile))
        {
            Log($"no secret file at {SecretFile}: the services generated no secret");
            return;
        }

        Secret = File.ReadAllText(SecretFile).Trim();
        // No request is in flight here: the services are ready and nothing else uses the client yet.
        _http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", Secret);
        Log($"using the secret the services generated in {SecretFile}");
    }

    private string Via(Service participant) => _proxies.TryGetValue(participant, out var p) ? $" (coordinator goes through proxy {p.Url})" : "";

    private async Task<Dictionary<string, string>> DatabaseAsync(Service service)
    {
        var name = service.ToString().ToLowerInvariant();
        if (Store == Store.Sqlite)
        {
            return new()
            {
                ["Database__Provider"] = "sqlite",
                ["Database__ConnectionString"] = $"Data Source={Path.Combine(Folder, name + ".db")}",
            };
        }

        var database = $"tp_e2e_{Guid.NewGuid():N}"[..24] + "_" + name;
        var server = Options.PostgresServers.GetValueOrDefault(service);
        var connectionString = await PostgresServer.CreateDatabaseAsync(database, server);
        _postgresDatabases.Add((database, server));
        return new()
        {
            ["Database__Provider"] = "postgres",
            ["Database__ConnectionString"] = connectionString,
            // Three services at 50 concurrent orders must fit a server with the default max_connections = 100.
            ["Database__MaxPoolSize"] = "25",
        };
    }

    /// <summary>Starts the given services (the crash point goes to its service's first start only) and waits until all are ready.</summary>
    public async Task StartServicesAsync(params Service[] services)
    {
        foreach (var service in services)
        {
            var crash = Options.CrashAt is { } c && c.Service == service && !_crashArmed.Contains(service)
                ? new Dictionary<string, string> { ["TWOPHASE_CRASH_AT"] = c.Point }
                : null;
            if (crash is not null)
            {
                _crashArmed.Add(service);
            }

            _services[service].Start(crash);
            Log($"started {service}{(crash is null ? "" : $" with TWOPHASE_CRASH_AT={crash["TWOPHASE_CRASH_AT"]}")}");
        }

        await Task.WhenAll(services.Select(s => _services[s].WaitReadyAsync(_http, ReadyTimeout)));
        Log($"ready: {string.Join(", ", services)}");
    }

    private readonly HashSet<Service> _crashArmed = [];

    /// <summary>kill -9.</summary>
    public async Task KillAsync(Service service)
    {
        await _services[service].KillAsync();
        Log($"killed {service}");
    }

    /// <summary>Seeds through the APIs: products with their stock, and a number of couriers.</summary>
    public async Task SeedAsync(IReadOnlyDictionary<string, long> products, int couriers)
    {
        foreach (var (sku, stock) in products)
        {
            await Api.AddProductAsync(sku, stock);
        }

        await Api.AddCouriersAsync(couriers);
    }

    public void Log(string message) => _output.WriteLine($"[{_clock.Elapsed.TotalSeconds,7:0.000}s] {message}");

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

        _http.Dispose();
        foreach (var (database, server) in _postgresDatabases)
        {
            try
            {
                await PostgresServer.DropDatabaseAsync(database, server);
            }
            catch (Exception e) when (e is Npgsql.NpgsqlException or InvalidOperationException)
            {
                Log($"could not drop {database}: {e.Message}");
            }
        }

        if (Environment.GetEnvironmentVariable("TWOPHASE_E2E_KEEP") != "1")
        {
            try
            {
                Directory.Delete(Folder, recursive: true);
            }
            catch (IOException)
            {
                // A file still held open is left to the OS's temp cleanup.
            }
        }

        Log($"disposed (TWOPHASE_E2E_KEEP=1 keeps {Folder})");
    }
}
