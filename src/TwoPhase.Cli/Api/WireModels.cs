using System.Text.Json;

namespace TwoPhase.Cli.Api;

// The wire shapes of docs/api.md, as this client reads them. Only the fields the CLI uses are
// declared; unknown fields are ignored so a service may add fields without breaking the CLI.

/// <summary>One line of an order: a SKU and a positive quantity.</summary>
public sealed record OrderLine(string Sku, int Quantity);

/// <summary>The body of <c>POST /v1/orders</c>.</summary>
public sealed record PlaceOrderRequest(IReadOnlyList<OrderLine> Items, string? ClientOrderId);

/// <summary>A participant's vote as the coordinator reports it: yes, no, or none (no answer).</summary>
public sealed record VoteDto(string? Vote, string? Reason);

/// <summary>An order as the coordinator answers it (POST, GET one, and listings).</summary>
public sealed record OrderDto(
    string OrderId,
    string? TransactionId,
    string? ClientOrderId,
    string? Status,
    string? Reason,
    IReadOnlyList<OrderLine>? Items,
    IReadOnlyDictionary<string, VoteDto>? Votes,
    IReadOnlyList<string>? Acknowledged,
    DateTimeOffset? CreatedAt);

/// <summary>A participant ledger row (<c>GET /v1/transactions</c> on storage and delivery).</summary>
public sealed record LedgerRowDto(
    string TransactionId,
    string? State,
    string? Reason,
    JsonElement? Holding,
    DateTimeOffset? CreatedAt,
    DateTimeOffset? UpdatedAt);

/// <summary>A product of the storage service.</summary>
public sealed record ProductDto(string Sku, string? Name, long OnHand, long Reserved, long Sold, long Received);

/// <summary>A courier of the delivery service.</summary>
public sealed record CourierDto(string Id, string? Name, string? Status, string? TransactionId);

/// <summary>A delivery of the delivery service, keyed by the transaction that booked it.</summary>
public sealed record DeliveryDto(string TransactionId, string CourierId, string? Status);

/// <summary>The coordinator's decision for one transaction.</summary>
public sealed record DecisionDto(string TransactionId, string? State);

/// <summary>The fields of an RFC 7807 problem detail the CLI shows to a person.</summary>
public sealed record ProblemDto(string? Title, string? Detail, int? Status);

/// <summary>The body of <c>POST /v1/products</c>.</summary>
public sealed record CreateProductRequest(string Sku, string Name, long Stock);

/// <summary>The body of <c>POST /v1/couriers</c>.</summary>
public sealed record CreateCourierRequest(string Name);
