using System.ComponentModel.DataAnnotations;
using Dapper;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using TwoPhase.AspNetCore;
using TwoPhase.Persistence;

namespace DeliveryService.Couriers;

/// <summary>What an empty database starts with.</summary>
public sealed class CourierSeedOptions
{
    public const string SectionName = "Seed";

    public bool Enabled { get; set; } = true;

    /// <summary>Couriers created on first start.</summary>
    [Range(0, 10_000)]
    public int Couriers { get; set; } = 5;
}

public static class CouriersApi
{
    private const string InsertSql = "INSERT INTO couriers (id, name, status) VALUES (@Id, @Name, 'free') ON CONFLICT DO NOTHING";
    private const string CourierColumns = "id AS Id, name AS Name, status AS Status, tx_id AS TransactionId";

    public static WebApplicationBuilder AddCouriers(this WebApplicationBuilder builder)
    {
        builder.Services.AddTwoPhaseOptions<CourierSeedOptions>(CourierSeedOptions.SectionName);
        builder.Services.AddSingleton<IStartupTask, SeedCouriers>();
        // The old protocol's /prepare (MapTwoPhaseLegacyParticipant): a courier for the old order id.
        builder.Services.TryAddSingleton<ILegacyPrepareRules, LegacyDeliveryRules>();
        return builder;
    }

    public static IEndpointRouteBuilder MapCouriers(this IEndpointRouteBuilder endpoints)
    {
        var couriers = endpoints.MapGroup("/v1/couriers").WithTags("Couriers");
        couriers.MapGet("/", ListCouriersAsync);
        couriers.MapPost("/", AddCourierAsync).RequireTwoPhaseSecret();
        var deliveries = endpoints.MapGroup("/v1/deliveries").WithTags("Deliveries");
        deliveries.MapGet("/", ListDeliveriesAsync);
        deliveries.MapPost("/{transactionId}/complete", CompleteAsync).RequireTwoPhaseSecret();
        return endpoints;
    }

    private static async Task<Ok<List<Courier>>> ListCouriersAsync(Database db, CancellationToken ct) =>
        TypedResults.Ok(await db.ReadAsync(
            async c => (await c.QueryAsync<Courier>(new CommandDefinition($"SELECT {CourierColumns} FROM couriers ORDER BY id", cancellationToken: ct))).ToList(),
            ct));

    private static async Task<Results<Ok<List<Delivery>>, ProblemHttpResult>> ListDeliveriesAsync(string? after, int? limit, Database db, CancellationToken ct)
    {
        if (Paging.Check(after, limit) is { } bad)
        {
            return bad;
        }

        return TypedResults.Ok(await db.ReadAsync(
            async c => (await c.QueryAsync<Delivery>(new CommandDefinition(
                "SELECT tx_id AS TransactionId, courier_id AS CourierId, order_id AS OrderId, status AS Status FROM deliveries WHERE tx_id > @After ORDER BY tx_id LIMIT @Limit",
                new { After = after ?? string.Empty, Limit = limit ?? Paging.DefaultLimit },
                cancellationToken: ct))).ToList(),
            ct));
    }

    private static async Task<Results<Created<Courier>, ProblemHttpResult>> AddCourierAsync(HttpRequest request, Database db, IOptions<TwoPhaseOptions> options, CancellationToken ct)
    {
        var (body, problem) = await Problems.ReadJsonAsync<NewCourier>(request, options.Value.MaxBodyBytes, StrictJson.Options);
        if (problem is not null)
        {
            return problem;
        }

        if (string.IsNullOrWhiteSpace(body!.Name) || body.Name.Length > 200)
        {
            return Problems.Invalid("name", "must be 1-200 characters");
        }

        if (body.Id is not null && Problems.CheckId("id", body.Id) is { } badId)
        {
            return badId;
        }

        var courier = new Courier(body.Id ?? $"c-{Guid.CreateVersion7():N}", body.Name, "free", null);
        var inserted = await db.WriteAsync(tx => tx.ExecuteAsync(InsertSql, courier, ct), ct);
        return inserted == 1 ? TypedResults.Created($"/v1/couriers/{courier.Id}", courier) : Problems.Conflict($"Courier '{courier.Id}' already exists.");
    }

    private static async Task<Results<Ok<Delivery>, ProblemHttpResult>> CompleteAsync(string transactionId, Database db, CancellationToken ct)
    {
        if (Problems.CheckId("transactionId", transactionId) is { } bad)
        {
            return bad;
        }

        // Group commit: the completions of the moment share a local transaction, its fsync and two statements.
        var delivery = await db.WriteBatchedAsync(CourierReservations.Completions, transactionId, ct);
        return delivery is null ? Problems.NotFound($"Active delivery for transaction '{transactionId}'") : TypedResults.Ok(delivery);
    }

    private sealed class SeedCouriers(Database db, IOptions<CourierSeedOptions> options) : SeedIfEmpty<Courier>(db, "couriers", InsertSql)
    {
        protected override bool Enabled => options.Value.Enabled;

        protected override IEnumerable<Courier> Rows =>
            Enumerable.Range(1, options.Value.Couriers).Select(i => new Courier($"c-{i:D3}", $"Courier {i}", "free", null));
    }
}
