using System.Diagnostics;
using Xunit.Abstractions;

namespace TwoPhase.EndToEnd.Tests.Harness;

/// <summary>
/// A test's view of the harness's <see cref="ReferenceSystem"/>: the test's store and output, the end-to-end defaults
/// (no seed data, short recovery intervals so that faults heal within seconds, a 3 s prepare deadline, pools that fit
/// a stock server) and the typed <see cref="Api"/> client with the system's secret.
/// </summary>
public sealed class TestSystem : IAsyncDisposable
{
    private readonly ReferenceSystem _system;
    private readonly ITestOutputHelper _output;
    private readonly Stopwatch _clock;
    private readonly HttpClient _http;

    private TestSystem(ReferenceSystem system, ITestOutputHelper output, Stopwatch clock, HttpClient http)
    {
        _system = system;
        _output = output;
        _clock = clock;
        _http = http;
        Api = new Api(http, system.Order.Url, system.Storage.Url, system.Delivery.Url);
    }

    public Store Store => _system.Options.Store;

    public SystemOptions Options => _system.Options;

    /// <summary>Temporary folder: SQLite files and service logs.</summary>
    public string Folder => _system.Folder;

    /// <inheritdoc cref="ReferenceSystem.Secret"/>
    public string Secret => _system.Secret;

    /// <inheritdoc cref="ReferenceSystem.SecretFile"/>
    public string SecretFile => _system.SecretFile;

    public Api Api { get; }

    public ServiceProcess this[Service service] => _system[service];

    public ServiceProcess Order => _system.Order;

    public ServiceProcess Storage => _system.Storage;

    public ServiceProcess Delivery => _system.Delivery;

    public FaultProxy Proxy(Service participant) => _system.Proxy(participant);

    /// <summary>
    /// Starts the system on <paramref name="store"/> (PostgreSQL: <c>TWOPHASE_TEST_POSTGRES</c> unless the options name
    /// servers). Unset settings take the end-to-end defaults.
    /// </summary>
    public static async Task<TestSystem> StartAsync(Store store, ITestOutputHelper output, SystemOptions? options = null)
    {
        options ??= new SystemOptions();
        var clock = Stopwatch.StartNew();
        var secret = ReferenceSystem.NewSecret();
        var system = await ReferenceSystem.StartAsync(
            options with
            {
                Store = store,
                PostgresServer = store == Store.Postgres ? options.PostgresServer ?? PostgresServerFor(options) : null,
                Secret = options.Secret ?? secret,
                // Three services at 50 concurrent orders must fit a server with the default max_connections = 100.
                PoolSizePerService = options.PoolSizePerService ?? 25,
                // Short, so that recovery of an abandoned prepare is quick, but not so short that a cold first PREPARE
                // on a busy two-core machine (JIT, first connections) misses it and turns an all-yes order into an abort.
                PrepareDeadlineMs = options.PrepareDeadlineMs ?? 3000,
                Recovery = options.Recovery ?? RecoverySettings.Quick,
            },
            line => output.WriteLine($"[{clock.Elapsed.TotalSeconds,7:0.000}s] {line}"));
        var http = Api.CreateHttpClient(system.Secret);
        return new TestSystem(system, output, clock, http);
    }

    // A test that gives every service a server of its own needs no shared one.
    private static string? PostgresServerFor(SystemOptions options) =>
        ServiceKinds.All.All(options.PostgresServers.ContainsKey) ? null : PostgresDatabases.TestServer();

    /// <summary>Starts the given services (the crash point goes to its service's first start only) and waits until all are ready.</summary>
    public Task StartServicesAsync(params Service[] services) => _system.StartServicesAsync(services);

    /// <summary>kill -9.</summary>
    public Task KillAsync(Service service) => _system.KillAsync(service);

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
    public string Tails(int lines = 30) => _system.Tails(lines);

    public async ValueTask DisposeAsync()
    {
        await _system.DisposeAsync();
        _http.Dispose();
    }
}
