using TwoPhase.AspNetCore;

namespace Reference.Contracts;

/// <summary>One line of an order: a SKU and a positive quantity. Orders, PREPARE bodies and storage holdings use it.</summary>
public sealed record OrderLine(string Sku, long Quantity);

/// <summary>A line of <c>POST /v1/orders</c> as the order service reads it: nullable, so a missing field gets its own problem detail.</summary>
public sealed class OrderItem
{
    public string? Sku { get; set; }

    public long? Quantity { get; set; }
}

/// <summary>The body of <c>POST /v1/orders</c>.</summary>
public sealed class NewOrder
{
    public List<OrderItem>? Items { get; set; }

    public string? ClientOrderId { get; set; }
}

/// <summary>An order as the order service shows it (POST, GET one, and listings).</summary>
public sealed record OrderView(
    string OrderId,
    string TransactionId,
    string? ClientOrderId,
    string Status,
    string? Reason,
    IReadOnlyList<OrderLine> Items,
    IReadOnlyDictionary<string, VoteView> Votes,
    IReadOnlyList<string> Acknowledged,
    bool Completed,
    DateTimeOffset CreatedAt,
    DateTimeOffset? DecidedAt);
