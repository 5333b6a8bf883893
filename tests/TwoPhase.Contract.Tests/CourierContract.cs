using DeliveryService.Couriers;
using TwoPhase.Persistence;
using TwoPhase.Testing;

namespace TwoPhase.Contract.Tests;

/// <summary>The delivery service's couriers (<see cref="CourierReservations"/>) under the resource manager contract.</summary>
public abstract class CourierContract(IDatabaseTarget store) : ResourceManagerContract(store)
{
    protected override IResourceManager CreateResourceManager() => new CourierReservations();

    protected override async Task AddUnitsAsync(Database database, int units)
    {
        var known = await Sql.ScalarAsync(database, "SELECT COUNT(*) FROM couriers");
        for (var i = known + 1; i <= known + units; i++)
        {
            await Sql.ExecuteAsync(database, "INSERT INTO couriers (id, name, status) VALUES (@Id, @Id, 'free')", new { Id = $"courier-{i:D3}" });
        }
    }

    protected override string OneUnit(int n) => $$"""{"orderId":"order-{{n}}"}""";

    // Delivery refuses only when no courier is free.
    protected override string? Refused(int n) => null;

    protected override async Task<string> SnapshotAsync(Database database) =>
        await Sql.SnapshotAsync(database, "SELECT id || ' ' || status || ' ' || COALESCE(tx_id, '-') FROM couriers ORDER BY id")
        + "\n"
        + await Sql.SnapshotAsync(database, "SELECT tx_id || ' ' || courier_id || ' ' || COALESCE(order_id, '-') || ' ' || status FROM deliveries ORDER BY tx_id");
}

public sealed class CouriersOnSqlite() : CourierContract(new SqliteTarget());

public sealed class CouriersOnPostgres(PostgresServerFixture server) : CourierContract(server), IClassFixture<PostgresServerFixture>;
