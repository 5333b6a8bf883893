using TwoPhase.EndToEnd.Tests.Harness;
using Xunit;
using Xunit.Abstractions;

namespace TwoPhase.EndToEnd.Tests;

/// <summary>The plain outcomes: all yes commits; a no, or a participant that is not there, aborts and holds nothing.</summary>
public sealed class OrderFlowTests(ITestOutputHelper output)
{
    private static readonly Dictionary<string, long> Widgets = new() { ["widget"] = 10 };

    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.Postgres)]
    public async Task AllParticipantsVoteYes_OrderCommitsEverywhere(Store store)
    {
        await using var system = await TestSystem.StartAsync(store, output);
        await system.SeedAsync(Widgets, couriers: 2);

        var placed = await system.Api.PlaceOrderAsync("widget", 2);

        var order = Expect.Order(placed, "committed", 201);
        Assert.Null(order.Reason);
        Assert.Equal("yes", order.Votes["storage"].Vote);
        Assert.Equal("yes", order.Votes["delivery"].Vote);
        Assert.Equal("committed", (await system.Api.GetOrderAsync(order.OrderId)).Status);
        Assert.Equal("committed", await system.Api.DecisionAsync(order.TransactionId));

        var after = await Invariants.AssertConvergedAsync(system);
        var widget = Assert.Single(after.Products);
        Assert.Equal((8L, 2L, 0L), (widget.OnHand, widget.Sold, widget.Reserved));
        var delivery = Assert.Single(after.Deliveries);
        Assert.Equal((order.TransactionId, "active"), (delivery.TransactionId, delivery.Status));
        Assert.Equal(order.OrderId, delivery.OrderId);
    }

    [Theory]
    [InlineData(Store.Sqlite, "nosuch", 1, "unknown sku 'nosuch'")]
    [InlineData(Store.Sqlite, "widget", 11, "insufficient stock for sku 'widget'")]
    [InlineData(Store.Postgres, "nosuch", 1, "unknown sku 'nosuch'")]
    [InlineData(Store.Postgres, "widget", 11, "insufficient stock for sku 'widget'")]
    public async Task StorageVotesNo_OrderAbortsNamingStorage_NothingHeld(Store store, string sku, long quantity, string why)
    {
        // The order service's own SKU check would answer 400 before any transaction; off, storage decides.
        await using var system = await TestSystem.StartAsync(store, output, new SystemOptions
        {
            Environment = new Dictionary<Service, IReadOnlyDictionary<string, string>> { [Service.Order] = new Dictionary<string, string> { ["Orders__Catalog__Enabled"] = "false" } },
        });
        await system.SeedAsync(Widgets, couriers: 2);

        var placed = await system.Api.PlaceOrderAsync(sku, quantity);

        var order = Expect.Order(placed, "aborted", 200);
        Assert.Contains("storage", order.Reason);
        Assert.Contains(why, order.Reason);
        Assert.Equal("no", order.Votes["storage"].Vote);
        Assert.Equal("aborted", await system.Api.DecisionAsync(order.TransactionId));

        var after = await Invariants.AssertConvergedAsync(system);
        Assert.Equal(10, Assert.Single(after.Products).OnHand);
        Assert.All(after.Couriers, c => Assert.Equal("free", c.Status));
        Assert.Empty(after.Deliveries);
    }

    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.Postgres)]
    public async Task StorageRefusesOneLineOfTwo_OrderAborts_TheOtherLineIsNotHeld(Store store)
    {
        await using var system = await TestSystem.StartAsync(store, output);
        await system.SeedAsync(new Dictionary<string, long> { ["alpha"] = 10, ["beta"] = 10, ["gamma"] = 2 }, couriers: 2);

        // Lines are reserved in SKU order: alpha and beta are taken before gamma is found short.
        var placed = await system.Api.PlaceOrderAsync([new OrderLine("gamma", 5), new OrderLine("alpha", 3), new OrderLine("beta", 1)]);

        var order = Expect.Order(placed, "aborted");
        Assert.Contains("insufficient stock for sku 'gamma'", order.Reason);
        var after = await Invariants.AssertConvergedAsync(system);
        Assert.All(after.Products, p => Assert.Equal((0L, 0L), (p.Reserved, p.Sold)));
        Assert.Equal([10L, 10L, 2L], after.Products.OrderBy(p => p.Sku, StringComparer.Ordinal).Select(p => p.OnHand));
    }

    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.Postgres)]
    public async Task DeliveryVotesNoWithoutCouriers_OrderAbortsNamingDelivery_NothingHeld(Store store)
    {
        await using var system = await TestSystem.StartAsync(store, output);
        await system.SeedAsync(Widgets, couriers: 0);

        var placed = await system.Api.PlaceOrderAsync("widget", 3);

        var order = Expect.Order(placed, "aborted", 200);
        Assert.Contains("delivery", order.Reason);
        Assert.Contains("no free courier", order.Reason);
        Assert.Equal("yes", order.Votes["storage"].Vote);
        Assert.Equal("no", order.Votes["delivery"].Vote);

        var after = await Invariants.AssertConvergedAsync(system);
        var widget = Assert.Single(after.Products);
        Assert.Equal((10L, 0L, 0L), (widget.OnHand, widget.Sold, widget.Reserved));
        Assert.Equal("aborted", after.StorageLedger.Single(r => r.TransactionId == order.TransactionId).State);
    }

    [Theory]
    [InlineData(Store.Sqlite, Service.Storage)]
    [InlineData(Store.Sqlite, Service.Delivery)]
    [InlineData(Store.Postgres, Service.Storage)]
    [InlineData(Store.Postgres, Service.Delivery)]
    public async Task ParticipantNotStarted_OrderAbortsAsUnreachable_NothingHeldOnceItComesBack(Store store, Service down)
    {
        var up = down == Service.Storage ? Service.Delivery : Service.Storage;
        await using var system = await TestSystem.StartAsync(store, output, new SystemOptions { StartNow = new HashSet<Service> { Service.Order, up } });
        await SeedAsync(system, up);

        var placed = await system.Api.PlaceOrderAsync("widget", 1);

        var order = Expect.Order(placed, "aborted");
        var name = down.ToString().ToLowerInvariant();
        Assert.Contains(name, order.Reason);
        Assert.True(order.Reason!.Contains("unreachable", StringComparison.Ordinal) || order.Reason.Contains("deadline", StringComparison.Ordinal), order.Reason);
        Assert.Equal("none", order.Votes[name].Vote);

        await system.StartServicesAsync(down);
        await SeedAsync(system, down);
        var after = await Invariants.AssertConvergedAsync(system);
        Assert.All(after.Products, p => Assert.Equal(0, p.Sold));
        Assert.Empty(after.Deliveries);
    }

    [Theory]
    [InlineData(Store.Sqlite, Service.Storage)]
    [InlineData(Store.Sqlite, Service.Delivery)]
    [InlineData(Store.Postgres, Service.Storage)]
    [InlineData(Store.Postgres, Service.Delivery)]
    public async Task ParticipantKilled_OrderAbortsAsUnreachable_NothingHeldAfterRestart_ThenOrdersCommitAgain(Store store, Service killed)
    {
        await using var system = await TestSystem.StartAsync(store, output);
        await system.SeedAsync(Widgets, couriers: 2);
        await system.KillAsync(killed);

        var placed = await system.Api.PlaceOrderAsync("widget", 1);

        var order = Expect.Order(placed, "aborted");
        Assert.Contains(killed.ToString().ToLowerInvariant(), order.Reason);

        await system.StartServicesAsync(killed);
        await Invariants.AssertConvergedAsync(system);
        Expect.Order(await system.Api.PlaceOrderAsync("widget", 1), "committed");
        var after = await Invariants.AssertConvergedAsync(system);
        Assert.Equal(1, Assert.Single(after.Products).Sold);
    }

    private static Task SeedAsync(TestSystem system, Service participant) => participant == Service.Storage
        ? system.Api.AddProductAsync("widget", 10)
        : system.Api.AddCouriersAsync(2);
}
