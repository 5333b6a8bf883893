using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using DeliveryService.Couriers;
using StorageService.Products;
using TwoPhase.AspNetCore;
using TwoPhase.Persistence;

namespace TwoPhase.Tests.Transport;

/// <summary>
/// The library's roles hosted in this process on real Kestrel (loopback, a free port) over a database the test made:
/// the storage service's resource manager as the participant, and a coordinator configured with it. Every host the
/// transport tests start is built here, so a change of registration or configuration keys is made once.
/// </summary>
internal static class TestHosts
{
    public const string Secret = "transport-test-secret";

    /// <summary>
    /// A participant over storage's stock (seeded with the default catalog: widget 1000, gadget 100); without
    /// <paramref name="rules"/>, no <see cref="IPrepareRules"/>: any JSON object reaches the resource manager.
    /// </summary>
    public static async Task<RunningHost> StartStorageAsync(Database db, bool rules = true)
    {
        var builder = NewBuilder(db, ("TwoPhase:Participant:CoordinatorUrl", "http://127.0.0.1:9"), ("TwoPhase:Participant:InDoubtAfterMs", "3600000"));
        builder.AddTwoPhaseParticipant<StockReservations, OrderLinesRules>();
        if (!rules)
        {
            builder.Services.RemoveAll<IPrepareRules>();
        }

        builder.AddProducts();
        return await StartAsync(builder, app => app.MapTwoPhaseParticipant());
    }

    /// <summary>A participant over delivery's couriers (seeded with <paramref name="couriers"/> free ones).</summary>
    public static async Task<RunningHost> StartDeliveryAsync(Database db, int couriers = 5)
    {
        var builder = NewBuilder(db, ("TwoPhase:Participant:CoordinatorUrl", "http://127.0.0.1:9"), ("TwoPhase:Participant:InDoubtAfterMs", "3600000"), ("Seed:Couriers", couriers.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        builder.AddTwoPhaseParticipant<CourierReservations, DeliveryPrepareRules>();
        builder.AddCouriers();
        return await StartAsync(builder, app => app.MapTwoPhaseParticipant());
    }

    /// <summary>
    /// A coordinator whose participants are <paramref name="participants"/> (name, base URL), batching with one request in
    /// flight per participant (so concurrent messages gather into batches), recovery left to the test.
    /// </summary>
    public static async Task<RunningHost> StartCoordinatorAsync(Database db, params (string Name, Uri Url)[] participants)
    {
        var settings = participants.SelectMany((p, i) => new[] { ($"TwoPhase:Coordinator:Participants:{i}:Name", p.Name), ($"TwoPhase:Coordinator:Participants:{i}:Url", p.Url.ToString()) });
        var builder = NewBuilder(db, [.. settings, ("TwoPhase:Coordinator:RecoveryInterval", "00:10:00"), ("TwoPhase:Coordinator:MaxBatchesInFlight", "1"), ("TwoPhase:Coordinator:PrepareDeadline", "00:00:30")]);
        builder.AddTwoPhaseCoordinator();
        return await StartAsync(builder, app => app.MapTwoPhaseCoordinator());
    }

    private static WebApplicationBuilder NewBuilder(Database db, params (string Key, string Value)[] settings)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Development" });
        builder.Configuration.AddInMemoryCollection(
            settings.Append(("TwoPhase:Secret", Secret)).Append(("urls", "http://127.0.0.1:0")).Select(s => new KeyValuePair<string, string?>(s.Item1, s.Item2)));
        // The test's database, not one of the host's making: registered first, so the library's TryAdd keeps it.
        builder.Services.AddSingleton(db);
        builder.AddTwoPhase();
        return builder;
    }

    private static async Task<RunningHost> StartAsync(WebApplicationBuilder builder, Action<WebApplication> map)
    {
        var app = builder.Build();
        await app.InitializeTwoPhaseAsync();
        map(app);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new RunningHost(app, new Uri(address.TrimEnd('/') + "/"));
    }
}

/// <summary>A started host and where it listens; stopping it leaves the test's database to the test.</summary>
internal sealed class RunningHost(WebApplication app, Uri url) : IAsyncDisposable
{
    public WebApplication App => app;

    public Uri Url => url;

    public T Get<T>()
        where T : notnull => app.Services.GetRequiredService<T>();

    /// <summary>A client of this host carrying the shared secret.</summary>
    public HttpClient Client() => new() { BaseAddress = url, Timeout = TimeSpan.FromSeconds(60), DefaultRequestHeaders = { Authorization = new("Bearer", TestHosts.Secret) } };

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }
}
