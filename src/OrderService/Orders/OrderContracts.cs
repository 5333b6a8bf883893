using System.Text.Json;
using TwoPhase.AspNetCore;
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

/// <summary>
/// The order as the order service keeps it with its transaction (the decision log's metadata, sent to nobody), and what
/// a participant it has no narrower body for receives with PREPARE (<see cref="OrderPrepareBodies"/>).
/// </summary>
public sealed record OrderPayload(string OrderId, IReadOnlyList<OrderLine> Items, string? ClientOrderId = null, long? LegacyOrderId = null);

/// <summary>Each participant's own PREPARE body for an order: what it needs, nothing more (storage refuses unknown fields).</summary>
public static class OrderPrepareBodies
{
    /// <summary>
    /// Storage gets the order's lines, delivery the order's id, any other participant the whole order. A participant
    /// speaking the old protocol gets the whole order too: the old dialect builds its <c>{transactionId, orderId}</c> from
    /// it (the numeric <c>legacyOrderId</c> when there is one), so the old services see the same wire as before.
    /// </summary>
    public static string For(ParticipantRef participant, OrderPayload order) => (participant.Legacy ? null : participant.Name) switch
    {
        "storage" => JsonSerializer.Serialize(new StockPrepare(order.OrderId, order.Items), JsonSerializerOptions.Web),
        "delivery" => JsonSerializer.Serialize(new CourierPrepare(order.OrderId), JsonSerializerOptions.Web),
        _ => JsonSerializer.Serialize(order, JsonSerializerOptions.Web),
    };
}

// The public JSON records are in Reference.Contracts (one copy, read back by the harness's client); the ways
// this service builds them from its decision log stay here, as static extension members so callers still
// write OrderView.From(...). TransactionView is the library's (TwoPhase.AspNetCore's Wire.cs).

/// <summary>How the order service builds the views of Reference.Contracts from its decision log.</summary>
public static class OrderViews
{
    extension(OrderView)
    {
        /// <summary>A stored order, with the outcome just reached when there is one (fresher than the record).</summary>
        public static OrderView From(TransactionRecord record, TransactionOutcome? outcome = null)
        {
            // The order is the transaction's metadata; a row from before payloads were per participant reads its one
            // payload, which was this same order, as the metadata (SqlDecisionLog).
            var payload = (record.Metadata is { } metadata ? JsonSerializer.Deserialize<OrderPayload>(metadata, JsonSerializerOptions.Web) : null)
                ?? throw new InvalidOperationException($"Order {record.Id} has no order kept with it.");
            return Create(payload, record.Participants.Count, record.CreatedAt, outcome ?? new TransactionOutcome(record.Id, record.State, record.Reason, record.Votes, record.Acknowledged), record.IsCompleted, record.DecidedAt);
        }

        public static OrderView Create(OrderPayload payload, int participants, DateTimeOffset createdAt, TransactionOutcome outcome, bool completed = false, DateTimeOffset? decidedAt = null) => new(
            payload.OrderId,
            payload.OrderId,
            payload.ClientOrderId,
            outcome.State == TransactionState.Preparing ? "pending" : outcome.State.ToWire(),
            outcome.Reason,
            payload.Items,
            VoteView.From(outcome.Votes),
            outcome.Acknowledged,
            completed || outcome.Acknowledged.Count == participants,
            createdAt,
            decidedAt);
    }
}
