using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using TwoPhase.AspNetCore;
using TwoPhase.Protocol;

namespace OrderService.Orders;

/// <summary>Places orders: validates them, runs one transaction per order, answers with the outcome.</summary>
public sealed class OrderPlacement(
    TwoPhaseTransactions transactions,
    IReadOnlyDictionary<string, ParticipantRef> participants,
    TimeProvider time)
{
    /// <summary>The result of placing: the order, whether this call started it, or why it was refused before it started.</summary>
    public sealed record Placed(OrderView? Order, bool Created, ProblemHttpResult? Problem);

    public async Task<Placed> PlaceAsync(OrderPayload payload, string? idempotencyKey, CancellationToken cancellationToken)
    {
        // Admission (503 when the coordinator is full) happened before the endpoint ran: RequireTransactionAdmission.
        var createdAt = time.GetUtcNow();
        // Every configured participant takes part, each with its own body; the whole order is kept as the metadata.
        var transaction = new TwoPhaseTransaction(payload.OrderId)
        {
            IdempotencyKey = idempotencyKey,
            RequestHash = Hash(payload),
            Metadata = JsonSerializer.Serialize(payload, JsonSerializerOptions.Web),
        };
        foreach (var participant in participants.Values)
        {
            transaction.WithJson(participant.Name, OrderPrepareBodies.For(participant, payload));
        }

        TransactionOutcome outcome;
        try
        {
            // The client's token only stops waiting: a client that hangs up never cuts the transaction in half.
            outcome = await transactions.RunAsync(transaction, cancellationToken);
        }
        catch (IdempotencyKeyReusedException)
        {
            return new Placed(null, false, KeyReused());
        }

        if (!outcome.Replayed)
        {
            return new Placed(OrderView.Create(payload, participants.Count, createdAt, outcome), true, null);
        }

        var existing = await transactions.FindAsync(outcome.Id, cancellationToken);
        return new Placed(OrderView.From(existing!, outcome), false, null);
    }

    private static ProblemHttpResult KeyReused() =>
        Problems.Status(StatusCodes.Status422UnprocessableEntity, "Idempotency-Key reused.", "This Idempotency-Key was used for a different request; use a new key for a new order.");

    private static string Hash(OrderPayload payload) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { payload.Items, payload.ClientOrderId, payload.LegacyOrderId }, JsonSerializerOptions.Web))));
}

public static class OrdersApi
{
    public const string IdempotencyHeader = "Idempotency-Key";

    public static WebApplicationBuilder AddOrders(this WebApplicationBuilder builder)
    {
        // OrderOptions is the wire contracts' file's; its bounds are given here.
        builder.Services.AddTwoPhaseOptions<OrderOptions>(OrderOptions.SectionName, o =>
        [
            string.IsNullOrWhiteSpace(o.DefaultSku) ? new OptionFailure(nameof(o.DefaultSku), "must not be empty") : null,
            OptionFailure.Unless(nameof(o.MaxLines), o.MaxLines, 1, 10_000),
            OptionFailure.Unless(nameof(o.MaxQuantity), o.MaxQuantity, 1, 1_000_000_000),
        ]);
        builder.Services.AddSingleton<OrderPlacement>();
        builder.Services.AddTwoPhaseOptions<CatalogOptions>(CatalogOptions.SectionName);
        builder.Services.AddSingleton<SkuCatalog>();
        builder.Services.AddHttpClient(SkuCatalog.ClientName);
        return builder;
    }

    public static IEndpointRouteBuilder MapOrders(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/v1/orders").WithTags("Orders");
        group.MapPost("/", PlaceAsync).RequireTransactionAdmission();
        group.MapGet("/{id}", GetAsync);
        group.MapGet("/", ListAsync);
        return endpoints;
    }

