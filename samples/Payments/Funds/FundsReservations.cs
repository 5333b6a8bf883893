using System.Text.Json;
using Dapper;
using TwoPhase.Persistence;

namespace Payments.Funds;

/// <summary>What a payment asks for, and what a prepared payment holds: an amount, in cents, of one account.</summary>
public sealed record Payment(string Account, long Amount);

/// <summary>
/// Funds as a 2PC resource, in one table. PREPARE holds the amount with one conditional UPDATE (its WHERE clause is
/// the funds check, so two payments can never both spend the same cents); COMMIT takes the held amount out of the
/// balance; ABORT lets it go. The ledger row and these updates share one local transaction (docs/participant-guide.md).
/// </summary>
public sealed class FundsReservations : IResourceManager
{
    public string Schema(Dialect dialect) => """
        CREATE TABLE IF NOT EXISTS accounts (
            id       TEXT PRIMARY KEY,
            balance  BIGINT NOT NULL,
            held     BIGINT NOT NULL DEFAULT 0,
            CHECK (balance >= 0 AND held >= 0 AND held <= balance)
        );
        """;

    public async Task<Reservation> ReserveAsync(LocalTransaction tx, string transactionId, string payload, CancellationToken cancellationToken)
    {
        var payment = JsonSerializer.Deserialize<Payment>(payload, JsonSerializerOptions.Web)!;
        var held = await tx.Connection.ExecuteAsync(new CommandDefinition(
            "UPDATE accounts SET held = held + @Amount WHERE id = @Account AND balance - held >= @Amount",
            payment,
            tx.Transaction,
            cancellationToken: cancellationToken));
        if (held == 1)
        {
            return Reservation.Held(JsonSerializer.Serialize(payment, JsonSerializerOptions.Web));
        }

        // Nothing was changed (one statement, no rows): only the reason is left to find.
        var known = await tx.Connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT COUNT(*) FROM accounts WHERE id = @Account", payment, tx.Transaction, cancellationToken: cancellationToken));
        return Reservation.Refused(known == 0 ? $"unknown account '{payment.Account}'" : $"insufficient funds in account '{payment.Account}'");
    }

    public Task CommitAsync(LocalTransaction tx, string transactionId, string? holding, CancellationToken cancellationToken) =>
        ApplyAsync(tx, "UPDATE accounts SET balance = balance - @Amount, held = held - @Amount WHERE id = @Account", holding, cancellationToken);

    public Task ReleaseAsync(LocalTransaction tx, string transactionId, string? holding, CancellationToken cancellationToken) =>
        ApplyAsync(tx, "UPDATE accounts SET held = held - @Amount WHERE id = @Account", holding, cancellationToken);

    private static Task ApplyAsync(LocalTransaction tx, string sql, string? holding, CancellationToken cancellationToken) =>
        tx.Connection.ExecuteAsync(new CommandDefinition(sql, Held(holding), tx.Transaction, cancellationToken: cancellationToken));

    private static Payment Held(string? holding) =>
        JsonSerializer.Deserialize<Payment>(holding ?? "null", JsonSerializerOptions.Web)
        ?? throw new InvalidOperationException("A prepared payment holds no amount.");
}
