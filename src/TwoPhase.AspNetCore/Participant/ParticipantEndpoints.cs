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

/// <summary>
/// The domain's rules for PREPARE bodies, optional: without them any JSON object is a valid PREPARE and the resource manager
/// judges the payload itself (<see cref="InvalidPayloadException"/>).
/// </summary>
public interface IPrepareRules
{
    /// <summary>Null when the body is acceptable; else the offending field and why. The PREPARE is then that transaction's NO vote.</summary>
    (string Field, string Message)? Validate(JsonElement body);
}

/// <summary>The old protocol's PREPARE mapped to this participant's payload; needed only by <see cref="LegacyParticipantEndpoints.MapTwoPhaseLegacyParticipant"/>.</summary>
public interface ILegacyPrepareRules
{
    /// <summary>The PREPARE body equivalent to an old <c>/prepare</c> for <paramref name="orderId"/>.</summary>
    string FromLegacy(string transactionId, JsonElement orderId);
}

/// <summary>The participant's HTTP endpoints; each message goes to <see cref="LedgerParticipant"/>, which follows <see cref="ParticipantRules"/>.</summary>
public static class ParticipantEndpoints
{
    /// <summary>
    /// The 2PC endpoints (DESIGN §3), the batch, and the operator's view. The old protocol is separate and opt-in
    /// (<see cref="LegacyParticipantEndpoints.MapTwoPhaseLegacyParticipant"/>). Returns the group holding them all, for the host's conventions.
    /// </summary>
    public static RouteGroupBuilder MapTwoPhaseParticipant(this IEndpointRouteBuilder endpoints)
    {
        var all = endpoints.MapGroup(string.Empty);
        var group = all.MapTwoPhaseGroup("/v1/transactions", TwoPhaseGroup.Protocol).WithTags("2PC participant");
        group.MapPost("/batch", BatchAsync);
        group.MapPost("/{id}/prepare", PrepareAsync);
        group.MapPost("/{id}/commit", (string id, LedgerParticipant p, ILoggerFactory l, CancellationToken ct) => DecideAsync(id, Decision.Commit, p, l, ct));
        group.MapPost("/{id}/abort", (string id, LedgerParticipant p, ILoggerFactory l, CancellationToken ct) => DecideAsync(id, Decision.Abort, p, l, ct));
        group.MapGet("/{id}", GetAsync);
        group.MapGet("/", ListAsync);
        all.MapTwoPhaseGroup("/v1/admin", TwoPhaseGroup.Admin).WithTags("Admin").MapGet("/prepared", PreparedAsync);
        return all;
    }

    /// <summary>
    /// One PREPARE alone. A body that is malformed (400), refused by the rules (400) or by the resource manager (422) is
    /// answered with a problem detail naming the field, and nothing is written: the coordinator counts it as this
    /// transaction's NO, with the detail as its reason, and its ABORT leaves the tombstone.
    /// </summary>
    private static async Task<Results<Ok<PrepareAnswer>, ProblemHttpResult>> PrepareAsync(
        string id, HttpRequest request, LedgerParticipant participant, IOptions<TwoPhaseOptions> options, CancellationToken ct)
    {
        if (Problems.CheckId("id", id) is { } bad)
        {
            return bad;
        }

        // The coordinator group that sent it (docs/protocol.md, "Coordinator groups"): checked before anything is read or
        // written, so a bad header refuses the request and changes nothing.
        var (group, url) = (Header(request, CoordinatorGroups.GroupHeader), Header(request, CoordinatorGroups.UrlHeader));
        if (CoordinatorGroups.Check(group.Value, url.Value, CoordinatorGroups.GroupHeader, CoordinatorGroups.UrlHeader) is { } badIdentity)
        {
            return badIdentity;
        }

        if (group.Repeated || url.Repeated)
        {
            return Problems.Invalid(group.Repeated ? CoordinatorGroups.GroupHeader : CoordinatorGroups.UrlHeader, "must be given once");
        }

        var (json, problem) = await Problems.ReadJsonAsync<JsonElement>(request, options.Value.MaxBodyBytes, JsonSerializerOptions.Web);
        if (problem is not null)
        {
            return problem;
        }

        if (CheckPrepareBody(json, request.HttpContext.RequestServices.GetService<IPrepareRules>()) is { } error)
        {
            return Problems.Invalid(error.Field, error.Message);
        }

        try
        {
            var (vote, reason) = await participant.PrepareAsync(id, json.GetRawText(), group.Value, url.Value, ct);
            return TypedResults.Ok(new PrepareAnswer(id, vote.ToWire(), reason));
        }
        catch (InvalidPayloadException e)
        {
            return Unprocessable(e);
        }
    }

    /// <summary>A request header's one value (null when absent), and whether it was given more than once.</summary>
    private static (string? Value, bool Repeated) Header(HttpRequest request, string name) =>
        request.Headers.TryGetValue(name, out var values) ? (values.Count == 0 ? null : values[0], values.Count > 1) : (null, false);

