using System.Text.Json;
using TwoPhase.Protocol;

namespace TwoPhase.AspNetCore;

/// <summary>
/// The old system's protocol as the coordinator speaks it to a participant configured with <c>Protocol = legacy</c>:
/// <c>POST /prepare</c>, <c>/commit</c>, <c>/rollback</c> with a body of transaction id and numeric order id
/// (docs/api.md). The answers are read as v1 answers are (<see cref="HttpParticipantTransport"/>).
/// </summary>
internal static class LegacyDialect
{
    public const string PreparePath = "prepare";

    public static string DecisionPath(Decision decision) => decision == Decision.Commit ? "commit" : "rollback";

    /// <summary>
    /// The old dialect carries a numeric order id; the participant's payload keeps it as <c>legacyOrderId</c> when there is
    /// one. A payload that is not a JSON object carries none: the message goes with a null order id (the old participant
    /// refuses or ignores it, as it would any order it cannot read), never an exception in the coordinator.
    /// </summary>
    public static string Body(string transactionId, string payload)
    {
        var orderId = default(JsonElement);
        try
        {
            using var doc = JsonDocument.Parse(payload);
            if (doc.RootElement.ValueKind == JsonValueKind.Object)
            {
                orderId = doc.RootElement.TryGetProperty("legacyOrderId", out var legacy) && legacy.ValueKind == JsonValueKind.Number
                    ? legacy.Clone()
                    : doc.RootElement.TryGetProperty("orderId", out var id) ? id.Clone() : default;
            }
        }
        catch (JsonException)
        {
            // No order id to carry.
        }

        return JsonSerializer.Serialize(new Dictionary<string, object?> { ["transactionId"] = transactionId, ["orderId"] = orderId.ValueKind == JsonValueKind.Undefined ? null : orderId });
    }
}
