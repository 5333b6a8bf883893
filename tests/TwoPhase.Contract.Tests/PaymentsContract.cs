using Payments.Funds;
using TwoPhase.Persistence;
using TwoPhase.Testing;

namespace TwoPhase.Contract.Tests;

/// <summary>The payments sample's funds (<see cref="FundsReservations"/>, samples/Payments) under the resource manager contract.</summary>
public abstract class PaymentsContract(IDatabaseTarget store) : ResourceManagerContract(store)
{
    protected override IResourceManager CreateResourceManager() => new FundsReservations();

    // A unit is one cent of one account.
    protected override Task AddUnitsAsync(Database database, int units) =>
        Sql.ExecuteAsync(
            database,
            "INSERT INTO accounts (id, balance) VALUES ('acct', @Units) ON CONFLICT (id) DO UPDATE SET balance = accounts.balance + excluded.balance",
            new { Units = units });

    protected override string OneUnit(int n) => """{"account":"acct","amount":1}""";

    protected override string? Refused(int n) => """{"account":"no-such-account","amount":1}""";

    protected override Task<string> SnapshotAsync(Database database) =>
        Sql.SnapshotAsync(database, "SELECT id || ' balance=' || balance || ' held=' || held FROM accounts ORDER BY id");
}

public sealed class PaymentsOnSqlite() : PaymentsContract(new SqliteTarget());

public sealed class PaymentsOnPostgres(PostgresServerFixture server) : PaymentsContract(server), IClassFixture<PostgresServerFixture>;