    private static ProblemHttpResult Unprocessable(InvalidPayloadException e) =>
        TypedResults.Problem(new Microsoft.AspNetCore.Mvc.ValidationProblemDetails(new Dictionary<string, string[]> { [e.Field] = [e.Reason] })
        {
            Status = StatusCodes.Status422UnprocessableEntity,
            Title = "The PREPARE's payload cannot be reserved.",
            Detail = e.Message,
        });

    /// <summary>Null when a PREPARE body may go to the ledger; else the field and why (the body must be an object, then the rules).</summary>
    private static (string Field, string Message)? CheckPrepareBody(JsonElement? body, IPrepareRules? rules) =>
        body is { ValueKind: JsonValueKind.Object } json ? rules?.Validate(json) : ("body", "a PREPARE needs a JSON object body");

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
    /// Many protocol messages in one request (docs/api.md). The envelope and every message's shape (type, id, trace
    /// context, members) are checked first: a bad one refuses the batch with 400 and nothing is applied. A PREPARE whose
    /// body is bad is not the batch's fault: it is answered alone, as its own endpoint would (400 or 422, vote no, the
    /// reason), and the other messages run as if it were not there. They run at once, as if each had come alone, so they
    /// share the participant's group commit; each gets the answer its own endpoint would give.
    /// </summary>
    private static async Task<Results<Ok<BatchAnswer>, ProblemHttpResult>> BatchAsync(
        HttpRequest request, LedgerParticipant participant, IOptions<TwoPhaseOptions> options, ILoggerFactory loggers, CancellationToken ct)
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

        // One coordinator replica sends a batch: its group is the envelope's, for every PREPARE in it.
        if (CoordinatorGroups.Check(batch.CoordinatorGroup, batch.CoordinatorUrl, "coordinatorGroup", "coordinatorUrl") is { } badIdentity)
        {
            return badIdentity;
        }

        var parents = new ActivityContext[messages.Count];
        for (var i = 0; i < messages.Count; i++)
        {
            if (CheckBatchMessage(messages[i], $"messages[{i}]", out parents[i]) is { } bad)
            {
                return bad;
            }
        }

        // Optional: without rules any JSON object is a valid PREPARE.
        var rules = request.HttpContext.RequestServices.GetService<IPrepareRules>();
        var logger = loggers.CreateLogger("TwoPhase.Participant");
        var results = await Task.WhenAll(messages.Select((m, i) => m.Type == "prepare" && CheckPrepareBody(m.Body, rules) is { } error
            ? Task.FromResult(RefusedPrepare(m.TransactionId, StatusCodes.Status400BadRequest, $"{error.Field}: {error.Message}"))
            : HandleBatchMessageAsync(m, parents[i], batch, participant, logger, ct)));
        return TypedResults.Ok(new BatchAnswer(results));
    }

    /// <summary>A PREPARE answered without the ledger: its body was refused. Vote no, with the reason also as the problem's detail.</summary>
    private static BatchResult RefusedPrepare(string transactionId, int status, string reason) =>
        new(transactionId, status, Vote: "no", Reason: reason, Detail: reason);

    private static ProblemHttpResult? CheckBatchMessage(BatchMessage? message, string field, out ActivityContext parent)
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

        return message.Type switch
        {
            // Its body is judged with the message, alone (BatchAsync).
            "prepare" => null,
            "commit" or "abort" => message.Body is null or { ValueKind: JsonValueKind.Null } ? null : Problems.Invalid($"{field}.body", $"a {message.Type.ToUpperInvariant()} has no body"),
            _ => Problems.Invalid($"{field}.type", "must be prepare, commit or abort"),
        };
    }

    private static async Task<BatchResult> HandleBatchMessageAsync(BatchMessage message, ActivityContext parent, BatchRequest batch, LedgerParticipant participant, ILogger logger, CancellationToken ct)
    {
        // The caller's trace, not the batch's: this message's spans belong to its order.
        using var activity = parent == default
            ? null
            : TwoPhaseDiagnostics.ActivitySource.StartActivity($"twophase batch {message.Type}", ActivityKind.Server, parent);
        using var scope = logger.BeginScope(new TelemetryExtensions.TransactionLogScope(message.TransactionId));
        var id = message.TransactionId;
        if (message.Type == "prepare")
        {
            try
            {
                var (vote, reason) = await participant.PrepareAsync(id, message.Body!.Value.GetRawText(), batch.CoordinatorGroup, batch.CoordinatorUrl, ct);
                return new BatchResult(id, StatusCodes.Status200OK, Vote: vote.ToWire(), Reason: reason);
            }
            catch (InvalidPayloadException e)
            {
                return RefusedPrepare(id, StatusCodes.Status422UnprocessableEntity, e.Message);
            }
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
        e.Checks)
    {
        CoordinatorGroup = e.CoordinatorGroup,
        CoordinatorUrl = e.CoordinatorUrl,
    };
}
