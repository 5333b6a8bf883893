using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
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

public static class ParticipantExtensions
{
    public const string CoordinatorClientName = "twophase-coordinator";

    /// <summary>A participant: the ledger engine over <typeparamref name="TResources"/>, and the in-doubt resolver.</summary>
    public static WebApplicationBuilder AddTwoPhaseParticipant<TResources, TRules>(this WebApplicationBuilder builder)
        where TResources : class, IResourceManager
        where TRules : class, IPrepareRules
    {
        var services = builder.Services;
        services.AddOptions<ParticipantOptions>().BindConfiguration(ParticipantOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton<TResources>();
        services.TryAddSingleton<IResourceManager>(sp => sp.GetRequiredService<TResources>());
        services.TryAddSingleton<IPrepareRules, TRules>();
        services.TryAddSingleton<LedgerParticipant>();
        services.AddSingleton<IStartupTask, LedgerSchema>();
        services.AddHostedService<InDoubtResolver>();
        services.AddHttpClient(CoordinatorClientName);
        return builder;
    }

    /// <summary>The 2PC endpoints (DESIGN §3), the operator's view, and the old protocol when enabled.</summary>
    public static IEndpointRouteBuilder MapTwoPhaseParticipant(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/v1/transactions").RequireTwoPhaseSecret().WithTags("2PC participant");
        group.MapPost("/batch", BatchAsync);
        group.MapPost("/{id}/prepare", PrepareAsync);
        group.MapPost("/{id}/commit", (string id, LedgerParticipant p, ILoggerFactory l, CancellationToken ct) => DecideAsync(id, Decision.Commit, p, l, ct));
        group.MapPost("/{id}/abort", (string id, LedgerParticipant p, ILoggerFactory l, CancellationToken ct) => DecideAsync(id, Decision.Abort, p, l, ct));
        group.MapGet("/{id}", GetAsync);
        group.MapGet("/", ListAsync);
        endpoints.MapGet("/v1/admin/prepared", PreparedAsync).RequireTwoPhaseSecret().WithTags("Admin");

        var options = endpoints.ServiceProvider.GetRequiredService<IOptions<ParticipantOptions>>().Value;
        if (options.LegacyProtocol)
        {
            var legacy = endpoints.MapGroup("/").RequireTwoPhaseSecretForLegacy().WithTags("Old protocol");
            legacy.MapPost("/prepare", LegacyPrepareAsync);
            legacy.MapPost("/commit", (HttpRequest r, LedgerParticipant p, ILoggerFactory l, IOptions<TwoPhaseOptions> o) => LegacyDecideAsync(r, Decision.Commit, p, l, o));
            legacy.MapPost("/rollback", (HttpRequest r, LedgerParticipant p, ILoggerFactory l, IOptions<TwoPhaseOptions> o) => LegacyDecideAsync(r, Decision.Abort, p, l, o));
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

        var result = decision == Decision.Commit ? await participant.CommitAsync(id, ct) : await participant.AbortAsync(id, ct);
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

        var result = message.Type == "commit" ? await participant.CommitAsync(id, ct) : await participant.AbortAsync(id, ct);
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

    private static async Task<IResult> LegacyPrepareAsync(HttpRequest request, LedgerParticipant participant, IPrepareRules rules, IOptions<TwoPhaseOptions> options, CancellationToken ct)
    {
        var (message, problem) = await ReadLegacyAsync(request, options.Value);
        if (problem is not null)
        {
            return problem;
        }

        var (vote, _) = await participant.PrepareAsync(message!.Value.TransactionId, rules.FromLegacy(message.Value.TransactionId, message.Value.OrderId), ct);
        return TypedResults.Ok(new { vote = vote == VoteKind.Yes ? "yes" : "no" });
    }

    private static async Task<IResult> LegacyDecideAsync(HttpRequest request, Decision decision, LedgerParticipant participant, ILoggerFactory loggers, IOptions<TwoPhaseOptions> options)
    {
        var (message, problem) = await ReadLegacyAsync(request, options.Value);
        if (problem is not null)
        {
            return problem;
        }

        var id = message!.Value.TransactionId;
        var result = decision == Decision.Commit
            ? await participant.CommitAsync(id, request.HttpContext.RequestAborted)
            : await participant.AbortAsync(id, request.HttpContext.RequestAborted);
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

    private sealed class LedgerSchema(LedgerParticipant participant) : IStartupTask
    {
        public int Order => 0;

        public Task RunAsync(CancellationToken cancellationToken) => participant.InitializeAsync(cancellationToken);
    }
}

/// <summary>Paging rules shared by every listing.</summary>
public static class Paging
{
    public const int DefaultLimit = 100;
    public const int MaxLimit = 1000;

    public static ProblemHttpResult? Check(string? after, int? limit) =>
        limit is < 1 or > MaxLimit ? Problems.Invalid("limit", $"must be between 1 and {MaxLimit}")
        // An empty cursor (`?after=`) means from the start, as a missing one does.
        : !string.IsNullOrEmpty(after) && !Problems.IsValidId(after) ? Problems.Invalid("after", "must be an id")
        : null;
}

/// <summary>
/// Resolves prepared rows older than the in-doubt timeout by asking the coordinator (DESIGN §2). Never decides
/// alone: an unreachable coordinator or a pending answer means ask again later, with capped backoff.
/// </summary>
internal sealed class InDoubtResolver(
    LedgerParticipant participant,
    IHttpClientFactory clients,
    IOptions<ParticipantOptions> options,
    IOptions<TwoPhaseOptions> shared,
    TimeProvider time,
    ILogger<InDoubtResolver> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(o.CheckIntervalMs), time);
        do
        {
            try
            {
                await ResolveOnceAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                Log.RecoveryFailed(logger, e);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    public async Task ResolveOnceAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        var now = time.GetUtcNow();
        var inDoubt = await participant.FindInDoubtAsync(now - TimeSpan.FromMilliseconds(o.InDoubtAfterMs), now, o.BatchSize, cancellationToken);
        var http = clients.CreateClient(ParticipantExtensions.CoordinatorClientName);
        await Parallel.ForEachAsync(inDoubt, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken }, async (entry, ct) =>
        {
            var answer = await AskAsync(http, entry.TransactionId, ct);
            switch (answer)
            {
                case "committed":
                    await participant.CommitAsync(entry.TransactionId, ct);
                    Log.InDoubtResolved(logger, entry.TransactionId, answer);
                    break;
                case "aborted":
                    await participant.AbortAsync(entry.TransactionId, ct);
                    Log.InDoubtResolved(logger, entry.TransactionId, answer);
                    break;
                default:
                    var delay = Backoff.Delay(entry.Checks + 1, TimeSpan.FromMilliseconds(o.RetryInitialDelayMs), TimeSpan.FromMilliseconds(o.RetryMaxDelayMs), Random.Shared.NextDouble());
                    await participant.ScheduleCheckAsync(entry.TransactionId, time.GetUtcNow() + delay, ct);
                    break;
            }
        });
    }

    private async Task<string?> AskAsync(HttpClient http, string transactionId, CancellationToken cancellationToken)
    {
        var o = options.Value;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(o.QueryTimeoutMs);
        using var request = new HttpRequestMessage(HttpMethod.Get, $"{o.CoordinatorUrl.TrimEnd('/')}/v1/transactions/{Uri.EscapeDataString(transactionId)}");
        if (!string.IsNullOrEmpty(shared.Value.Secret))
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", shared.Value.Secret);
        }

        try
        {
            using var response = await http.SendAsync(request, timeout.Token);
            if (!response.IsSuccessStatusCode)
            {
                Log.InDoubtUnreachable(logger, transactionId, $"HTTP {(int)response.StatusCode}");
                return null;
            }

            var answer = await response.Content.ReadFromJsonAsync<DecisionQuery>(JsonSerializerOptions.Web, timeout.Token);
            return answer?.State;
        }
        catch (Exception e) when (e is HttpRequestException or JsonException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            Log.InDoubtUnreachable(logger, transactionId, e.GetType().Name);
            return null;
        }
    }
}