    private static async Task<Results<Created<OrderView>, Ok<OrderView>, ProblemHttpResult>> PlaceAsync(
        HttpRequest request, OrderPlacement placement, SkuCatalog catalog, IOptions<OrderOptions> orders, IOptions<TwoPhaseOptions> options, CancellationToken ct)
    {
        string? key = null;
        if (request.Headers.TryGetValue(IdempotencyHeader, out var keys))
        {
            if (keys.Count != 1 || Problems.CheckId(IdempotencyHeader, keys[0]) is not null)
            {
                return Problems.Invalid(IdempotencyHeader, "must be one value of 1-64 characters of letters, digits and . _ : -");
            }

            key = keys[0];
        }

        var (body, problem) = await Problems.ReadJsonAsync<NewOrder>(request, options.Value.MaxBodyBytes, StrictJson.Options);
        if (problem is not null)
        {
            return problem;
        }

        var (lines, invalid) = Validate(body!, orders.Value);
        if (invalid is not null)
        {
            return invalid;
        }

        if (await catalog.FindUnknownAsync(lines!.ConvertAll(l => l.Sku), ct) is { } unknown)
        {
            return Problems.Invalid($"items[{unknown.Index}].sku", $"unknown SKU '{unknown.Sku}'");
        }

        // A client order id is a natural idempotency key: the same id twice is the same order.
        key ??= body!.ClientOrderId is { } clientId ? $"client:{clientId}" : null;
        var payload = new OrderPayload(Guid.CreateVersion7().ToString("N"), lines!, body!.ClientOrderId);
        var placed = await placement.PlaceAsync(payload, key, ct);
        if (placed.Problem is not null)
        {
            return placed.Problem;
        }

        var order = placed.Order!;
        return order.Status == "committed" && placed.Created
            ? TypedResults.Created($"/v1/orders/{order.OrderId}", order)
            : TypedResults.Ok(order);
    }

    internal static (List<OrderLine>? Lines, ProblemHttpResult? Problem) Validate(NewOrder order, OrderOptions limits)
    {
        if (order.Items is null || order.Items.Count == 0)
        {
            return (null, Problems.Invalid("items", "at least one line of {sku, quantity} is required"));
        }

        if (order.Items.Count > limits.MaxLines)
        {
            return (null, Problems.Invalid("items", $"at most {limits.MaxLines} lines per order"));
        }

        if (order.ClientOrderId is not null && Problems.CheckId("clientOrderId", order.ClientOrderId) is { } badClientId)
        {
            return (null, badClientId);
        }

        var lines = new List<OrderLine>(order.Items.Count);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < order.Items.Count; i++)
        {
            var item = order.Items[i];
            if (item is null || Problems.CheckId($"items[{i}].sku", item.Sku) is not null)
            {
                return (null, Problems.Invalid($"items[{i}].sku", "must be a SKU: 1-64 characters of letters, digits and . _ : -"));
            }

            if (item.Quantity is not { } quantity || quantity < 1 || quantity > limits.MaxQuantity)
            {
                return (null, Problems.Invalid($"items[{i}].quantity", $"must be a whole number from 1 to {limits.MaxQuantity}"));
            }

            if (!seen.Add(item.Sku!))
            {
                return (null, Problems.Invalid($"items[{i}].sku", $"'{item.Sku}' appears twice; put the whole quantity on one line"));
            }

            lines.Add(new OrderLine(item.Sku!, quantity));
        }

        return (lines, null);
    }

    private static async Task<Results<Ok<OrderView>, ProblemHttpResult>> GetAsync(string id, IDecisionLog log, CancellationToken ct)
    {
        if (Problems.CheckId("id", id) is { } bad)
        {
            return bad;
        }

        return await log.FindAsync(id, ct) is { } record ? TypedResults.Ok(OrderView.From(record)) : Problems.NotFound($"Order '{id}'");
    }

    private static async Task<Results<Ok<List<OrderView>>, ProblemHttpResult>> ListAsync(string? after, int? limit, IDecisionLog log, CancellationToken ct)
    {
        if (Paging.Check(after, limit) is { } bad)
        {
            return bad;
        }

        return TypedResults.Ok((await log.ListAsync(after, limit ?? Paging.DefaultLimit, ct)).Select(r => OrderView.From(r)).ToList());
    }
}
