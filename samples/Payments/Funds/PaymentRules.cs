using System.Text.Json;
using TwoPhase.AspNetCore;

namespace Payments.Funds;

/// <summary>
/// What a PREPARE must carry for payments: <c>{"account": "...", "amount": cents}</c>. A body that fails here is that
/// message's own no vote, with this reason; the resource manager only ever sees valid payments.
/// </summary>
public sealed class PaymentRules : IPrepareRules
{
    /// <summary>The largest payment, in cents: a limit on everything.</summary>
    public const long MaxAmount = 100_000_000;

    public (string Field, string Message)? Validate(JsonElement body)
    {
        if (!body.TryGetProperty("account", out var account) || account.ValueKind != JsonValueKind.String
            || account.GetString() is not { Length: >= 1 and <= 64 })
        {
            return ("account", "must be an account id of 1 to 64 characters");
        }

        return body.TryGetProperty("amount", out var amount) && amount.ValueKind == JsonValueKind.Number
            && amount.TryGetInt64(out var cents) && cents is >= 1 and <= MaxAmount
            ? null
            : ("amount", $"must be a whole number of cents from 1 to {MaxAmount}");
    }
}
