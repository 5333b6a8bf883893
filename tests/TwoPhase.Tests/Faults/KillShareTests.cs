using TwoPhase.Harness;

namespace TwoPhase.Tests.Faults;

public sealed class KillShareTests
{
    private static List<FaultRecord> AllHappened(IReadOnlyList<PlannedFault> plan) =>
        plan.Select((p, i) => new FaultRecord(i + 1, p, p.AfterOrder, TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero)).ToList();

    [Theory]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(11)]
    public void Every_kill_count_the_plan_deals_passes_when_every_planned_kill_happened(int kills)
    {
        var plan = FaultPlan.Create(500, new FaultCounts(kills, 0, 0, 0), new Random(kills));

        Assert.Empty(KillShare.Shortfalls(plan, AllHappened(plan)));
    }

    [Fact]
    public void A_service_killed_fewer_times_than_dealt_is_reported()
    {
        var plan = FaultPlan.Create(500, new FaultCounts(5, 0, 0, 0), new Random(5));
        var faults = AllHappened(plan);
        faults.RemoveAt(faults.FindIndex(f => f.Fault.Target == ServiceKind.Order));

        var problem = Assert.Single(KillShare.Shortfalls(plan, faults));
        Assert.StartsWith(ServiceKind.Order.ShortName(), problem, StringComparison.Ordinal);
    }
}
