using System.Data.Common;
using Dapper;
using Npgsql;
using TwoPhase.Persistence;
using TwoPhase.Protocol;

namespace TwoPhase.Tests.Storage;

public sealed class PostgresLedgerTests(PostgresServerFixture server) : LedgerComplianceTests, IClassFixture<PostgresServerFixture>
{
    protected override Task<Database> CreateDatabaseAsync() => server.CreateDatabaseAsync();

    /// <summary>
    /// Only PostgreSQL has row locks that let an ABORT run while a PREPARE's local transaction is still open
    /// (SQLite serialises all writers). The abort must wait for the prepare and then release it.
    /// </summary>
    [Fact]
    public async Task AbortWhilePrepareUncommitted_ReleasesOncePrepareCommits_NoConflict()
    {
        await SeedProductAsync("widget", 10);
        var connectionString = await StorageConnectionStringAsync();

        // A PREPARE caught between writing its rows and committing: units held, ledger row prepared, not committed.
        await using var prepare = new NpgsqlConnection(connectionString);
        await prepare.OpenAsync();
        await using var open = await prepare.BeginTransactionAsync();
        await prepare.ExecuteAsync("UPDATE products SET reserved = reserved + 1 WHERE sku = 'widget'", transaction: open);
        await prepare.ExecuteAsync(
            """INSERT INTO tp_ledger (tx_id, state, holding, created_ms, updated_ms) VALUES ('tx-1', 'prepared', '[{"sku":"widget","quantity":1}]', 0, 0)""",
            transaction: open);
        var prepareBackend = prepare.ProcessID;

        var abort = Storage.AbortAsync("tx-1", CancellationToken.None);
        await WaitUntilBlockedByAsync(prepareBackend);
        await open.CommitAsync();
        var result = await abort.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(new DecisionResult(LedgerState.Aborted, false, null), result);
        Assert.Equal(new Stock(10, 0, 0, 10), await StockAsync("widget"));
        Assert.Equal(LedgerState.Aborted, (await Storage.FindAsync("tx-1", CancellationToken.None))!.State);
    }

    private Task<string> StorageConnectionStringAsync() =>
        StorageDb.ReadAsync(c => Task.FromResult(((DbConnection)c).ConnectionString), CancellationToken.None);

    /// <summary>Wait (bounded) until some backend is waiting on a lock held by <paramref name="holder"/>.</summary>
    private async Task WaitUntilBlockedByAsync(int holder)
    {
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            var blocked = await StorageDb.ReadAsync(
                c => c.ExecuteScalarAsync<long>(new CommandDefinition(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE @Holder = ANY(pg_blocking_pids(pid))", new { Holder = holder }, cancellationToken: bound.Token)),
                bound.Token);
            if (blocked > 0)
            {
                return;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(10), bound.Token);
        }
    }
}

public sealed class PostgresDecisionLogTests(PostgresServerFixture server) : DecisionLogComplianceTests, IClassFixture<PostgresServerFixture>
{
    protected override Task<Database> CreateDatabaseAsync() => server.CreateDatabaseAsync();
}
