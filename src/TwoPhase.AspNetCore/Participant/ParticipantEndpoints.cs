using System.Diagnostics;
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

/// <summary>The domain's rules for PREPARE bodies: what is valid, and what an old-protocol prepare means.</summary>
public interface IPrepareRules
{
    /// <summary>Null when the body is acceptable; else the offending field and why.</summary>
    (string Field, string Message)? Validate(JsonElement body);

    /// <summary>The PREPARE body equivalent to an old <c>/prepare</c> for <paramref name="orderId"/>.</summary>
    string FromLegacy(string transactionId, JsonElement orderId);
}

/// <summary>The participant's HTTP endpoints; each message goes to <see cref="LedgerParticipant"/>, which follows <see cref="ParticipantRules"/>.</summary>
public static class ParticipantEndpoints
{
    /// <summary>The 2PC endpoints (DESIGN §3), the operator's view, and the old protocol when enabled.</summary>
    public static IEndpointRouteBuilder MapTwoPhaseParticipant(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapTwoPhaseGroup("/v1/transactions", TwoPhaseGroup.Protocol).WithTags("2PC participant");
        group.MapPost("/batch", BatchAsync);
        group.MapPost("/{id}/prepare", PrepareAsync);
        group.MapPost("/{id}/commit", (string id, LedgerParticipant p, ILoggerFactory l, CancellationToken ct) => DecideAsync(id, Decision.Commit, p, l, ct));
        group.MapPost("/{id}/abort", (string id, LedgerParticipant p, ILoggerFactory l, CancellationToken ct) => DecideAsync(id, Decision.Abort, p, l, ct));
        group.MapGet("/{id}", GetAsync);
        group.MapGet("/", ListAsync);
        endpoints.MapTwoPhaseGroup("/v1/admin", TwoPhaseGroup.Admin).MapGet("/prepared", PreparedAsync).WithTags("Admin");

        var options = endpoints.ServiceProvider.GetRequiredService<IOptions<ParticipantOptions>>().Value;
        if (options.LegacyProtocol)
        {
            var legacy = endpoints.MapTwoPhaseGroup("/", TwoPhaseGroup.Legacy).WithTags("Old protocol");
            LegacyParticipantEndpoints.Map(legacy);
        }

        return endpoints;
    }

    private static async Task<Results<Ok<PrepareAnswer>, ProblemHttpResult>> PrepareAsync(
        string id, HttpRequest request, LedgerParticipant participant, IPrepareRules rules, IOptions<TwoPhaseOptions> options, CancellationToken ct)
    {
        if (Problems.CheckId("id", id) is { } bad)
        {
            return bad;
        }

        var (json, problem) = await Problems.ReadJsonAsync<JsonElement>(request, options.Value.MaxBodyBytes, JsonSerializerOptions.Web);
        if (problem is not null)
        {
            return problem;
        }

        if (rules.Validate(json) is { } error)
        {
            return Problems.Invalid(error.Field, error.Message);
        }

        var (vote, reason) = await participant.PrepareAsync(id, json.GetRawText(), ct);
        return TypedResults.Ok(new PrepareAnswer(id, vote.ToWire(), reason));
    }

    private static async Task<Results<Ok<DecisionAnswer>, ProblemHttpResult>> DecideAsync(string id, Decision decision, LedgerParticipant participant, ILoggerFactory loggers, CancellationToken ct)
    {
        if (Problems.CheckId("id", id) is { } bad)
        {
            return bad;
        }

        var result = await participant.DecideAsync(id, decision, ct);
        if (result.Conflict)
        {
            Log.ProtocolViolation(loggers.CreateLogger("TwoPhase.Participant"), id, result.Detail ?? "conflict");
            return Problems.Conflict(result.Detail ?? "The message contradicts this participant's ledger.");
        }

        return TypedResults.Ok(new DecisionAnswer(id, result.State!.Value.ToWire()));
    }

    /// <summary>
    /// Many protocol messages in one request (docs/api.md). The whole batch is checked first: one bad message
    /// refuses the batch with 400 and nothing is applied. Then every message runs at once, as if it had come
    /// alone, so they share the participant's group commit; each gets the answer its own endpoint would give.
    /// </summary>
    private static async Task<Results<Ok<BatchAnswer>, ProblemHttpResult>> BatchAsync(
        HttpRequest request, LedgerParticipant participant, IPrepareRules rules, IOptions<TwoPhaseOptions> options, ILoggerFactory loggers, CancellationToken ct)
    {
        var (batch, problem) = await Problems.ReadJsonAsync<BatchRequest>(request, options.Value.MaxBodyBytes, StrictJson.Options);
        if (problem is not null)
        {
            return problem;
        }

        if (batch!.Messages is not { Count: > 0 and <= BatchLimits.MaxMessages } messages)
        {
            return Problems.Invalid("messages", $"must hold 1-{BatchLimits.MaxMessages} messages");
        }

        var parents = new ActivityContext[messages.Count];
        for (var i = 0; i < messages.Count; i++)
        {
            if (CheckBatchMessage(messages[i], $"messages[{i}]", rules, out parents[i]) is { } bad)
            {
                return bad;
            }
        }

        var logger = loggers.CreateLogger("TwoPhase.Participant");
        var results = await Task.WhenAll(messages.Select((m, i) => HandleBatchMessageAsync(m, parents[i], participant, logger, ct)));
        return TypedResults.Ok(new BatchAnswer(results));
    }

