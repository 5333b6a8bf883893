using StorageService.Products;
using TwoPhase.Persistence;
using TwoPhase.Testing;

namespace TwoPhase.Contract.Tests;

/// <summary>The storage service's stock (<see cref="StockReservations"/>) under the resource manager contract.</summary>
public abstract class StockContract(IDatabaseTarget store) : ResourceManagerContract(store)
{
    protected override IResourceManager CreateResourceManager() => new StockReservations();

    protected override Task AddUnitsAsync(Database database, int units) =>
        Sql.ExecuteAsync(
            database,
            """
            INSERT INTO products (sku, name, on_hand, reserved, sold, received) VALUES ('scarce', 'Scarce', @Units, 0, 0, @Units)
            ON CONFLICT (sku) DO UPDATE SET on_hand = products.on_hand + excluded.on_hand, received = products.received + excluded.received
            """,
            new { Units = units });

    protected override string OneUnit(int n) => $$"""{"orderId":"order-{{n}}","items":[{"sku":"scarce","quantity":1}]}""";

    // Two lines, the known one reserved first (lines go in SKU order): the refusal must give it back.
    protected override string? Refused(int n) =>
        $$"""{"orderId":"order-{{n}}","items":[{"sku":"scarce","quantity":1},{"sku":"unknown-sku","quantity":1}]}""";

    protected override Task<string> SnapshotAsync(Database database) =>
        Sql.SnapshotAsync(database, "SELECT sku || ' on_hand=' || on_hand || ' reserved=' || reserved || ' sold=' || sold || ' received=' || received FROM products ORDER BY sku");
}

public sealed class StockOnSqlite() : StockContract(new SqliteTarget());

public sealed class StockOnPostgres(PostgresServerFixture server) : StockContract(server), IClassFixture<PostgresServerFixture>;
