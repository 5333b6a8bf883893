using System.Collections.Concurrent;
using TwoPhase.EndToEnd.Tests.Harness;
using Xunit;
using Xunit.Abstractions;

namespace TwoPhase.EndToEnd.Tests;

/// <summary>Many orders at once against scarce resources: exactly as many commit as there are resources, never more.</summary>
public sealed class ConcurrencyTests(ITestOutputHelper output)
{
    // These tests are about races, not deadlines: a generous prepare deadline keeps a slow machine from
    // turning a would-be commit into an abort (which would make "exactly N" depend on timing).
    private static readonly SystemOptions Patient = new() { PrepareDeadlineMs = 10_000 };

    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.Postgres)]
    public async Task TwoHundredOrdersAtConcurrency50_Against50Couriers_ExactlyFiftyCommit_NoCourierTwice(Store store)
    {
        await using var system = await TestSystem.StartAsync(store, output, Patient);
        await system.SeedAsync(new Dictionary<string, long> { ["widget"] = 1000 }, couriers: 50);

        var results = await PlaceConcurrentlyAsync(system, orders: 200, concurrency: 50, sku: "widget");

        Assert.Equal(50, results.Count(r => r.Status == "committed"));
        Assert.All(results.Where(r => r.Status == "aborted"), r => Assert.Contains("no free courier", r.Reason));
        var after = await Invariants.AssertConvergedAsync(system, TimeSpan.FromSeconds(60));
        Assert.Equal(200, after.Orders.Count);
        Assert.Equal(50, after.Committed.Count);
        Assert.Equal(50, after.Deliveries.Count(d => d.Status == "active"));
        Assert.Equal(50, after.Deliveries.Select(d => d.CourierId).Distinct().Count());
        Assert.All(after.Couriers, c => Assert.Equal("busy", c.Status));
        var widget = Assert.Single(after.Products);
        Assert.Equal((950L, 50L, 0L), (widget.OnHand, widget.Sold, widget.Reserved));
    }

    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.Postgres)]
    public async Task ScarceProduct_FortyConcurrentOrdersForTenUnits_ExactlyTenCommit_NeverOversold(Store store)
    {
        await using var system = await TestSystem.StartAsync(store, output, Patient);
        await system.SeedAsync(new Dictionary<string, long> { ["scarce"] = 10 }, couriers: 40);

        // Watch stock while the orders run: conservation must hold at every moment, not only at the end.
        using var stop = new CancellationTokenSource();
        var seen = new ConcurrentQueue<string>();
        var watcher = WatchStockAsync(system, seen, stop.Token);
        var results = await PlaceConcurrentlyAsync(system, orders: 40, concurrency: 40, sku: "scarce");
        await stop.CancelAsync();
        var samples = await watcher;

        Assert.Equal(10, results.Count(r => r.Status == "committed"));
        Assert.All(results.Where(r => r.Status == "aborted"), r => Assert.Contains("storage voted no: insufficient stock for sku 'scarce'", r.Reason));
        Assert.True(samples > 0, "the stock watcher took no sample");
        Assert.Empty(seen);
        var after = await Invariants.AssertConvergedAsync(system, TimeSpan.FromSeconds(60));
        var scarce = Assert.Single(after.Products);
        Assert.Equal((0L, 10L, 10L), (scarce.OnHand, scarce.Sold, scarce.Received));
        Assert.Equal(10, after.Deliveries.Count);
    }

    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.Postgres)]
    public async Task MultiLineOrdersRacingForTwoProducts_EachOrderAllOrNothing(Store store)
    {
        await using var system = await TestSystem.StartAsync(store, output, Patient);
        await system.SeedAsync(new Dictionary<string, long> { ["plenty"] = 100, ["scarce"] = 8 }, couriers: 30);

        // Every order wants both; only 8 can have the scarce one, and the others must not keep their "plenty" unit.
        using var gate = new SemaphoreSlim(30);
        var results = await Task.WhenAll(Enumerable.Range(0, 30).Select(async i =>
        {
            await gate.WaitAsync();
            try
            {
                OrderLine[] lines = i % 2 == 0 ? [new("plenty", 2), new("scarce", 1)] : [new("scarce", 1), new("plenty", 2)];
                var placed = await system.Api.PlaceOrderAsync(lines);
                return placed.Order ?? throw new InvalidOperationException($"An order was answered {placed.Status}: {placed.Body}");
            }
            finally
            {
                gate.Release();
            }
        }));

        Assert.Equal(8, results.Count(r => r.Status == "committed"));
        var after = await Invariants.AssertConvergedAsync(system, TimeSpan.FromSeconds(60));
        var products = after.Products.ToDictionary(p => p.Sku);
        Assert.Equal((84L, 16L), (products["plenty"].OnHand, products["plenty"].Sold));
        Assert.Equal((0L, 8L), (products["scarce"].OnHand, products["scarce"].Sold));
    }

    private static async Task<List<OrderView>> PlaceConcurrentlyAsync(TestSystem system, int orders, int concurrency, string sku)
    {
        using var gate = new SemaphoreSlim(concurrency);
        var tasks = Enumerable.Range(0, orders).Select(async _ =>
        {
            await gate.WaitAsync();
            try
            {
                var placed = await system.Api.PlaceOrderAsync(sku, 1);
                return placed.Order ?? throw new InvalidOperationException($"An order was answered {placed.Status}: {placed.Body}");
            }
            finally
            {
                gate.Release();
            }
        });
        var results = (await Task.WhenAll(tasks)).ToList();
        system.Log($"{orders} orders: {results.Count(r => r.Status == "committed")} committed, {results.Count(r => r.Status == "aborted")} aborted");
        return results;
    }

    private static async Task<int> WatchStockAsync(TestSystem system, ConcurrentQueue<string> violations, CancellationToken stop)
    {
        var samples = 0;
        // Bounded: the orders finish in seconds; a minute of sampling is far beyond that.
        for (var i = 0; i < 6000 && !stop.IsCancellationRequested; i++)
        {
            foreach (var p in await system.Api.ProductsAsync())
            {
                if (p.OnHand + p.Sold != p.Received || p.OnHand < 0 || p.Reserved < 0 || p.Reserved > p.OnHand || p.Sold > p.Received)
                {
                    violations.Enqueue($"{p.Sku}: onHand {p.OnHand}, reserved {p.Reserved}, sold {p.Sold}, received {p.Received}");
                }
            }

            samples++;
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(10), stop);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        return samples;
    }
}