    private static ProblemHttpResult? CheckBatchMessage(BatchMessage? message, string field, IPrepareRules rules, out ActivityContext parent)
    {
        parent = default;
        if (message is null)
        {
            return Problems.Invalid(field, "must be a message object");
        }

        if (Problems.CheckId($"{field}.transactionId", message.TransactionId) is { } badId)
        {
            return badId;
        }

        if (message.Traceparent is not null && !ActivityContext.TryParse(message.Traceparent, null, out parent))
        {
            return Problems.Invalid($"{field}.traceparent", "must be a W3C traceparent");
        }

        switch (message.Type)
        {
            case "prepare":
                if (message.Body is not { ValueKind: JsonValueKind.Object } body)
                {
                    return Problems.Invalid($"{field}.body", "a PREPARE needs a JSON object body");
                }

                return rules.Validate(body) is { } error ? Problems.Invalid($"{field}.body.{error.Field}", error.Message) : null;
            case "commit" or "abort":
                return message.Body is null or { ValueKind: JsonValueKind.Null } ? null : Problems.Invalid($"{field}.body", $"a {message.Type.ToUpperInvariant()} has no body");
            default:
                return Problems.Invalid($"{field}.type", "must be prepare, commit or abort");
        }
    }

    private static async Task<BatchResult> HandleBatchMessageAsync(BatchMessage message, ActivityContext parent, LedgerParticipant participant, ILogger logger, CancellationToken ct)
    {
        // The caller's trace, not the batch's: this message's spans belong to its order.
        using var activity = parent == default
            ? null
            : TwoPhaseDiagnostics.ActivitySource.StartActivity($"twophase batch {message.Type}", ActivityKind.Server, parent);
        using var scope = logger.BeginScope(new TelemetryExtensions.TransactionLogScope(message.TransactionId));
        var id = message.TransactionId;
        if (message.Type == "prepare")
        {
            var (vote, reason) = await participant.PrepareAsync(id, message.Body!.Value.GetRawText(), ct);
            return new BatchResult(id, StatusCodes.Status200OK, Vote: vote.ToWire(), Reason: reason);
        }

        var result = await participant.DecideAsync(id, message.Type == "commit" ? Decision.Commit : Decision.Abort, ct);
        if (result.Conflict)
        {
            Log.ProtocolViolation(logger, id, result.Detail ?? "conflict");
            return new BatchResult(id, StatusCodes.Status409Conflict, Detail: result.Detail ?? "The message contradicts this participant's ledger.");
        }

        return new BatchResult(id, StatusCodes.Status200OK, State: result.State!.Value.ToWire());
    }

    private static async Task<Results<Ok<LedgerRow>, ProblemHttpResult>> GetAsync(string id, LedgerParticipant participant, TimeProvider time, CancellationToken ct)
    {
        if (Problems.CheckId("id", id) is { } bad)
        {
            return bad;
        }

        return await participant.FindAsync(id, ct) is { } entry
            ? TypedResults.Ok(ToRow(entry, time.GetUtcNow()))
            : Problems.NotFound("Transaction");
    }

    private static async Task<Results<Ok<List<LedgerRow>>, ProblemHttpResult>> ListAsync(string? after, int? limit, LedgerParticipant participant, TimeProvider time, CancellationToken ct)
    {
        if (Paging.Check(after, limit) is { } bad)
        {
            return bad;
        }

        var now = time.GetUtcNow();
        return TypedResults.Ok((await participant.ListAsync(after, limit ?? Paging.DefaultLimit, ct)).Select(e => ToRow(e, now)).ToList());
    }

    private static async Task<Ok<List<LedgerRow>>> PreparedAsync(LedgerParticipant participant, TimeProvider time, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        return TypedResults.Ok((await participant.ListPreparedAsync(Paging.MaxLimit, ct)).Select(e => ToRow(e, now)).ToList());
    }

    private static LedgerRow ToRow(LedgerEntry e, DateTimeOffset now) => new(
        e.TransactionId,
        e.State.ToWire(),
        e.Reason,
        e.Holding is null ? null : JsonSerializer.Deserialize<JsonElement>(e.Holding),
        e.CreatedAt,
        e.UpdatedAt,
        Math.Round((now - e.CreatedAt).TotalSeconds, 3),
        e.Checks);
}
