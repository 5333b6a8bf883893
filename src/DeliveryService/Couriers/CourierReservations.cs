using System.Text.Json;
using Dapper;
using TwoPhase.AspNetCore;
using TwoPhase.Persistence;
using TwoPhase.Protocol;

namespace DeliveryService.Couriers;

/// <summary>What delivery holds for a prepared order.</summary>
public sealed record CourierHolding(string CourierId, string? OrderId);

/// <summary>
/// Couriers as a 2PC resource. PREPARE claims one free courier with a single UPDATE (on PostgreSQL the
/// candidate row is picked with FOR UPDATE SKIP LOCKED, so concurrent prepares never queue on the same
/// courier); COMMIT starts the delivery; ABORT frees the courier. A partial unique index makes a second
/// active delivery for one courier impossible, whatever the code above it does.
/// </summary>
public sealed class CourierReservations : IResourceManager
{
    public string Schema(Dialect dialect) => """
        CREATE TABLE IF NOT EXISTS couriers (
            id      TEXT PRIMARY KEY,
            name    TEXT NOT NULL,
            status  TEXT NOT NULL,
            tx_id   TEXT NULL,
            CHECK (status IN ('free', 'reserved', 'busy')),
            CHECK ((status = 'free') = (tx_id IS NULL))
        );
        CREATE INDEX IF NOT EXISTS couriers_free ON couriers (id) WHERE status = 'free';
        CREATE TABLE IF NOT EXISTS deliveries (
            tx_id         TEXT PRIMARY KEY,
            courier_id    TEXT NOT NULL REFERENCES couriers (id),
            order_id      TEXT NULL,
            status        TEXT NOT NULL,
            created_ms    BIGINT NOT NULL,
            completed_ms  BIGINT NULL,
            CHECK (status IN ('active', 'completed'))
        );
        CREATE UNIQUE INDEX IF NOT EXISTS deliveries_one_active_per_courier ON deliveries (courier_id) WHERE status = 'active';
        """;

    public async Task<Reservation> ReserveAsync(LocalTransaction tx, string transactionId, string payload, CancellationToken cancellationToken)
    {
        // SQLite has one writer at a time, so a plain subquery is already race-free there.
        var pick = tx.Dialect == Dialect.Postgres
            ? "SELECT id FROM couriers WHERE status = 'free' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
            : "SELECT id FROM couriers WHERE status = 'free' ORDER BY id LIMIT 1";
        var courier = await tx.Connection.ExecuteScalarAsync<string?>(new CommandDefinition(
            $"UPDATE couriers SET status = 'reserved', tx_id = @Tx WHERE id = ({pick}) AND status = 'free' RETURNING id",
            new { Tx = transactionId },
            tx.Transaction,
            cancellationToken: cancellationToken));
        if (courier is null)
        {
            return Reservation.Refused("no free courier");
        }

        return Reservation.Held(JsonSerializer.Serialize(new CourierHolding(courier, DeliveryPrepareRules.OrderId(payload)), JsonSerializerOptions.Web));
    }

    public async Task CommitAsync(LocalTransaction tx, string transactionId, string? holding, CancellationToken cancellationToken)
    {
        var held = Held(holding);
        await tx.Connection.ExecuteAsync(new CommandDefinition(
            """
            UPDATE couriers SET status = 'busy' WHERE id = @CourierId AND tx_id = @Tx;
            INSERT INTO deliveries (tx_id, courier_id, order_id, status, created_ms) VALUES (@Tx, @CourierId, @OrderId, 'active', @Now);
            """,
            new { Tx = transactionId, held.CourierId, held.OrderId, Now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() },
            tx.Transaction,
            cancellationToken: cancellationToken));
    }

    /// <summary>
    /// Many COMMITs of one group commit (PostgreSQL): every courier becomes busy in one UPDATE and every delivery is
    /// inserted in one INSERT, sent together (one round trip).
    /// </summary>
    public Task CommitManyAsync(LocalTransaction tx, IReadOnlyList<LedgerEntry> held, CancellationToken cancellationToken)
    {
        var holdings = InCourierOrder(held);
        return tx.Connection.ExecuteAsync(new CommandDefinition(
            """
            UPDATE couriers c SET status = 'busy' FROM unnest(@Couriers, @Txs) AS u(id, tx) WHERE c.id = u.id AND c.tx_id = u.tx;
            INSERT INTO deliveries (tx_id, courier_id, order_id, status, created_ms)
            SELECT u.tx, u.id, u.order_id, 'active', @Now FROM unnest(@Txs, @Couriers, @OrderIds) AS u(tx, id, order_id);
            """,
            new
            {
                Txs = holdings.Select(h => h.TransactionId).ToArray(),
                Couriers = holdings.Select(h => h.Held.CourierId).ToArray(),
                OrderIds = holdings.Select(h => h.Held.OrderId).ToArray(),
                Now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
            },
            tx.Transaction,
            cancellationToken: cancellationToken));
    }

    /// <summary>Many ABORTs of one group commit (PostgreSQL): every courier freed in one UPDATE.</summary>
    public Task ReleaseManyAsync(LocalTransaction tx, IReadOnlyList<LedgerEntry> held, CancellationToken cancellationToken)
    {
        var holdings = InCourierOrder(held);
        return tx.Connection.ExecuteAsync(new CommandDefinition(
            "UPDATE couriers c SET status = 'free', tx_id = NULL FROM unnest(@Couriers, @Txs) AS u(id, tx) WHERE c.id = u.id AND c.tx_id = u.tx",
            new { Couriers = holdings.Select(h => h.Held.CourierId).ToArray(), Txs = holdings.Select(h => h.TransactionId).ToArray() },
            tx.Transaction,
            cancellationToken: cancellationToken));
    }

