using Microsoft.AspNetCore.Http.HttpResults;
using TwoPhase.AspNetCore;
using TwoPhase.Persistence;
using TwoPhase.Protocol;

namespace OrderService.Orders;

public static class TransactionsApi
{
    public static IEndpointRouteBuilder MapTransactions(this IEndpointRouteBuilder endpoints)
    {
        // The decision query participants ask when in doubt (DESIGN §2): presumed abort for the unknown.
        endpoints.MapGet("/v1/transactions/{id}", async Task<Results<Ok<DecisionQuery>, ProblemHttpResult>> (string id, IDecisionLog log, TimeProvider time, CancellationToken ct) =>
            Problems.CheckId("id", id) is { } bad
                ? bad
                : TypedResults.Ok(new DecisionQuery(id, CoordinatorRules.Answer(await log.FindAsync(id, ct), time.GetUtcNow()).ToWire())))
            .WithTags("2PC coordinator");

        var admin = endpoints.MapGroup("/v1/admin/transactions").RequireTwoPhaseSecret().WithTags("Admin");
        admin.MapGet("/", async Task<Results<Ok<List<TransactionView>>, ProblemHttpResult>> (string? state, int? limit, IDecisionLog log, SqlDecisionLog sql, TimeProvider time, CancellationToken ct) =>
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
            var records = state == "conflicted"
                ? await sql.ListConflictedAsync(limit ?? Paging.MaxLimit, ct)
                : await log.ListUnfinishedAsync(limit ?? Paging.MaxLimit, ct);
            return TypedResults.Ok(records.Select(r => TransactionView.From(r, now)).ToList());
        });
        admin.MapPost("/{id}/retry", async Task<Results<Ok<TransactionView>, ProblemHttpResult>> (string id, TwoPhaseCoordinator coordinator, TimeProvider time, CancellationToken ct) =>
        {
            if (Problems.CheckId("id", id) is { } bad)
            {
                return bad;
            }

            return await coordinator.RetryNowAsync(id, ct) is { } record
                ? TypedResults.Ok(TransactionView.From(record, time.GetUtcNow()))
                : Problems.NotFound($"Transaction '{id}'");
        });
        return endpoints;
    }
}
