using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using TwoPhase.Persistence;
using TwoPhase.Protocol;

namespace TwoPhase.AspNetCore;

/// <summary>
/// The coordinator's HTTP endpoints: the decision query participants ask when in doubt, and the operator's views of the
/// decision log with a retry. Mapped by the library, so any coordinator built on it answers its participants.
/// </summary>
public static class CoordinatorEndpoints
{
    /// <summary>
    /// <c>GET /v1/transactions/{id}</c> (the decision, presumed abort for the unknown; readable by anyone, docs/security.md)
    /// and <c>/v1/admin/transactions</c>: the unfinished or conflicted list (<c>?state</c>, <c>?limit</c>) and
    /// <c>POST /{id}/retry</c>, behind the shared secret. Returns the group holding them all, for the host's conventions.
    /// </summary>
    public static RouteGroupBuilder MapTwoPhaseCoordinator(this IEndpointRouteBuilder endpoints)
    {
        var all = endpoints.MapGroup(string.Empty);
        all.MapTwoPhaseGroup("/v1/transactions", TwoPhaseGroup.DecisionQuery).WithTags("2PC coordinator").MapGet("/{id}", DecisionAsync);
        var admin = all.MapTwoPhaseGroup("/v1/admin/transactions", TwoPhaseGroup.Admin).WithTags("Admin");
        admin.MapGet("/", ListAsync);
        admin.MapPost("/{id}/retry", RetryAsync);
        return all;
    }

    /// <summary>
    /// The decision query (DESIGN §2): committed, aborted, or pending while still preparing. An unknown id is aborted
    /// (presumed abort) only when asked about as this coordinator's group's (<c>?group</c> absent or this group): asked
    /// about as another group's, this coordinator never issued it and cannot know, so it answers 404 not-this-group and
    /// the asker asks again later (docs/protocol.md, "Coordinator groups").
    /// </summary>
    private static async Task<Results<Ok<DecisionQuery>, ProblemHttpResult>> DecisionAsync(
        string id, [FromQuery(Name = CoordinatorGroups.QueryParameter)] string? group, IDecisionLog log, IOptions<CoordinatorOptions> options, TimeProvider time, CancellationToken ct)
    {
        if (Problems.CheckId("id", id) is { } bad)
        {
            return bad;
        }

        if (group is not null && CoordinatorGroups.CheckGroup(group) is { } badGroup)
        {
            return Problems.Invalid(CoordinatorGroups.QueryParameter, badGroup);
        }

        var record = await log.FindAsync(id, ct);
        var mine = options.Value.Group;
        if (record is null && group is not null && !string.Equals(group, mine, StringComparison.Ordinal))
        {
            return CoordinatorGroups.NotThisGroup(id, group, mine);
        }

        return TypedResults.Ok(new DecisionQuery(id, CoordinatorRules.Answer(record, time.GetUtcNow()).ToWire()));
    }

    private static async Task<Results<Ok<List<TransactionView>>, ProblemHttpResult>> ListAsync(
        string? state, int? limit, HttpContext context, IDecisionLog log, TimeProvider time, CancellationToken ct)
    {
        if (state is not (null or "unfinished" or "conflicted"))
        {
            return Problems.Invalid("state", "only 'unfinished' (every transaction not completed, conflicted ones too) or 'conflicted' is supported");
        }

        if (Paging.Check(null, limit) is { } bad)
        {
            return bad;
        }

        var now = time.GetUtcNow();
        var max = limit ?? Paging.MaxLimit;
        var records = state != "conflicted"
            ? await log.ListUnfinishedAsync(max, ct)
            // The SQL log reads conflicted rows alone, by its partial index; another log is filtered here (conflicted
            // transactions are never completed, so they are all among the unfinished).
            : context.RequestServices.GetService<SqlDecisionLog>() is { } sql && ReferenceEquals(sql, log)
                ? await sql.ListConflictedAsync(max, ct)
                : (await log.ListUnfinishedAsync(Paging.MaxLimit, ct)).Where(r => r.IsConflicted).Take(max).ToList();
        return TypedResults.Ok(records.Select(r => TransactionView.From(r, now)).ToList());
    }

    private static async Task<Results<Ok<TransactionView>, ProblemHttpResult>> RetryAsync(string id, TwoPhaseCoordinator coordinator, TimeProvider time, CancellationToken ct)
    {
        if (Problems.CheckId("id", id) is { } bad)
        {
            return bad;
        }

        return await coordinator.RetryNowAsync(id, ct) is { } record
            ? TypedResults.Ok(TransactionView.From(record, time.GetUtcNow()))
            : Problems.NotFound($"Transaction '{id}'");
    }
}
