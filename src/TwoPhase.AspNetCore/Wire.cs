using System.Text.Json;
using System.Text.Json.Serialization;
using TwoPhase.Protocol;

namespace TwoPhase.AspNetCore;

/// <summary>A participant's answer to PREPARE.</summary>
public sealed record PrepareAnswer(string TransactionId, string Vote, string? Reason);

/// <summary>A participant's answer to COMMIT or ABORT.</summary>
public sealed record DecisionAnswer(string TransactionId, string State);

/// <summary>The coordinator's answer to "what was decided?".</summary>
public sealed record DecisionQuery(string TransactionId, string State);

/// <summary>A participant's ledger row on the wire.</summary>
public sealed record LedgerRow(string TransactionId, string State, string? Reason, JsonElement? Holding, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt, double AgeSeconds, int Checks)
{
    /// <summary>The coordinator group whose PREPARE claimed the row, the one an in-doubt row asks; null when it named none.</summary>
    public string? CoordinatorGroup { get; init; }

    /// <summary>Where that group said it answers the decision query; null: the participant's configured coordinator URL.</summary>
    public string? CoordinatorUrl { get; init; }
}

/// <summary>The old system's participant message: <c>{"transactionId": "...", "orderId": N}</c>.</summary>
internal sealed class LegacyMessage
{
    [JsonPropertyName("transactionId")]
    public JsonElement TransactionId { get; set; }

    [JsonPropertyName("orderId")]
    public JsonElement OrderId { get; set; }
}

/// <summary>A participant's vote as the coordinator reports it: yes, no, or none (no answer), and why not yes.</summary>
public sealed record VoteView(string Vote, string? Reason)
{
    /// <summary>The votes by participant, as the coordinator's answers show them.</summary>
    public static IReadOnlyDictionary<string, VoteView> From(IEnumerable<Vote> votes) =>
        votes.ToDictionary(v => v.Participant, v => new VoteView(v.Kind.ToWire(), v.Reason));
}

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
    DateTimeOffset? SettledAt)
{
    /// <summary>A stored transaction as the operator sees it at <paramref name="now"/>.</summary>
    public static TransactionView From(TransactionRecord record, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(record);
        return new(
            record.Id,
            record.State.ToWire(),
            record.IsCompleted,
            Math.Round((now - record.CreatedAt).TotalSeconds, 3),
            record.Participants,
            record.Acknowledged,
            VoteView.From(record.Votes),
            record.Reason,
            record.Attempts,
            record.CreatedAt,
            record.DecidedAt,
            record.CompletedAt,
            record.NextAttemptAt,
            record.Conflicts,
            record.SettledAt)
        {
            Owner = record.Owner,
        };
    }

    /// <summary>The coordinator replica that last began, decided or claimed it (docs/recovery.md, "Replicas and leases").</summary>
    public string? Owner { get; init; }
}
