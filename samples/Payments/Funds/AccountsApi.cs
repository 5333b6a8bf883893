using Dapper;
using TwoPhase.Persistence;

namespace Payments.Funds;

/// <summary>The payments service's own endpoints: read an account, pay money in. Not part of the protocol.</summary>
public static class AccountsApi
{
    public sealed record Account(string Id, long Balance, long Held);

    public sealed record Deposit(long Amount);

    public static IEndpointRouteBuilder MapAccounts(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/v1/accounts");
        group.MapGet("/{id}", async (string id, Database db, CancellationToken ct) =>
            await db.ReadAsync(c => c.QuerySingleOrDefaultAsync<Account>(new CommandDefinition(
                "SELECT id AS Id, balance AS Balance, held AS Held FROM accounts WHERE id = @Id", new { Id = id }, cancellationToken: ct)), ct)
                is { } account ? Results.Ok(account) : Results.NotFound());
        group.MapPost("/{id}/deposits", async (string id, Deposit deposit, Database db, CancellationToken ct) =>
        {
            if (id.Length is < 1 or > 64 || deposit.Amount is < 1 or > PaymentRules.MaxAmount)
            {
                return Results.ValidationProblem(new Dictionary<string, string[]> { ["amount"] = [$"must be 1 to {PaymentRules.MaxAmount} cents, for an id of 1 to 64 characters"] });
            }

            await db.WriteAsync(
                tx => tx.Connection.ExecuteAsync(new CommandDefinition(
                    "INSERT INTO accounts (id, balance) VALUES (@Id, @Amount) ON CONFLICT (id) DO UPDATE SET balance = accounts.balance + excluded.balance",
                    new { Id = id, deposit.Amount },
                    tx.Transaction,
                    cancellationToken: ct)),
                ct);
            return Results.NoContent();
        });
        return endpoints;
    }
}
