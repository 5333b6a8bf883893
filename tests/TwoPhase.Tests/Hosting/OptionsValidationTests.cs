using DeliveryService.Couriers;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OrderService.Dashboard;
using OrderService.Orders;
using StorageService.Products;
using TwoPhase.AspNetCore;
using TwoPhase.Protocol;

namespace TwoPhase.Tests.Hosting;

/// <summary>
/// Every options class of the runtime and the reference services refuses a bad value at start, with a message that names
/// the configuration key, and takes its defaults and good values as before.
/// </summary>
public sealed class OptionsValidationTests
{
    /// <summary>The registrations of the three services, the one a bad key belongs to among them.</summary>
    private static WebApplication Build(params (string Key, string Value)[] settings)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Development" });
        builder.Configuration.AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value)).Append(new("TwoPhase:Secret", "options-test-secret")));
        builder.AddTwoPhaseService(defaultUrl: "http://127.0.0.1:1", defaultSqliteFile: Path.Combine(Path.GetTempPath(), "twophase-options-test.db"));
        builder.AddTwoPhaseTelemetry();
        builder.AddTwoPhaseCoordinator();
        builder.AddTwoPhaseParticipant<StockReservations, OrderLinesRules>();
        builder.AddProducts();
        builder.AddCouriers();
        builder.AddOrders();
        builder.AddDashboard();
        return builder.Build();
    }

    public static TheoryData<string, string, string> BadSettings => new()
    {
        { "TwoPhase:MaxBodyBytes", "10", "TwoPhase:MaxBodyBytes" },
        { "TwoPhase:RequestTimeoutMs", "0", "TwoPhase:RequestTimeoutMs" },
        { "Database:Provider", "oracle", "Database:Provider" },
        { "Database:MaxPoolSize", "0", "Database:MaxPoolSize" },
        { "Database:LockTimeoutMs", "-1", "Database:LockTimeoutMs" },
        { "Coordinator:MaxInFlight", "0", "Coordinator:MaxInFlight" },
        { "Coordinator:RecoveryInterval", "00:00:00", "Coordinator:RecoveryInterval" },
        { "Coordinator:RecoveryIntervalMs", "10", "Coordinator:RecoveryInterval (or RecoveryIntervalMs" },
        { "Coordinator:AdmissionQueueTimeoutMs", "0", "Coordinator:AdmissionQueueTimeout (or AdmissionQueueTimeoutMs" },
        { "Coordinator:PrepareDeadlineMs", "10", "Coordinator:PrepareDeadline (or PrepareDeadlineMs" },
        { "Coordinator:DecisionTimeout", "00:30:00", "Coordinator:DecisionTimeout" },
        { "Coordinator:RetryMaxDelayMs", "0", "Coordinator:RetryMaxDelay" },
        { "Coordinator:AbandonGraceMs", "soon", "Coordinator:AbandonGraceMs" },
        { "Coordinator:RecoveryBatchSize", "0", "Coordinator:RecoveryBatchSize" },
        { "Coordinator:Participants:0:Url", "not a url", "Coordinator:Participants:0:Url" },
        { "Coordinator:Participants:0:Protocol", "lgacy", "Coordinator:Participants:0:Protocol" },
        { "TwoPhase:Telemetry:TraceSampleRatio", "2", "TwoPhase:Telemetry:TraceSampleRatio" },
        { "TwoPhase:Telemetry:RefreshIntervalMs", "1", "TwoPhase:Telemetry:RefreshIntervalMs" },
        { "Participant:InDoubtAfterMs", "1", "InDoubtAfterMs" },
        { "Storage:MaxLines", "0", "Storage:MaxLines" },
        { "Seed:Products:0:Stock", "-5", "Seed:Products:0:Stock" },
        { "Seed:Couriers", "-1", "Seed:Couriers" },
        { "Orders:MaxQuantity", "0", "Orders:MaxQuantity" },
        { "Orders:Catalog:RequestTimeoutMs", "1", "Orders:Catalog:RequestTimeoutMs" },
        { "Dashboard:RecentTransactions", "0", "Dashboard:RecentTransactions" },
    };

    [Theory]
    [MemberData(nameof(BadSettings))]
    public async Task BadSetting_RefusedAtStart_NamingTheKey(string key, string value, string named)
    {
        // A participant needs its name and URL for the one bad field of it to be the only fault.
        var settings = key.StartsWith("Coordinator:Participants:0:", StringComparison.Ordinal)
            ? new[] { ("Coordinator:Participants:0:Name", "storage"), ("Coordinator:Participants:0:Url", "http://127.0.0.1:8002"), (key, value) }
            : key.StartsWith("Seed:Products:0:", StringComparison.Ordinal)
                ? new[] { ("Seed:Products:0:Sku", "bolt"), ("Seed:Products:0:Name", "Bolt"), (key, value) }
                : new[] { (key, value) };
        await using var app = Build(settings.GroupBy(s => s.Item1).Select(g => g.Last()).ToArray());

        var refused = Assert.ThrowsAny<Exception>(() => app.Services.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains(named, Describe(refused), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Defaults_AreAccepted()
    {
        await using var app = Build();

        app.Services.GetRequiredService<IStartupValidator>().Validate();

        var settings = app.Services.GetRequiredService<IOptions<CoordinatorSettings>>().Value;
        Assert.Equal(TimeSpan.FromSeconds(2), settings.PrepareDeadline);
        Assert.Equal(TimeSpan.FromSeconds(5), settings.DuplicateWait);
        Assert.Equal(TimeSpan.FromSeconds(1), app.Services.GetRequiredService<IOptions<CoordinatorOptions>>().Value.RecoveryInterval);
    }

    [Fact]
    public async Task MillisecondKeys_StillSetTheDurations_AndTheDuplicateWaitFollows()
    {
        await using var app = Build(
            ("Coordinator:PrepareDeadlineMs", "10000"),
            ("Coordinator:DecisionTimeout", "00:00:03"),
            ("Coordinator:RecoveryIntervalMs", "250"),
            ("Coordinator:AdmissionQueueTimeoutMs", "1500"),
            ("Coordinator:AbandonGraceMs", "0"));

        app.Services.GetRequiredService<IStartupValidator>().Validate();

        var settings = app.Services.GetRequiredService<IOptions<CoordinatorSettings>>().Value;
        var options = app.Services.GetRequiredService<IOptions<CoordinatorOptions>>().Value;
        Assert.Equal(TimeSpan.FromSeconds(10), settings.PrepareDeadline);
        Assert.Equal(TimeSpan.FromSeconds(3), settings.DecisionTimeout);
        Assert.Equal(TimeSpan.Zero, settings.AbandonGrace);
        Assert.Equal(TimeSpan.FromSeconds(14), settings.DuplicateWait);
        Assert.Equal(TimeSpan.FromMilliseconds(250), options.RecoveryInterval);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), options.AdmissionQueueTimeout);
    }

    [Fact]
    public async Task DurationSetUnderBothKeys_Refused()
    {
        await using var app = Build(("Coordinator:PrepareDeadline", "00:00:03"), ("Coordinator:PrepareDeadlineMs", "3000"));

        var refused = Assert.ThrowsAny<Exception>(() => app.Services.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains("Coordinator:PrepareDeadline and Coordinator:PrepareDeadlineMs are both set", Describe(refused), StringComparison.Ordinal);
    }

    [Fact]
    public async Task TwoParticipantsOfOneName_Refused()
    {
        await using var app = Build(
            ("Coordinator:Participants:0:Name", "storage"), ("Coordinator:Participants:0:Url", "http://127.0.0.1:8002"),
            ("Coordinator:Participants:1:Name", "storage"), ("Coordinator:Participants:1:Url", "http://127.0.0.1:8001"));

        var refused = Assert.ThrowsAny<Exception>(() => app.Services.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains("Coordinator:Participants: the name 'storage' is given to 2 participants", Describe(refused), StringComparison.Ordinal);
    }

    private static string Describe(Exception e) => e is AggregateException all
        ? string.Join(" | ", all.InnerExceptions.Select(Describe))
        : e.Message + (e.InnerException is { } inner ? " | " + Describe(inner) : "");
}
