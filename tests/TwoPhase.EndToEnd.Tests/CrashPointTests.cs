using TwoPhase.EndToEnd.Tests.Harness;
using TwoPhase.Protocol;
using Xunit;
using Xunit.Abstractions;

namespace TwoPhase.EndToEnd.Tests;

/// <summary>What the order in flight does at the other participant, so that the crash point is reached.</summary>
public enum OrderKind
{
    /// <summary>Both vote yes: the commit path.</summary>
    AllYes,

    /// <summary>Delivery has no courier: storage prepares, then is aborted.</summary>
    DeliveryRefuses,

    /// <summary>Storage lacks the stock: delivery prepares, then is aborted.</summary>
    StorageRefuses,
}

/// <summary>One process dying at one protocol point with one order in flight, and where the order must end.</summary>
public sealed record CrashScenario(Service Dies, ProtocolPoint Point, OrderKind Order, string Expected)
{
    public string Name
    {
        get
        {
            var point = Point.ToString();
            var where = point.StartsWith("Coordinator", StringComparison.Ordinal) ? point["Coordinator".Length..] : point["Participant".Length..];
            var path = Dies == Service.Order && Order != OrderKind.AllYes ? "OnAbortPath" : "";
            var who = Dies == Service.Order ? "Coordinator" : Dies.ToString();
            return $"{who}Dies{where}{path}_{(Expected == "committed" ? "Commits" : "Aborts")}EverywhereAfterRestart";
        }
    }
}

/// <summary>A scenario's name as a theory argument: shown whole in the test's display name (a string argument would be cut at 50 characters).</summary>
public sealed class CrashCase : IXunitSerializable
{
    public CrashCase()
    {
    }

    public CrashCase(string name) => Name = name;

    public string Name { get; private set; } = "";

    public void Serialize(IXunitSerializationInfo info) => info.AddValue(nameof(Name), Name);

    public void Deserialize(IXunitSerializationInfo info) => Name = info.GetValue<string>(nameof(Name));

    public override string ToString() => Name;
}

/// <summary>
/// The issue: "for every crash point, an order in flight when the process dies there, the process restarted, then
/// every transaction converges and every invariant holds". The service is started with <c>TWOPHASE_CRASH_AT</c>,
/// dies there (Environment.FailFast, as abrupt as kill -9), and is restarted without it.
/// </summary>
public sealed class CrashPointTests(ITestOutputHelper output)
{
    /// <summary>The matrix, in one fixed order (the enum's), so a failure reproduces.</summary>
    public static readonly IReadOnlyList<CrashScenario> Scenarios = BuildScenarios();

    private static List<CrashScenario> BuildScenarios()
    {
        var list = new List<CrashScenario>();
        foreach (var point in Enum.GetValues<ProtocolPoint>().Where(IsCoordinatorPoint))
        {
            // Before the decision is written the order can only abort (presumed abort); after, the decision stands.
            var decided = point is ProtocolPoint.CoordinatorAfterDecisionWritten or ProtocolPoint.CoordinatorBetweenPhaseTwoSends or ProtocolPoint.CoordinatorBeforeCompletedWritten;
            list.Add(new CrashScenario(Service.Order, point, OrderKind.AllYes, decided ? "committed" : "aborted"));
        }

        // Phase two of an abort decision too: it must be re-driven the same way.
        foreach (var point in new[] { ProtocolPoint.CoordinatorAfterDecisionWritten, ProtocolPoint.CoordinatorBetweenPhaseTwoSends, ProtocolPoint.CoordinatorBeforeCompletedWritten })
        {
            list.Add(new CrashScenario(Service.Order, point, OrderKind.DeliveryRefuses, "aborted"));
        }

        foreach (var participant in new[] { Service.Storage, Service.Delivery })
        {
            foreach (var point in Enum.GetValues<ProtocolPoint>().Where(p => !IsCoordinatorPoint(p)))
            {
                var (order, expected) = point switch
                {
                    // No vote reached the coordinator, or it arrived with the participant gone: abort.
                    ProtocolPoint.ParticipantBeforePrepareWritten or ProtocolPoint.ParticipantAfterPrepareWritten or ProtocolPoint.ParticipantBeforePrepareAnswered
                        => (OrderKind.AllYes, "aborted"),
                    ProtocolPoint.ParticipantBeforeCommitWritten or ProtocolPoint.ParticipantAfterCommitWritten
                        => (OrderKind.AllYes, "committed"),
                    // Abort points: the other participant refuses while this one is prepared.
                    _ => (participant == Service.Storage ? OrderKind.DeliveryRefuses : OrderKind.StorageRefuses, "aborted"),
                };
                list.Add(new CrashScenario(participant, point, order, expected));
            }
        }

        return list;
    }

    private static bool IsCoordinatorPoint(ProtocolPoint point) => point.ToString().StartsWith("Coordinator", StringComparison.Ordinal);

