using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TwoPhase.Persistence;
using TwoPhase.Protocol;

namespace TwoPhase.AspNetCore;

/// <summary>The old protocol's <c>/prepare</c>, <c>/commit</c> and <c>/rollback</c> (DESIGN §3, seed compatibility), on the same ledger.</summary>
public static class LegacyParticipantEndpoints
{
    /// <summary>
    /// The old system's participant endpoints at the root, opt-in (the reference storage and delivery services call it).
    /// Needs an <see cref="ILegacyPrepareRules"/> to turn an old PREPARE into this participant's payload. Unless the operator
    /// allows it, the shared secret is required as elsewhere (docs/security.md); <c>LegacyProtocol=false</c> maps nothing.
    /// </summary>
    public static RouteGroupBuilder MapTwoPhaseLegacyParticipant(this IEndpointRouteBuilder endpoints)
    {
        var legacy = endpoints.MapTwoPhaseGroup("/", TwoPhaseGroup.Legacy).WithTags("Old protocol");
        if (endpoints.ServiceProvider.GetService<IOptions<ParticipantOptions>>()?.Value.LegacyProtocol == false)
        {
            return legacy;
        }

        // Fail at start, not at the first old PREPARE.
        _ = endpoints.ServiceProvider.GetService<ILegacyPrepareRules>()
            ?? throw new InvalidOperationException("MapTwoPhaseLegacyParticipant needs an ILegacyPrepareRules service: register the class that maps an old /prepare to this participant's PREPARE body.");
        legacy.MapPost("/prepare", LegacyPrepareAsync);
        legacy.MapPost("/commit", (HttpRequest r, LedgerParticipant p, ILoggerFactory l, IOptions<TwoPhaseOptions> o) => LegacyDecideAsync(r, Decision.Commit, p, l, o));
        legacy.MapPost("/rollback", (HttpRequest r, LedgerParticipant p, ILoggerFactory l, IOptions<TwoPhaseOptions> o) => LegacyDecideAsync(r, Decision.Abort, p, l, o));
        return legacy;
    }

    private static async Task<IResult> LegacyPrepareAsync(HttpRequest request, LedgerParticipant participant, ILegacyPrepareRules rules, IOptions<TwoPhaseOptions> options, CancellationToken ct)
    {
        var (message, problem) = await ReadLegacyAsync(request, options.Value);
        if (problem is not null)
        {
            return problem;
        }

        try
        {
            var (vote, _) = await participant.PrepareAsync(message!.Value.TransactionId, rules.FromLegacy(message.Value.TransactionId, message.Value.OrderId), ct);
            return TypedResults.Ok(new { vote = vote == VoteKind.Yes ? "yes" : "no" });
        }
        catch (InvalidPayloadException)
        {
            // The old protocol knows only yes and no; nothing was written, as for any refused body.
            return TypedResults.Ok(new { vote = "no" });
        }
    }

    private static async Task<IResult> LegacyDecideAsync(HttpRequest request, Decision decision, LedgerParticipant participant, ILoggerFactory loggers, IOptions<TwoPhaseOptions> options)
    {
        var (message, problem) = await ReadLegacyAsync(request, options.Value);
        if (problem is not null)
        {
            return problem;
        }

        var id = message!.Value.TransactionId;
        var result = await participant.DecideAsync(id, decision, request.HttpContext.RequestAborted);
        if (result.Conflict)
        {
            Log.ProtocolViolation(loggers.CreateLogger("TwoPhase.Participant"), id, result.Detail ?? "conflict");
            return Problems.Conflict(result.Detail ?? "The message contradicts this participant's ledger.");
        }

        return TypedResults.Ok(new { status = decision == Decision.Commit ? "committed" : "rolled back" });
    }

    private static async Task<((string TransactionId, JsonElement OrderId)? Message, ProblemHttpResult? Problem)> ReadLegacyAsync(HttpRequest request, TwoPhaseOptions options)
    {
        // Old clients may send no Content-Type; a wrong one is still refused.
        var (message, problem) = await Problems.ReadJsonAsync<LegacyMessage>(request, options.MaxBodyBytes, JsonSerializerOptions.Web, allowMissingContentType: true);
        if (problem is not null)
        {
            return (null, problem);
        }

        // The old clients sent the transaction id as a string or a number; accept both, as text.
        var id = message!.TransactionId.ValueKind switch
        {
            JsonValueKind.String => message.TransactionId.GetString(),
            JsonValueKind.Number => message.TransactionId.GetRawText(),
            _ => null,
        };
        if (Problems.CheckId("transactionId", id) is { } bad)
        {
            return (null, bad);
        }

        // The order id ends up in the ledger: a whole number or an id, nothing bigger.
        if (message.OrderId.ValueKind switch
            {
                JsonValueKind.Undefined or JsonValueKind.Null => false,
                JsonValueKind.Number => !message.OrderId.TryGetInt64(out _),
                JsonValueKind.String => !Problems.IsValidId(message.OrderId.GetString()),
                _ => true,
            })
        {
            return (null, Problems.Invalid("orderId", "must be a whole number or an id"));
        }

        return ((id!, message.OrderId), null);
    }
}
