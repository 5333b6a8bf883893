using TwoPhase.AspNetCore;
using TwoPhase.Protocol;

// A minimal TwoPhase coordinator: a checkout that pays (the payments sample) and takes stock (the reference storage
// service) in one transaction, each participant with its own payload (docs/coordinator-guide.md).
var builder = WebApplication.CreateBuilder(args);
builder.AddTwoPhase();                  // section "TwoPhase": database (the decision log), secret, limits
builder.AddTwoPhaseCoordinator();       // "TwoPhase:Coordinator": participants, deadlines, recovery

var app = builder.Build();
app.MapTwoPhaseCoordinator();           // the decision query participants in doubt call, admin views and retry
app.MapTwoPhaseHealth();

app.MapPost("/v1/checkouts", async (Checkout checkout, TwoPhaseTransactions transactions, CancellationToken ct) =>
{
    if (!checkout.IsValid(out var problem))
    {
        return Results.ValidationProblem(new Dictionary<string, string[]> { ["checkout"] = [problem] });
    }

    // The checkout id is the transaction id: a retry of the same checkout finds the recorded outcome.
    var transaction = new TwoPhaseTransaction($"checkout-{checkout.Id}") { IdempotencyKey = checkout.Id }
        .With("payments", new { account = checkout.Account, amount = checkout.Amount })
        .With("storage", new { items = new[] { new { sku = checkout.Sku, quantity = checkout.Quantity } } });
    TransactionOutcome outcome = await transactions.RunAsync(transaction, ct);
    // This host's own answer, in its own JSON: the library's records are not the checkout's API.
    return Results.Ok(new CheckoutResult(checkout.Id, outcome.State.ToWire(), outcome.Reason, outcome.Acknowledged));
});

app.Run();

/// <summary>What <c>POST /v1/checkouts</c> answers: <c>committed</c> or <c>aborted</c>, why, and who has applied it so far.</summary>
internal sealed record CheckoutResult(string Id, string State, string? Reason, IReadOnlyList<string> Acknowledged);

/// <summary>The body of <c>POST /v1/checkouts</c>: pay <see cref="Amount"/> cents from an account for some units of a product.</summary>
internal sealed record Checkout(string Id, string Account, long Amount, string Sku, int Quantity)
{
    public bool IsValid(out string problem)
    {
        problem = Id is not { Length: >= 1 and <= 64 } ? "id: 1 to 64 characters"
            : Account is not { Length: >= 1 and <= 64 } ? "account: 1 to 64 characters"
            : Amount is < 1 or > 100_000_000 ? "amount: 1 to 100000000 cents"
            : Sku is not { Length: >= 1 and <= 64 } ? "sku: 1 to 64 characters"
            : Quantity is < 1 or > 1000 ? "quantity: 1 to 1000"
            : "";
        return problem.Length == 0;
    }
}
