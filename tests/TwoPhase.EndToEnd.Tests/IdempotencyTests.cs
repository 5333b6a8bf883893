using TwoPhase.EndToEnd.Tests.Harness;
using Xunit;
using Xunit.Abstractions;

namespace TwoPhase.EndToEnd.Tests;

/// <summary>Client retries: the same Idempotency-Key is the same order and one transaction; a reused key for another order is refused.</summary>
public sealed class IdempotencyTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.Postgres)]
    public async Task SameIdempotencyKeyTwice_SameOrder_OneTransaction(Store store)
    {
        await using var system = await TestSystem.StartAsync(store, output);
        await system.SeedAsync(new Dictionary<string, long> { ["widget"] = 10 }, couriers: 5);

        var first = await system.Api.PlaceOrderAsync("widget", 2, idempotencyKey: "retry-me-1");
        var second = await system.Api.PlaceOrderAsync("widget", 2, idempotencyKey: "retry-me-1");

        Expect.Order(first, "committed", 201);
        Assert.Equal(first.Order!.OrderId, Expect.Order(second, "committed").OrderId);
        var after = await Invariants.AssertConvergedAsync(system);
        Assert.Single(after.Orders);
        Assert.Single(after.StorageLedger);
        Assert.Single(after.DeliveryLedger);
        Assert.Equal(2, Assert.Single(after.Products).Sold);
    }

    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.Postgres)]
    public async Task SameIdempotencyKeySentConcurrently_OneOrder_OneTransaction(Store store)
    {
        await using var system = await TestSystem.StartAsync(store, output);
        await system.SeedAsync(new Dictionary<string, long> { ["widget"] = 10 }, couriers: 5);

        var placed = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => system.Api.PlaceOrderAsync("widget", 1, idempotencyKey: "burst-1")));

        Assert.All(placed, p => Expect.Order(p, "committed"));
        Assert.Single(placed.Select(p => p.Order!.OrderId).Distinct());
        var after = await Invariants.AssertConvergedAsync(system);
        Assert.Single(after.Orders);
        Assert.Single(after.StorageLedger);
        Assert.Equal(1, Assert.Single(after.Products).Sold);
    }

    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.Postgres)]
    public async Task SameIdempotencyKeyDifferentBody_Is422_AndChangesNothing(Store store)
    {
        await using var system = await TestSystem.StartAsync(store, output);
        await system.SeedAsync(new Dictionary<string, long> { ["widget"] = 10 }, couriers: 5);

        var first = await system.Api.PlaceOrderAsync("widget", 1, idempotencyKey: "key-7");
        var other = await system.Api.PlaceOrderAsync("widget", 3, idempotencyKey: "key-7");

        Expect.Order(first, "committed");
        Assert.Equal(422, other.Status);
        Assert.Contains("Idempotency-Key", other.Body);
        var after = await Invariants.AssertConvergedAsync(system);
        Assert.Single(after.Orders);
        Assert.Equal(1, Assert.Single(after.Products).Sold);
    }
}