    /// <summary>
    /// Completions as a set write: the completions of the moment join the group commit, and on PostgreSQL run as one
    /// UPDATE of the deliveries and one of their couriers. An id twice in one batch: the first completes it, the
    /// repeat finds no active delivery (null), as it would alone.
    /// </summary>
    public static SetWrite<string, Delivery?> Completions { get; } = new((tx, id) => CompleteAsync(tx, id, CancellationToken.None), CompleteAllAsync);

    private static async Task<IReadOnlyList<Delivery?>> CompleteAllAsync(LocalTransaction tx, IReadOnlyList<string> ids)
    {
        var results = new List<Delivery?>(ids.Count);
        var done = (await tx.Connection.QueryAsync<Delivery>(new CommandDefinition(
            "UPDATE deliveries SET status = 'completed', completed_ms = @Now WHERE tx_id = ANY(@Ids) AND status = 'active' RETURNING tx_id AS TransactionId, courier_id AS CourierId, order_id AS OrderId, status AS Status",
            new { Ids = ids.Distinct(StringComparer.Ordinal).ToArray(), Now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() },
            tx.Transaction))).OrderBy(d => d.CourierId, StringComparer.Ordinal).ToList();
        if (done.Count > 0)
        {
            await tx.Connection.ExecuteAsync(new CommandDefinition(
                "UPDATE couriers c SET status = 'free', tx_id = NULL FROM unnest(@Couriers, @Txs) AS u(id, tx) WHERE c.id = u.id AND c.tx_id = u.tx",
                new { Couriers = done.Select(d => d.CourierId).ToArray(), Txs = done.Select(d => d.TransactionId).ToArray() },
                tx.Transaction));
        }

        var byId = done.ToDictionary(d => d.TransactionId, StringComparer.Ordinal);
        foreach (var id in ids)
        {
            // The first occurrence takes it; a repeat in the same batch finds it completed already.
            results.Add(byId.Remove(id, out var delivery) ? delivery : null);
        }

        return results;
    }

    /// <summary>
    /// The delivery is done: it becomes completed and its courier free again; null when there is no active delivery
    /// for <paramref name="transactionId"/> (then nothing changed). <c>POST /v1/deliveries/{id}/complete</c>, and
    /// the bench's in-process bound.
    /// </summary>
    public static async Task<Delivery?> CompleteAsync(LocalTransaction tx, string transactionId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tx);
        var done = await tx.Connection.QuerySingleOrDefaultAsync<Delivery>(new CommandDefinition(
            "UPDATE deliveries SET status = 'completed', completed_ms = @Now WHERE tx_id = @Tx AND status = 'active' RETURNING tx_id AS TransactionId, courier_id AS CourierId, order_id AS OrderId, status AS Status",
            new { Tx = transactionId, Now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() },
            tx.Transaction,
            cancellationToken: cancellationToken));
        if (done is not null)
        {
            await tx.Connection.ExecuteAsync(new CommandDefinition(
                "UPDATE couriers SET status = 'free', tx_id = NULL WHERE id = @CourierId AND tx_id = @TransactionId",
                done,
                tx.Transaction,
                cancellationToken: cancellationToken));
        }

        return done;
    }

    public Task ReleaseAsync(LocalTransaction tx, string transactionId, string? holding, CancellationToken cancellationToken) =>
        tx.Connection.ExecuteAsync(new CommandDefinition(
            "UPDATE couriers SET status = 'free', tx_id = NULL WHERE id = @CourierId AND tx_id = @Tx",
            new { Tx = transactionId, Held(holding).CourierId },
            tx.Transaction,
            cancellationToken: cancellationToken));

    /// <summary>What the entries hold, in courier order (every batch locks courier rows in the same order).</summary>
    private static List<(string TransactionId, CourierHolding Held)> InCourierOrder(IReadOnlyList<LedgerEntry> held) =>
        held.Select(e => (e.TransactionId, Held: Held(e.Holding))).OrderBy(h => h.Held.CourierId, StringComparer.Ordinal).ToList();

    private static CourierHolding Held(string? holding) =>
        (holding is null ? null : JsonSerializer.Deserialize<CourierHolding>(holding, JsonSerializerOptions.Web))
        ?? throw new InvalidOperationException("A prepared delivery holds no courier.");
}

/// <summary>Delivery needs nothing from the order but its id; any JSON object is a valid PREPARE.</summary>
public sealed class DeliveryPrepareRules : IPrepareRules
{
    public (string Field, string Message)? Validate(JsonElement body) =>
        body.TryGetProperty("orderId", out var id) && id.ValueKind switch
        {
            JsonValueKind.Null => false,
            JsonValueKind.Number => !id.TryGetInt64(out _),
            JsonValueKind.String => !Problems.IsValidId(id.GetString()),
            _ => true,
        }
            ? ("orderId", "must be an id or a whole number")
            : null;

    public static string? OrderId(string payload)
    {
        using var doc = JsonDocument.Parse(payload);
        return doc.RootElement.TryGetProperty("orderId", out var id)
            ? id.ValueKind switch
            {
                JsonValueKind.String => id.GetString(),
                JsonValueKind.Number => id.GetRawText(),
                _ => null,
            }
            : null;
    }
}

/// <summary>The old protocol's PREPARE for delivery: a courier for the old order id.</summary>
public sealed class LegacyDeliveryRules : ILegacyPrepareRules
{
    public string FromLegacy(string transactionId, JsonElement orderId) =>
        JsonSerializer.Serialize(new { orderId = orderId.ValueKind == JsonValueKind.Undefined ? (JsonElement?)null : orderId }, JsonSerializerOptions.Web);
}
