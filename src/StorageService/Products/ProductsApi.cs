using Dapper;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using TwoPhase.AspNetCore;
using TwoPhase.Persistence;

namespace StorageService.Products;

public sealed record Restock(long? Quantity);

public static class ProductsApi
{
    private const long MaxStock = 1_000_000_000;
    private const string InsertSql = "INSERT INTO products (sku, name, on_hand, reserved, sold, received) VALUES (@Sku, @Name, @OnHand, 0, 0, @OnHand) ON CONFLICT DO NOTHING";
    private const string Columns = "sku AS Sku, name AS Name, on_hand AS OnHand, reserved AS Reserved, sold AS Sold, received AS Received";

    public static WebApplicationBuilder AddProducts(this WebApplicationBuilder builder)
    {
        builder.Services.AddTwoPhaseOptions<StorageOptions>(StorageOptions.SectionName);
        builder.Services.AddTwoPhaseOptions<ProductSeedOptions>(ProductSeedOptions.SectionName);
        builder.Services.AddSingleton<IStartupTask, SeedCatalog>();
        // The old protocol's /prepare (MapTwoPhaseLegacyParticipant): one unit of the default product.
        builder.Services.TryAddSingleton<ILegacyPrepareRules, LegacyOrderLines>();
        return builder;
    }

    public static IEndpointRouteBuilder MapProducts(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/v1/products").WithTags("Products");
        group.MapGet("/", ListAsync);
        group.MapGet("/{sku}", GetAsync);
        group.MapPost("/", CreateAsync).RequireTwoPhaseSecret();
        group.MapPost("/{sku}/restock", RestockAsync).RequireTwoPhaseSecret();
        return endpoints;
    }

    private static async Task<Ok<List<Product>>> ListAsync(Database db, CancellationToken ct) =>
        TypedResults.Ok(await db.ReadAsync(
            async c => (await c.QueryAsync<Product>(new CommandDefinition($"SELECT {Columns} FROM products ORDER BY sku", cancellationToken: ct))).ToList(),
            ct));

    private static async Task<Results<Ok<Product>, ProblemHttpResult>> GetAsync(string sku, Database db, CancellationToken ct)
    {
        if (Problems.CheckId("sku", sku) is { } bad)
        {
            return bad;
        }

        var product = await db.ReadAsync(
            c => c.QuerySingleOrDefaultAsync<Product>(new CommandDefinition($"SELECT {Columns} FROM products WHERE sku = @Sku", new { Sku = sku }, cancellationToken: ct)),
            ct);
        return product is null ? Problems.NotFound($"Product '{sku}'") : TypedResults.Ok(product);
    }

    private static async Task<Results<Created<Product>, ProblemHttpResult>> CreateAsync(HttpRequest request, Database db, IOptions<TwoPhaseOptions> options, CancellationToken ct)
    {
        var (body, problem) = await Problems.ReadJsonAsync<NewProduct>(request, options.Value.MaxBodyBytes, StrictJson.Options);
        if (problem is not null)
        {
            return problem;
        }

        if (Problems.CheckId("sku", body!.Sku) is { } badSku)
        {
            return badSku;
        }

        if (string.IsNullOrWhiteSpace(body.Name) || body.Name.Length > 200)
        {
            return Problems.Invalid("name", "must be 1-200 characters");
        }

        if (body.Stock is not (>= 0 and <= MaxStock))
        {
            return Problems.Invalid("stock", $"must be a whole number from 0 to {MaxStock}");
        }

        var product = new Product(body.Sku!, body.Name, body.Stock.Value, 0, 0, body.Stock.Value);
        var inserted = await db.WriteAsync(tx => tx.ExecuteAsync(InsertSql, product, ct), ct);
        return inserted == 1
            ? TypedResults.Created($"/v1/products/{product.Sku}", product)
            : Problems.Conflict($"Product '{product.Sku}' already exists; restock it instead.");
    }

    private static async Task<Results<Ok<Product>, ProblemHttpResult>> RestockAsync(string sku, HttpRequest request, Database db, IOptions<TwoPhaseOptions> options, CancellationToken ct)
    {
        if (Problems.CheckId("sku", sku) is { } badSku)
        {
            return badSku;
        }

        var (body, problem) = await Problems.ReadJsonAsync<Restock>(request, options.Value.MaxBodyBytes, StrictJson.Options);
        if (problem is not null)
        {
            return problem;
        }

        if (body!.Quantity is not (>= 1 and <= MaxStock))
        {
            return Problems.Invalid("quantity", $"must be a whole number from 1 to {MaxStock}");
        }

        var product = await db.WriteAsync(
            tx => tx.Connection.QuerySingleOrDefaultAsync<Product>(new CommandDefinition(
                $"UPDATE products SET on_hand = on_hand + @Quantity, received = received + @Quantity WHERE sku = @Sku RETURNING {Columns}",
                new { Sku = sku, body.Quantity },
                tx.Transaction,
                cancellationToken: ct)),
            ct);
        return product is null ? Problems.NotFound($"Product '{sku}'") : TypedResults.Ok(product);
    }

    /// <summary>Seeds the configured catalog, else the default one, into an empty products table.</summary>
    private sealed class SeedCatalog(Database db, IOptions<ProductSeedOptions> options) : SeedIfEmpty<Product>(db, "products", InsertSql)
    {
        protected override bool Enabled => options.Value.Enabled;

        protected override IEnumerable<Product> Rows =>
            (options.Value.Products.Count > 0 ? options.Value.Products : ProductSeedOptions.Defaults).Select(p => new Product(p.Sku, p.Name, p.Stock, 0, 0, p.Stock));
    }
}
