using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using TwoPhase.AspNetCore;
using TwoPhase.Persistence;
using TwoPhase.Protocol;

namespace TwoPhase.Tests.Coordinator;

/// <summary><c>TwoPhase:Coordinator:ReplicaId</c> and <c>RecoveryLease</c>: validated at start, bound, and given to the decision log.</summary>
public sealed class ReplicaLeaseOptionsTests
{
    private static WebApplication Build(params (string Key, string? Value)[] settings)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Development" });
        builder.Configuration.Sources.Clear();
        (string Key, string? Value)[] required =
        [
            ("TwoPhase:Secret", "lease-options-test-secret"),
            ("TwoPhase:Database:SqliteFile", Path.Combine(Path.GetTempPath(), "twophase-lease-options-test.db")),
            ("TwoPhase:Coordinator:Participants:0:Name", "storage"),
            ("TwoPhase:Coordinator:Participants:0:Url", "http://127.0.0.1:8002"),
        ];
        builder.Configuration.AddInMemoryCollection(required.Concat(settings).GroupBy(s => s.Key).Select(g => new KeyValuePair<string, string?>(g.Key, g.Last().Value)));
        builder.AddTwoPhase();
        builder.AddTwoPhaseCoordinator();
        return builder.Build();
    }

    [Theory]
    [InlineData("TwoPhase:Coordinator:RecoveryLeaseMs", "10", "TwoPhase:Coordinator:RecoveryLease")]
    [InlineData("TwoPhase:Coordinator:RecoveryLease", "01:00:00", "TwoPhase:Coordinator:RecoveryLease")]
    [InlineData("TwoPhase:Coordinator:ReplicaId", "", "TwoPhase:Coordinator:ReplicaId")]
    [InlineData("TwoPhase:Coordinator:ReplicaId", "LONG", "TwoPhase:Coordinator:ReplicaId")]
    public async Task BadSetting_RefusedAtStart_NamingTheKey(string key, string value, string named)
    {
        await using var app = Build((key, value == "LONG" ? new string('r', SqlDecisionLog.MaxReplicaIdLength + 1) : value));

        var refused = Assert.ThrowsAny<Exception>(() => app.Services.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains(named, refused.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Defaults_ProcessNamedReplica_FiveSecondLease()
    {
        await using var app = Build();

        app.Services.GetRequiredService<IStartupValidator>().Validate();

        Assert.Equal(SqlDecisionLog.DefaultReplicaId, app.Services.GetRequiredService<IOptions<CoordinatorOptions>>().Value.ReplicaId);
        Assert.Equal(SqlDecisionLog.DefaultReplicaId, app.Services.GetRequiredService<SqlDecisionLog>().ReplicaId);
        Assert.Equal(TimeSpan.FromSeconds(5), app.Services.GetRequiredService<IOptions<CoordinatorSettings>>().Value.RecoveryLease);
    }

    [Fact]
    public async Task GivenReplicaIdAndLease_BoundAndGivenToTheDecisionLog()
    {
        await using var app = Build(("TwoPhase:Coordinator:ReplicaId", "order-2"), ("TwoPhase:Coordinator:RecoveryLeaseMs", "7000"));

        app.Services.GetRequiredService<IStartupValidator>().Validate();

        Assert.Equal("order-2", app.Services.GetRequiredService<SqlDecisionLog>().ReplicaId);
        Assert.Equal(TimeSpan.FromSeconds(7), app.Services.GetRequiredService<IOptions<CoordinatorSettings>>().Value.RecoveryLease);
    }
}
