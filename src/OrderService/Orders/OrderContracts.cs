using System.Text.Json;
using TwoPhase.Protocol;

namespace OrderService.Orders;

public sealed class OrderOptions
{
    public const string SectionName = "Orders";

    /// <summary>The product an old-protocol order (<c>POST /order?order_id=N</c>) takes one unit of.</summary>
    public string DefaultSku { get; set; } = "widget";

    public int MaxLines { get; set; } = 100;

    public int MaxQuantity { get; set; } = 1000;
}

/// <summary>A line of a new order.</summary>
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

/// <summary>What participants receive with PREPARE.</summary>
public sealed record OrderPayload(string OrderId, IReadOnlyList<OrderLine> Items, string? ClientOrderId = null, long? LegacyOrderId = null);

public sealed record OrderLine(string Sku, long Quantity);

public sealed record VoteView(string Vote, string? Reason);

/// <summary>An order as the API shows it.</summary>
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
    DateTimeOffset? DecidedAt)
{
    /// <summary>A stored order, with the outcome just reached when there is one (fresher than the record).</summary>
    public static OrderView From(TransactionRecord record, TransactionOutcome? outcome = null)
    {
        var payload = JsonSerializer.Deserialize<OrderPayload>(record.Payload, JsonSerializerOptions.Web)
            ?? throw new InvalidOperationException($"Order {record.Id} has no payload.");
        return Create(payload, record.Participants.Count, record.CreatedAt, outcome ?? new TransactionOutcome(record.Id, record.State, record.Reason, record.Votes, record.Acknowledged), record.IsCompleted, record.DecidedAt);
    }

    public static OrderView Create(OrderPayload payload, int participants, DateTimeOffset createdAt, TransactionOutcome outcome, bool completed = false, DateTimeOffset? decidedAt = null) => new(
        payload.OrderId,
        payload.OrderId,
        payload.ClientOrderId,
        outcome.State == TransactionState.Preparing ? "pending" : outcome.State.ToWire(),
        outcome.Reason,
        payload.Items,
        outcome.Votes.ToDictionary(v => v.Participant, v => new VoteView(v.Kind.ToWire(), v.Reason)),
        outcome.Acknowledged,
        completed || outcome.Acknowledged.Count == participants,
        createdAt,
        decidedAt);
}