    /// <summary>
    /// Every scenario on SQLite; on PostgreSQL a representative subset (each phase of the protocol, each service,
    /// both decisions), which keeps the project within its time budget on a two-core CI machine. The store only
    /// changes how writes are made durable, which the subset exercises at every kind of point.
    /// </summary>
    public static readonly IReadOnlySet<string> PostgresSubset = new HashSet<string>
    {
        "CoordinatorDiesAfterPreparesSent_AbortsEverywhereAfterRestart",
        "CoordinatorDiesAfterDecisionWritten_CommitsEverywhereAfterRestart",
        "CoordinatorDiesBetweenPhaseTwoSends_CommitsEverywhereAfterRestart",
        "CoordinatorDiesAfterDecisionWrittenOnAbortPath_AbortsEverywhereAfterRestart",
        "StorageDiesAfterPrepareWritten_AbortsEverywhereAfterRestart",
        "StorageDiesBeforeCommitWritten_CommitsEverywhereAfterRestart",
        "DeliveryDiesAfterCommitWritten_CommitsEverywhereAfterRestart",
        "DeliveryDiesBeforeAbortWritten_AbortsEverywhereAfterRestart",
    };

    public static TheoryData<Store, CrashCase> Matrix()
    {
        var data = new TheoryData<Store, CrashCase>();
        foreach (var store in Enum.GetValues<Store>())
        {
            foreach (var scenario in Scenarios.Where(s => store == Store.Sqlite || PostgresSubset.Contains(s.Name)))
            {
                data.Add(store, new CrashCase(scenario.Name));
            }
        }

        return data;
    }

    [Fact]
    public void Matrix_CoversEveryProtocolPoint_OnEveryServiceThatReachesIt()
    {
        foreach (var point in Enum.GetValues<ProtocolPoint>())
        {
            var services = IsCoordinatorPoint(point) ? new[] { Service.Order } : [Service.Storage, Service.Delivery];
            foreach (var service in services)
            {
                Assert.Contains(Scenarios, s => s.Point == point && s.Dies == service);
            }
        }

        Assert.Equal(Scenarios.Count, Scenarios.Select(s => s.Name).Distinct().Count());
        Assert.Subset(Scenarios.Select(s => s.Name).ToHashSet(), PostgresSubset.ToHashSet());
    }

    [Theory]
    [MemberData(nameof(Matrix))]
    public async Task ProcessDiesAtCrashPoint_RestartedWithoutIt_OrderConvergesAndInvariantsHold(Store store, CrashCase scenario)
    {
        var s = Scenarios.Single(x => x.Name == scenario.Name);
        await using var system = await TestSystem.StartAsync(store, output, new SystemOptions { CrashAt = (s.Dies, s.Point.ToString()) });
        await system.SeedAsync(new Dictionary<string, long> { ["widget"] = 5 }, couriers: s.Order == OrderKind.DeliveryRefuses ? 0 : 2);
        var quantity = s.Order == OrderKind.StorageRefuses ? 6 : 1;

        OrderResult? answered = null;
        try
        {
            answered = await system.Api.PlaceOrderAsync("widget", quantity, idempotencyKey: "crash-order");
            system.Log($"client answer: {answered.Status} {answered.Order?.Status} {answered.Order?.Reason}");
        }
        catch (HttpRequestException e)
        {
            // The coordinator died under the request: expected, the client never learns the outcome here.
            system.Log($"client call failed, as it may: {e.Message}");
        }

        var dying = system[s.Dies];
        var exit = await dying.WaitForExitAsync(TimeSpan.FromSeconds(30));
        Assert.True(dying.LogContains($"crash point {s.Point}"), $"{s.Dies} exited ({exit}) but not at crash point {s.Point}.\n{dying.Tail()}");
        system.Log($"{s.Dies} died at {s.Point} with exit code {exit}");

        await system.StartServicesAsync(s.Dies);
        var after = await Invariants.AssertConvergedAsync(system);

        var order = Assert.Single(after.Orders);
        Assert.Equal(s.Expected, order.Status);
        if (answered?.Order is { } told)
        {
            // Durability: what a client was told survives the crash.
            Assert.Equal(order.OrderId, told.OrderId);
            Assert.Equal(told.Status, order.Status);
        }

        var storage = after.StorageLedger.SingleOrDefault(r => r.TransactionId == order.TransactionId)?.State;
        var delivery = after.DeliveryLedger.SingleOrDefault(r => r.TransactionId == order.TransactionId)?.State;
        if (s.Expected == "committed")
        {
            Assert.Equal(("committed", "committed"), (storage, delivery));
        }
        else
        {
            Assert.NotEqual("committed", storage);
            Assert.NotEqual("committed", delivery);
        }

        Assert.Equal(s.Expected == "committed" ? 1 : 0, after.Products.Single().Sold);

        // The client's retry after the crash finds the same order and its final outcome.
        var retry = await system.Api.PlaceOrderAsync("widget", quantity, idempotencyKey: "crash-order");
        Assert.Equal((order.OrderId, s.Expected), (retry.Order?.OrderId, retry.Order?.Status));
        await Invariants.AssertConvergedAsync(system);
    }
}
