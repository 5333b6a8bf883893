using System.Text.Json;
using Dapper;
using DeliveryService.Couriers;
using TwoPhase.Persistence;
using StockReservations = StorageService.Products.StockReservations;

namespace TwoPhase.Cli.Bench;

/// <summary>
/// The monolith ceiling (<c>bench --workload monolith</c>, docs/performance.md): the business writes of one order as
/// ONE local transaction in ONE PostgreSQL database, with no 2PC and no HTTP. The tables are the services' own
/// (<see cref="StockReservations"/> and <see cref="CourierReservations"/> schemas, same constraints and indexes) plus
/// an <c>orders</c> table standing for the order service's record; per order: one conditional UPDATE per line that
/// takes the stock only if enough is free (storage's check), one courier claimed with FOR UPDATE SKIP LOCKED (the
/// delivery service's pick) and made busy, its delivery inserted, the order inserted, one durable commit. The delivery
/// completion is the delivery service's own set write (the same group commit the bound uses).
/// </summary>
public sealed class Monolith : IAsyncDisposable
{
    private const string OrdersSchema = """
        CREATE TABLE IF NOT EXISTS orders (
            id               TEXT PRIMARY KEY,
            client_order_id  TEXT NOT NULL UNIQUE,
            items            TEXT NOT NULL,
            courier_id       TEXT NOT NULL,
            created_ms       BIGINT NOT NULL
        );
        """;

    private readonly Database _database;

    private Monolith(Database database) => _database = database;

    /// <summary>Opens the database (a fresh one), creates the schemas and seeds the catalog's products and the couriers.</summary>
    public static async Task<Monolith> CreateAsync(string connection, int poolSize, BenchCatalog catalog, int couriers, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        var database = Database.Create(new DatabaseOptions { Provider = "postgres", ConnectionString = connection, MaxPoolSize = poolSize }, "unused.db");
        var monolith = new Monolith(database);
        try
        {
            var schema = string.Join('\n', new StockReservations().Schema(Dialect.Postgres), new CourierReservations().Schema(Dialect.Postgres), OrdersSchema);
            await database.WriteAsync(tx => tx.Connection.ExecuteAsync(new CommandDefinition(schema, transaction: tx.Transaction, cancellationToken: cancellationToken)), cancellationToken);
            await BenchRows.InsertProductsAsync(database, catalog, cancellationToken);
            await BenchRows.InsertCouriersAsync(database, couriers, cancellationToken);
            return monolith;
        }
        catch
        {
            await monolith.DisposeAsync();
            throw;
        }
    }

    /// <summary>One order as one local transaction: committed, or aborted (rolled back) when stock or a courier is missing.</summary>
    public async Task<Attempt> PlaceAsync(IReadOnlyList<OrderLine> items, string clientOrderId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(items);
        var id = Guid.CreateVersion7().ToString("N");
        try
        {
            await _database.WriteAsync(
                async tx =>
                {
                    // In SKU order, so two orders naming the same two SKUs lock them in the same order (no deadlock between them).
                    foreach (var line in items.OrderBy(l => l.Sku, StringComparer.Ordinal))
                    {
                        var taken = await tx.Connection.ExecuteAsync(new CommandDefinition(
                            "UPDATE products SET on_hand = on_hand - @Quantity, sold = sold + @Quantity WHERE sku = @Sku AND on_hand - reserved >= @Quantity",
                            new { line.Sku, line.Quantity },
                            tx.Transaction,
                            cancellationToken: cancellationToken));
                        if (taken == 0)
                        {
                            throw new RefusedException($"insufficient stock for sku '{line.Sku}'");
                        }
                    }

                    var courier = await tx.Connection.ExecuteScalarAsync<string?>(new CommandDefinition(
                        """
                        UPDATE couriers SET status = 'busy', tx_id = @Tx
                        WHERE id = (SELECT id FROM couriers WHERE status = 'free' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) AND status = 'free'
                        RETURNING id
                        """,
                        new { Tx = id },
                        tx.Transaction,
                        cancellationToken: cancellationToken)) ?? throw new RefusedException("no free courier");
                    var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
                    return await tx.Connection.ExecuteAsync(new CommandDefinition(
                        """
                        INSERT INTO deliveries (tx_id, courier_id, order_id, status, created_ms) VALUES (@Tx, @Courier, @Tx, 'active', @Now);
                        INSERT INTO orders (id, client_order_id, items, courier_id, created_ms) VALUES (@Tx, @Client, @Items, @Courier, @Now);
                        """,
                        new { Tx = id, Courier = courier, Client = clientOrderId, Items = JsonSerializer.Serialize(items, JsonSerializerOptions.Web), Now = now },
                        tx.Transaction,
                        cancellationToken: cancellationToken));
                },
                cancellationToken);
            return new Attempt(BenchOutcome.Committed, id);
        }
        catch (RefusedException e)
        {
            return new Attempt(BenchOutcome.Aborted, id, e.Message);
        }
    }

    /// <summary>The delivery service's completion (frees the courier): the same set write through the same group commit.</summary>
    public async Task<bool> CompleteAsync(Attempt attempt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(attempt);
        return attempt.TransactionId is { } id
            && await _database.WriteBatchedAsync(CourierReservations.Completions, id, cancellationToken) is not null;
    }

    /// <summary>Checks the books after a run: units sold equal the units of committed orders, no stock below zero, one active delivery per busy courier.</summary>
    public Task<string?> AuditAsync(CancellationToken cancellationToken) =>
        _database.ReadAsync<string?>(
            async connection =>
            {
                var problems = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
                    """
                    SELECT (SELECT COUNT(*) FROM products WHERE on_hand < 0 OR on_hand + sold <> received)
                         + (SELECT COUNT(*) FROM couriers c WHERE (c.status = 'busy') <> EXISTS (SELECT 1 FROM deliveries d WHERE d.courier_id = c.id AND d.status = 'active'))
                         + (SELECT COUNT(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.tx_id = o.id))
                    """,
                    cancellationToken: cancellationToken));
                return problems == 0 ? null : $"{problems} inconsistent rows";
            },
            cancellationToken);

    public ValueTask DisposeAsync() => _database.DisposeAsync();

    private sealed class RefusedException(string message) : Exception(message);
}
