using System.Text.Json;
using System.Text.Json.Serialization;

namespace TwoPhase.AspNetCore;

/// <summary>A participant's answer to PREPARE.</summary>
public sealed record PrepareAnswer(string TransactionId, string Vote, string? Reason);

/// <summary>A participant's answer to COMMIT or ABORT.</summary>
public sealed record DecisionAnswer(string TransactionId, string State);

/// <summary>The coordinator's answer to "what was decided?".</summary>
public sealed record DecisionQuery(string TransactionId, string State);

/// <summary>A participant's ledger row on the wire.</summary>
public sealed record LedgerRow(string TransactionId, string State, string? Reason, JsonElement? Holding, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt, double AgeSeconds, int Checks);

/// <summary>The old system's participant message: <c>{"transactionId": "...", "orderId": N}</c>.</summary>
public sealed class LegacyMessage
{
    [JsonPropertyName("transactionId")]
    public JsonElement TransactionId { get; set; }

    [JsonPropertyName("orderId")]
    public JsonElement OrderId { get; set; }
}
