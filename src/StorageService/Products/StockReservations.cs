using System.Text.Json;
using Dapper;
using TwoPhase.Persistence;
using TwoPhase.Protocol;

namespace StorageService.Products;

/// <summary>
/// Stock as a 2PC resource. PREPARE moves units from free to reserved with one conditional UPDATE per line
/// (the WHERE clause is the check, so two orders can never both take the last unit); COMMIT turns reserved
/// units into sold ones; ABORT gives them back.
/// </summary>
public sealed class StockReservations : IResourceManager
{
    public string Schema(Dialect dialect) => """
        CREATE TABLE IF NOT EXISTS products (
            sku       TEXT PRIMARY KEY,
            name      TEXT NOT NULL,
            on_hand   BIGINT NOT NULL,
            reserved  BIGINT NOT NULL DEFAULT 0,
            sold      BIGINT NOT NULL DEFAULT 0,
            received  BIGINT NOT NULL,
            CHECK (on_hand >= 0 AND reserved >= 0 AND reserved <= on_hand AND sold >= 0)
        );
        """;

    public async Task<Reservation> ReserveAsync(LocalTransaction tx, string transactionId, string payload, CancellationToken cancellationToken)
    {
        var lines = OrderLinesRules.Parse(payload);
        for (var i = 0; i < lines.Count; i++)
        {
            var taken = await tx.Connection.ExecuteAsync(new CommandDefinition(
                "UPDATE products SET reserved = reserved + @Quantity WHERE sku = @Sku AND on_hand - reserved >= @Quantity",
                lines[i],
                tx.Transaction,
                cancellationToken: cancellationToken));
            if (taken == 0)
            {
                // All or nothing, without a savepoint: give back the lines already taken in this transaction.
                await ReleaseLinesAsync(tx, lines.Take(i), cancellationToken);
                var known = await tx.Connection.ExecuteScalarAsync<long>(new CommandDefinition(
                    "SELECT COUNT(*) FROM products WHERE sku = @Sku", lines[i], tx.Transaction, cancellationToken: cancellationToken));
                return Reservation.Refused(known == 0 ? $"unknown sku '{lines[i].Sku}'" : $"insufficient stock for sku '{lines[i].Sku}'");
            }
        }

        return Reservation.Held(JsonSerializer.Serialize(lines, JsonSerializerOptions.Web));
    }

    public async Task CommitAsync(LocalTransaction tx, string transactionId, string? holding, CancellationToken cancellationToken)
    {
        foreach (var line in Held(holding))
        {
            await tx.Connection.ExecuteAsync(new CommandDefinition(
                "UPDATE products SET on_hand = on_hand - @Quantity, reserved = reserved - @Quantity, sold = sold + @Quantity WHERE sku = @Sku",
                line,
                tx.Transaction,
                cancellationToken: cancellationToken));
        }
    }

    public Task ReleaseAsync(LocalTransaction tx, string transactionId, string? holding, CancellationToken cancellationToken) =>
        ReleaseLinesAsync(tx, Held(holding), cancellationToken);

    /// <summary>
    /// Many COMMITs of one group commit (PostgreSQL): the units are summed per SKU and moved in one UPDATE (one
    /// round trip, each row updated once).
    /// </summary>
    public Task CommitManyAsync(LocalTransaction tx, IReadOnlyList<LedgerEntry> held, CancellationToken cancellationToken)
    {
        var (skus, quantities) = SumPerSku(held);
        return tx.Connection.ExecuteAsync(new CommandDefinition(
            """
            UPDATE products p SET on_hand = p.on_hand - u.q, reserved = p.reserved - u.q, sold = p.sold + u.q
            FROM unnest(@Skus, @Quantities) AS u(sku, q) WHERE p.sku = u.sku
            """,
            new { Skus = skus, Quantities = quantities },
            tx.Transaction,
            cancellationToken: cancellationToken));
    }

    /// <summary>Many ABORTs of one group commit: as <see cref="CommitManyAsync"/>.</summary>
    public Task ReleaseManyAsync(LocalTransaction tx, IReadOnlyList<LedgerEntry> held, CancellationToken cancellationToken)
    {
        var (skus, quantities) = SumPerSku(held);
        return tx.Connection.ExecuteAsync(new CommandDefinition(
            "UPDATE products p SET reserved = p.reserved - u.q FROM unnest(@Skus, @Quantities) AS u(sku, q) WHERE p.sku = u.sku",
            new { Skus = skus, Quantities = quantities },
            tx.Transaction,
            cancellationToken: cancellationToken));
    }

    /// <summary>What the entries hold, summed per SKU, in SKU order (every batch locks rows in the same order).</summary>
    private static (string[] Skus, long[] Quantities) SumPerSku(IReadOnlyList<LedgerEntry> held)
    {
        var sums = held.SelectMany(e => Held(e.Holding))
            .GroupBy(l => l.Sku, StringComparer.Ordinal)
            .Select(g => (Sku: g.Key, Quantity: g.Sum(l => l.Quantity)))
            .OrderBy(x => x.Sku, StringComparer.Ordinal)
            .ToList();
        return (sums.Select(x => x.Sku).ToArray(), sums.Select(x => x.Quantity).ToArray());
    }

    private static async Task ReleaseLinesAsync(LocalTransaction tx, IEnumerable<OrderLine> lines, CancellationToken cancellationToken)
    {
        foreach (var line in lines)
        {
            await tx.Connection.ExecuteAsync(new CommandDefinition(
                "UPDATE products SET reserved = reserved - @Quantity WHERE sku = @Sku",
                line,
                tx.Transaction,
                cancellationToken: cancellationToken));
        }
    }

    private static OrderLine[] Held(string? holding) =>
        holding is null ? [] : JsonSerializer.Deserialize<OrderLine[]>(holding, JsonSerializerOptions.Web) ?? [];
}
