using Dapper;
using Npgsql;
using Reference.Contracts;
using TwoPhase.Cli.Bench;

namespace TwoPhase.Tests.Bench;

/// <summary>The monolith ceiling on real PostgreSQL: one local transaction per order, all or nothing, books that add up.</summary>
public sealed class BenchMonolithTests(PostgresServerFixture server) : IClassFixture<PostgresServerFixture>
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task ConcurrentOrders_CommitWithStockAndCourier_RefusedOnesChangeNothing_BooksAddUp()
    {
        var (_, connection) = await server.CreateOwnDatabaseAsync();
        var catalog = new BenchCatalog("mono");
        const int couriers = 30;
        await using var monolith = await Monolith.CreateAsync(connection, 8, catalog, couriers, None);

        // 24 orders from 8 workers at once on the plentiful SKUs: each takes stock and a courier.
        var placed = await Task.WhenAll(Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            var random = new Random(w + 1);
            var attempts = new List<(IReadOnlyList<OrderLine> Lines, Attempt Attempt)>();
            for (var k = 0; k < 3; k++)
            {
                var lines = catalog.NextOrder(WorkloadKind.Monolith, random, w, k);
                attempts.Add((lines, await monolith.PlaceAsync(lines, $"mono-w{w}-{k}", None)));
            }

            return attempts;
        })));
        var all = placed.SelectMany(a => a).ToList();
        Assert.All(all, a => Assert.Equal(BenchOutcome.Committed, a.Attempt.Outcome));

        // Plentiful stock first, then the empty SKU: the whole order rolls back, the first line's units included.
        var refused = await monolith.PlaceAsync([new OrderLine(catalog.PlentifulSkus[0], 2), new OrderLine(catalog.EmptySku, 1)], "mono-refused", None);
        Assert.Equal(BenchOutcome.Aborted, refused.Outcome);
        Assert.Contains("insufficient stock", refused.Error, StringComparison.Ordinal);

        // Couriers run out after 30 busy ones: 24 taken, so 6 more commit and the 7th is refused with no stock taken.
        for (var i = 0; i < couriers - all.Count; i++)
        {
            Assert.Equal(BenchOutcome.Committed, (await monolith.PlaceAsync([new OrderLine(catalog.HotSku, 1)], $"mono-hot-{i}", None)).Outcome);
        }

        var noCourier = await monolith.PlaceAsync([new OrderLine(catalog.HotSku, 1)], "mono-no-courier", None);
        Assert.Equal(BenchOutcome.Aborted, noCourier.Outcome);
        Assert.Equal("no free courier", noCourier.Error);

        Assert.Null(await monolith.AuditAsync(None));
        await using (var db = new NpgsqlConnection(connection))
        {
            var expectedUnits = all.Sum(a => a.Lines.Sum(l => l.Quantity)) + (couriers - all.Count);
            Assert.Equal(expectedUnits, await db.ExecuteScalarAsync<long>("SELECT SUM(sold) FROM products"));
            Assert.Equal(couriers, await db.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM orders"));
            Assert.Equal(couriers, await db.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM couriers WHERE status = 'busy'"));
            Assert.Equal(0, await db.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM orders WHERE client_order_id IN ('mono-refused', 'mono-no-courier')"));
        }

        // Completing a delivery frees its courier: the next order gets it.
        Assert.True(await monolith.CompleteAsync(all[0].Attempt, None));
        Assert.Equal(BenchOutcome.Committed, (await monolith.PlaceAsync([new OrderLine(catalog.HotSku, 1)], "mono-after-complete", None)).Outcome);
        Assert.Null(await monolith.AuditAsync(None));
    }
}
