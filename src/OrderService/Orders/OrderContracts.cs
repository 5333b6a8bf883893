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

/// <summary>What participants receive with PREPARE.</summary>
public sealed record OrderPayload(string OrderId, IReadOnlyList<OrderLine> Items, string? ClientOrderId = null, long? LegacyOrderId = null);

// The public JSON records are in Reference.Contracts (one copy, read back by the harness's client); the ways
// this service builds them from its decision log stay here, as static extension members so callers still
// write OrderView.From(...).

/// <summary>How the order service builds the views of Reference.Contracts from its decision log.</summary>
public static class OrderViews
{
    extension(OrderView)
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

    extension(TransactionView)
    {
        /// <summary>A stored transaction as the operator sees it at <paramref name="now"/>.</summary>
        public static TransactionView From(TransactionRecord r, DateTimeOffset now) => new(
            r.Id,
            r.State.ToWire(),
            r.IsCompleted,
            Math.Round((now - r.CreatedAt).TotalSeconds, 3),
            r.Participants,
            r.Acknowledged,
            r.Votes.ToDictionary(v => v.Participant, v => new VoteView(v.Kind.ToWire(), v.Reason)),
            r.Reason,
            r.Attempts,
            r.CreatedAt,
            r.DecidedAt,
            r.CompletedAt,
            r.NextAttemptAt,
            r.Conflicts,
            r.SettledAt);
    }
}
