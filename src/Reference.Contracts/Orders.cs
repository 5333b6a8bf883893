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

/// <summary>A participant's vote as the coordinator reports it: yes, no, or none (no answer).</summary>
public sealed record VoteView(string Vote, string? Reason);

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

/// <summary>
/// A transaction as the operator sees it (<c>/v1/admin/transactions</c>). <see cref="Conflicts"/>: participants that
/// refused the decision (409), a protocol violation needing a person; once everyone acknowledged or refused,
/// <see cref="SettledAt"/> says when the coordinator stopped re-driving it. Such a transaction is never completed.
/// </summary>
public sealed record TransactionView(
    string TransactionId,
    string State,
    bool Completed,
    double AgeSeconds,
    IReadOnlyList<string> Participants,
    IReadOnlyList<string> Acknowledged,
    IReadOnlyDictionary<string, VoteView> Votes,
    string? Reason,
    int Attempts,
    DateTimeOffset CreatedAt,
    DateTimeOffset? DecidedAt,
    DateTimeOffset? CompletedAt,
    DateTimeOffset? NextAttemptAt,
    IReadOnlyList<string> Conflicts,
    DateTimeOffset? SettledAt);
