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
    /// <summary>What every role must be told (no defaults for them); a test's own settings come after and win.</summary>
    private static readonly (string Key, string Value)[] Required =
    [
        ("TwoPhase:Secret", "options-test-secret"),
        ("TwoPhase:Database:SqliteFile", Path.Combine(Path.GetTempPath(), "twophase-options-test.db")),
        ("TwoPhase:Coordinator:Participants:0:Name", "storage"),
        ("TwoPhase:Coordinator:Participants:0:Url", "http://127.0.0.1:8002"),
        ("TwoPhase:Participant:CoordinatorUrl", "http://127.0.0.1:8000"),
    ];

    /// <summary>The registrations of the three services, the one a bad key belongs to among them.</summary>
    private static WebApplication Build(params (string Key, string? Value)[] settings) => Build(Required.Select(r => (r.Key, (string?)r.Value)).Concat(settings));

    private static WebApplication Build(IEnumerable<(string Key, string? Value)> settings)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Development" });
        // Only the test's settings: the test folder holds a service's appsettings.json, and the shell may hold variables.
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddInMemoryCollection(settings.GroupBy(s => s.Key).Select(g => new KeyValuePair<string, string?>(g.Key, g.Last().Value)));
        builder.AddTwoPhase();
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
        { "TwoPhase:Database:Provider", "oracle", "TwoPhase:Database:Provider" },
        { "TwoPhase:Database:MaxPoolSize", "0", "TwoPhase:Database:MaxPoolSize" },
        { "TwoPhase:Database:LockTimeoutMs", "-1", "TwoPhase:Database:LockTimeoutMs" },
        { "TwoPhase:Coordinator:MaxInFlight", "0", "TwoPhase:Coordinator:MaxInFlight" },
        { "TwoPhase:Coordinator:RecoveryInterval", "00:00:00", "TwoPhase:Coordinator:RecoveryInterval" },
        { "TwoPhase:Coordinator:RecoveryIntervalMs", "10", "TwoPhase:Coordinator:RecoveryInterval (or RecoveryIntervalMs" },
        { "TwoPhase:Coordinator:AdmissionQueueTimeoutMs", "0", "TwoPhase:Coordinator:AdmissionQueueTimeout (or AdmissionQueueTimeoutMs" },
        { "TwoPhase:Coordinator:PrepareDeadlineMs", "10", "TwoPhase:Coordinator:PrepareDeadline (or PrepareDeadlineMs" },
        { "TwoPhase:Coordinator:DecisionTimeout", "00:30:00", "TwoPhase:Coordinator:DecisionTimeout" },
        { "TwoPhase:Coordinator:RetryMaxDelayMs", "0", "TwoPhase:Coordinator:RetryMaxDelay" },
        { "TwoPhase:Coordinator:AbandonGraceMs", "soon", "TwoPhase:Coordinator:AbandonGraceMs" },
        { "TwoPhase:Coordinator:RecoveryBatchSize", "0", "TwoPhase:Coordinator:RecoveryBatchSize" },
        { "TwoPhase:Coordinator:Participants:0:Url", "not a url", "TwoPhase:Coordinator:Participants:0:Url" },
        { "TwoPhase:Coordinator:Participants:0:Protocol", "lgacy", "TwoPhase:Coordinator:Participants:0:Protocol" },
        { "TwoPhase:Telemetry:TraceSampleRatio", "2", "TwoPhase:Telemetry:TraceSampleRatio" },
        { "TwoPhase:Telemetry:RefreshIntervalMs", "1", "TwoPhase:Telemetry:RefreshIntervalMs" },
        { "TwoPhase:Participant:InDoubtAfterMs", "1", "TwoPhase:Participant:InDoubtAfterMs" },
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
        var settings = key.StartsWith("Seed:Products:0:", StringComparison.Ordinal)
                ? new[] { ("Seed:Products:0:Sku", "bolt"), ("Seed:Products:0:Name", "Bolt"), (key, value) }
                : new[] { (key, value) };
        await using var app = Build(settings.Select(s => (s.Item1, (string?)s.Item2)).ToArray());

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
            ("TwoPhase:Coordinator:PrepareDeadlineMs", "10000"),
            ("TwoPhase:Coordinator:DecisionTimeout", "00:00:03"),
            ("TwoPhase:Coordinator:RecoveryIntervalMs", "250"),
            ("TwoPhase:Coordinator:AdmissionQueueTimeoutMs", "1500"),
            ("TwoPhase:Coordinator:AbandonGraceMs", "0"));

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
        await using var app = Build(("TwoPhase:Coordinator:PrepareDeadline", "00:00:03"), ("TwoPhase:Coordinator:PrepareDeadlineMs", "3000"));

        var refused = Assert.ThrowsAny<Exception>(() => app.Services.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains("TwoPhase:Coordinator:PrepareDeadline and TwoPhase:Coordinator:PrepareDeadlineMs are both set", Describe(refused), StringComparison.Ordinal);
    }

    [Fact]
    public async Task TwoParticipantsOfOneName_Refused()
    {
        await using var app = Build(
            ("TwoPhase:Coordinator:Participants:0:Name", "storage"), ("TwoPhase:Coordinator:Participants:0:Url", "http://127.0.0.1:8002"),
            ("TwoPhase:Coordinator:Participants:1:Name", "storage"), ("TwoPhase:Coordinator:Participants:1:Url", "http://127.0.0.1:8001"));

        var refused = Assert.ThrowsAny<Exception>(() => app.Services.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains("TwoPhase:Coordinator:Participants: the name 'storage' is given to 2 participants", Describe(refused), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("TwoPhase:Coordinator:Participants:0:Name", "TwoPhase:Coordinator:Participants: no participants are configured")]
    [InlineData("TwoPhase:Participant:CoordinatorUrl", "TwoPhase:Participant:CoordinatorUrl: The CoordinatorUrl field is required")]
    public async Task RoleWithoutItsPeers_RefusedAtStart_NamingTheKey(string unset, string named)
    {
        // No silent defaults: a coordinator without participants once sent PREPAREs to :8002 and :8001, and a
        // participant without a coordinator URL asked :8000, whatever the deployment.
        var settings = Required.Where(r => r.Key != unset && !(unset.Contains(":Participants:", StringComparison.Ordinal) && r.Key.Contains(":Participants:", StringComparison.Ordinal)));
        await using var app = Build(settings.Select(s => (s.Key, (string?)s.Value)));

        var refused = Assert.ThrowsAny<Exception>(() => app.Services.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains(named, Describe(refused), StringComparison.Ordinal);
    }

    [Fact]
    public async Task OldRootSections_AreNotRead()
    {
        // The host's own "Database" or "Coordinator" sections are the host's: TwoPhase reads only under TwoPhase:.
        await using var app = Build(("Database:Provider", "oracle"), ("Coordinator:MaxInFlight", "0"), ("Participant:InDoubtAfterMs", "1"));

        app.Services.GetRequiredService<IStartupValidator>().Validate();

        Assert.Equal(256, app.Services.GetRequiredService<IOptions<CoordinatorOptions>>().Value.MaxInFlight);
    }

    private static string Describe(Exception e) => e is AggregateException all
        ? string.Join(" | ", all.InnerExceptions.Select(Describe))
        : e.Message + (e.InnerException is { } inner ? " | " + Describe(inner) : "");
}
