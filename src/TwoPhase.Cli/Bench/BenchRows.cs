using Dapper;
using TwoPhase.Persistence;

namespace TwoPhase.Cli.Bench;

/// <summary>
/// The rows the in-process measurements (the bound, the monolith) start from: the catalog's products and a pool of free
/// couriers, written straight into the services' own tables, as their seed endpoints would.
/// </summary>
internal static class BenchRows
{
    /// <summary>The catalog's products, each with its stock on hand and received.</summary>
    public static Task<int> InsertProductsAsync(Database database, BenchCatalog catalog, CancellationToken cancellationToken) =>
        database.WriteAsync(
            tx => tx.Connection.ExecuteAsync(new CommandDefinition(
                "INSERT INTO products (sku, name, on_hand, received) VALUES (@Sku, @Sku, @Stock, @Stock)",
                catalog.Products.Select(p => new { p.Sku, p.Stock }).ToList(),
                tx.Transaction,
                cancellationToken: cancellationToken)),
            cancellationToken);

    /// <summary><paramref name="couriers"/> free couriers, <c>bench-courier-0001</c> on.</summary>
    public static Task<int> InsertCouriersAsync(Database database, int couriers, CancellationToken cancellationToken) =>
        database.WriteAsync(
            tx => tx.Connection.ExecuteAsync(new CommandDefinition(
                "INSERT INTO couriers (id, name, status) VALUES (@Id, @Id, 'free')",
                Enumerable.Range(1, couriers).Select(i => new { Id = $"bench-courier-{i:D4}" }).ToList(),
                tx.Transaction,
                cancellationToken: cancellationToken)),
            cancellationToken);
}
