using TwoPhase.EndToEnd.Tests.Harness;
using Xunit;
using Xunit.Abstractions;

namespace TwoPhase.EndToEnd.Tests;

/// <summary>
/// <c>TwoPhase:Coordinator:AnswerAfterDecision</c> on real processes: the client is told "committed" once the decision is
/// durable, before the participants acknowledge, and the transaction completes even when the coordinator is killed
/// right after the answer.
/// </summary>
public sealed class AnswerAfterDecisionTests(ITestOutputHelper output)
{
    private static SystemOptions Options => new()
    {
        Proxied = new HashSet<Service> { Service.Delivery },
        Environment = new Dictionary<Service, IReadOnlyDictionary<string, string>>
        {
            [Service.Order] = new Dictionary<string, string> { ["TwoPhase__Coordinator__AnswerAfterDecision"] = "true" },
        },
    };

    /// <summary>
    /// Delivery's COMMITs never arrive (the proxy drops them): the order is answered committed with delivery not among the
    /// acknowledged and not completed. The order service is killed, the link healed, the service started again: its
    /// recovery delivers the COMMIT and the order completes, everywhere committed.
    /// </summary>
    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.Postgres)]
    public async Task CommittedAnsweredBeforeDeliveryAcknowledges_CoordinatorKilled_RecoveryCompletesIt(Store store)
    {
        await using var system = await TestSystem.StartAsync(store, output, Options);
        await system.SeedAsync(new Dictionary<string, long> { ["widget"] = 10 }, couriers: 2);
        var dropCommits = system.Proxy(Service.Delivery).Arm(MessageFault.DropRequest, maxRequests: 10_000, Timeout.InfiniteTimeSpan, messageSuffix: "/commit");

        var order = Expect.Order(await system.Api.PlaceOrderAsync("widget", 2), "committed", 201);

        // Answered once the commit was durable: not even storage's acknowledgement was waited for (with the option off,
        // the answer waits for the round and lists storage).
        Assert.Empty(order.Acknowledged);
        Assert.False(order.Completed);
        Assert.Equal("committed", await system.Api.DecisionAsync(order.TransactionId));

        await system.KillAsync(Service.Order);
        dropCommits.Disarm();
        await system.StartServicesAsync(Service.Order);

        var after = await Invariants.AssertConvergedAsync(system);
        var stored = await system.Api.GetOrderAsync(order.OrderId);
        Assert.Equal("committed", stored.Status);
        Assert.True(stored.Completed);
        Assert.Equal(["delivery", "storage"], stored.Acknowledged.Order());
        Assert.Equal("committed", after.DeliveryLedger.Single(r => r.TransactionId == order.TransactionId).State);
        Assert.Equal((8L, 2L, 0L), (Assert.Single(after.Products).OnHand, after.Products[0].Sold, after.Products[0].Reserved));
        Assert.True(dropCommits.Hits >= 1);
    }

    /// <summary>With nothing in the way the early answer still ends in a completed order, and the next order too.</summary>
    [Fact]
    public async Task Plain_OrdersCommitAndComplete()
    {
        await using var system = await TestSystem.StartAsync(Store.Postgres, output, Options);
        await system.SeedAsync(new Dictionary<string, long> { ["widget"] = 10 }, couriers: 2);

        var first = Expect.Order(await system.Api.PlaceOrderAsync("widget", 1), "committed", 201);
        var second = Expect.Order(await system.Api.PlaceOrderAsync("widget", 1), "committed", 201);
        Assert.Empty(first.Acknowledged);
        Assert.Empty(second.Acknowledged);

        var after = await Invariants.AssertConvergedAsync(system);
        Assert.True((await system.Api.GetOrderAsync(first.OrderId)).Completed);
        Assert.True((await system.Api.GetOrderAsync(second.OrderId)).Completed);
        Assert.Equal(2, Assert.Single(after.Products).Sold);
    }
}
