namespace TwoPhase.Topology.Tests;

/// <summary>The schedule alone: covers every nemesis and every node role, bounded, the same for the same seed.</summary>
public sealed class NemesisScheduleTests
{
    private static readonly IReadOnlyList<NemesisNode> Nodes = NemesisNode.Layout(3, 2, 2);

    private static IReadOnlyList<NemesisEvent> Make(int faults, int seed, int orders = 20_000) =>
        NemesisSchedule.Create(Nodes, new NemesisScheduleOptions { Faults = faults, Orders = orders }, seed);

    [Theory]
    [InlineData(8, 1)]
    [InlineData(16, 2)]
    [InlineData(100, 3)]
    public void Every_kind_appears_when_there_are_at_least_as_many_faults_as_kinds(int faults, int seed)
    {
        var schedule = Make(faults, seed);
        Assert.Equal(faults, schedule.Count);
        foreach (var kind in Enum.GetValues<NemesisKind>())
        {
            Assert.Contains(schedule, e => e.Kind == kind);
        }
    }

    [Fact]
    public void Every_node_role_is_hit_and_each_kind_only_hits_roles_it_can()
    {
        var schedule = Make(100, 7);
        foreach (var role in Enum.GetValues<NodeRole>())
        {
            Assert.Contains(schedule, e => e.Kind is not (NemesisKind.Split or NemesisKind.Bridge) && e.Nodes.Any(n => RoleOf(n) == role));
        }

        foreach (var e in schedule)
        {
            switch (e.Kind)
            {
                case NemesisKind.Kill:
                    Assert.NotEqual(NodeRole.Database, RoleOf(e.Nodes[0]));
                    break;
                case NemesisKind.DatabaseKill:
                    Assert.Equal(NodeRole.Database, RoleOf(e.Nodes[0]));
                    break;
                case NemesisKind.Split or NemesisKind.Bridge:
                    Assert.NotEmpty(e.HalfA);
                    Assert.NotEmpty(e.HalfB);
                    Assert.Empty(e.HalfA.Intersect(e.HalfB));
                    var covered = e.HalfA.Concat(e.HalfB).Concat(e.BridgeNode is { } b ? [b] : []).Order().ToList();
                    Assert.Equal(Nodes.Select(n => n.Name).Order(), covered);
                    Assert.Equal(e.Kind == NemesisKind.Bridge, e.BridgeNode is not null);
                    break;
                case NemesisKind.FlakyLink:
                    Assert.Equal(2, e.Nodes.Count);
                    Assert.NotEqual(e.Nodes[0], e.Nodes[1]);
                    Assert.InRange(e.LossPercent, 20, 60);
                    break;
                case NemesisKind.SlowLink:
                    Assert.InRange(e.KilobitsPerSecond, 64, 512);
                    break;
            }
        }
    }

    [Fact]
    public void Durations_and_orders_are_bounded_and_spread_over_the_load()
    {
        var schedule = Make(100, 11, orders: 20_000);
        Assert.All(schedule, e => Assert.InRange(e.Duration, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(4)));
        Assert.All(schedule, e => Assert.InRange(e.AfterOrder, 1000, 18_000));
        // Stratified: in schedule order and never two at one order.
        Assert.Equal(schedule.Select(e => e.AfterOrder).Order(), schedule.Select(e => e.AfterOrder));
        Assert.Equal(schedule.Count, schedule.Select(e => e.AfterOrder).Distinct().Count());
    }

    [Fact]
    public void The_same_seed_gives_the_same_schedule_and_another_seed_another()
    {
        static string Text(IReadOnlyList<NemesisEvent> s) => string.Join("\n", s.Select(e => $"{e.AfterOrder} {e.Kind} {e.Description} {e.Duration.TotalMilliseconds}"));
        Assert.Equal(Text(Make(40, 5)), Text(Make(40, 5)));
        Assert.NotEqual(Text(Make(40, 5)), Text(Make(40, 6)));
    }

    [Fact]
    public void Too_few_orders_for_the_faults_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Make(100, 1, orders: 50));
        Assert.Empty(Make(0, 1, orders: 1));
    }

    [Fact]
    public void Two_network_faults_never_overlap_and_a_restart_keeps_its_database()
    {
        var isolatePg = new NemesisEvent(NemesisKind.Isolate, ["pg-storage"], "", TimeSpan.FromSeconds(1));
        var slowOrder = new NemesisEvent(NemesisKind.SlowLink, ["order-1"], "", TimeSpan.FromSeconds(1));
        var killStorage = new NemesisEvent(NemesisKind.Kill, ["storage-1"], "", TimeSpan.FromSeconds(1));
        var killOrder = new NemesisEvent(NemesisKind.Kill, ["order-2"], "", TimeSpan.FromSeconds(1));
        var pauseOrder = new NemesisEvent(NemesisKind.Pause, ["order-1"], "", TimeSpan.FromSeconds(1));
        Assert.False(NemesisSchedule.CanOverlap(isolatePg, slowOrder, Nodes));
        Assert.False(NemesisSchedule.CanOverlap(isolatePg, killStorage, Nodes));
        Assert.False(NemesisSchedule.CanOverlap(killStorage, isolatePg, Nodes));
        Assert.True(NemesisSchedule.CanOverlap(isolatePg, killOrder, Nodes));
        Assert.False(NemesisSchedule.CanOverlap(slowOrder, pauseOrder, Nodes));
        Assert.True(NemesisSchedule.CanOverlap(killOrder, pauseOrder, Nodes));
    }

    private static NodeRole RoleOf(string name) => Nodes.Single(n => n.Name == name).Role;
}
