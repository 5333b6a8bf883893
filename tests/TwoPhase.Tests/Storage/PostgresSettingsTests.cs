using Dapper;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using StorageService.Products;
using TwoPhase.Harness;
using TwoPhase.Persistence;
using TwoPhase.Protocol;

namespace TwoPhase.Tests.Storage;

/// <summary>
/// The PostgreSQL settings the protocol relies on (docs/recovery.md): durable sessions whatever the defaults say,
/// bounded lock waits, and no start on a server that does not fsync.
/// </summary>
public sealed class PostgresSettingsTests(PostgresServerFixture server) : IClassFixture<PostgresServerFixture>
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task DatabaseDefaultsToSynchronousCommitOff_DurableSessionsStillSayOn_WithTimeouts()
    {
        var (name, connectionString) = await server.CreateOwnDatabaseAsync();
        await server.AdminAsync($"ALTER DATABASE {name} SET synchronous_commit = off");
        await using (var plain = new NpgsqlConnection(connectionString))
        {
            // The default really is off for a session that does not say otherwise.
            Assert.Equal("off", await plain.ExecuteScalarAsync<string>("SHOW synchronous_commit"));
        }

        await using var db = Database.Create(new DatabaseOptions { Provider = "postgres", ConnectionString = connectionString }, "unused.db");

        var settings = await db.ReadAsync(
            c => c.QuerySingleAsync<(string, string, string, string)>(new CommandDefinition(
                "SELECT current_setting('synchronous_commit'), current_setting('lock_timeout'), current_setting('statement_timeout'), current_setting('idle_in_transaction_session_timeout')")),
            None);
        Assert.Equal(("on", "2s", "10s", "30s"), settings);
        Assert.Null(await db.VerifyAsync(None));
    }

    /// <summary>
    /// A session (psql left open, a stalled process) holds a product row's lock inside a transaction: a PREPARE that
    /// needs the row fails after the lock timeout with an error the protocol treats as a failure (503, no vote),
    /// changes nothing, and succeeds once the holder is gone, instead of every order waiting behind it.
    /// </summary>
    [Fact]
    public async Task RowLockHeldByIdleSession_PrepareFailsWithLockTimeout_ChangesNothing()
    {
        await using var db = await server.CreateDatabaseAsync();
        var storage = new LedgerParticipant(db, new StockReservations(), new FakeTimeProvider(), NoProtocolHooks.Instance);
        await storage.InitializeAsync(None);
        await db.WriteAsync(tx => tx.Connection.ExecuteAsync(new CommandDefinition(
            "INSERT INTO products (sku, name, on_hand, reserved, sold, received) VALUES ('widget', 'widget', 10, 0, 0, 10)", transaction: tx.Transaction)), None);
        var connectionString = await db.ReadAsync(c => Task.FromResult(c.ConnectionString), None);

        await using var holder = new NpgsqlConnection(connectionString);
        await holder.OpenAsync();
        await using (var open = await holder.BeginTransactionAsync())
        {
            await holder.ExecuteAsync("UPDATE products SET name = name WHERE sku = 'widget'", transaction: open);

            var prepare = storage.PrepareAsync("tx-1", """{"orderId":"o-1","items":[{"sku":"widget","quantity":1}]}""", None);
            var failure = await Assert.ThrowsAsync<PostgresException>(() => prepare.WaitAsync(Concurrently.Bound));

            Assert.Equal(PostgresErrorCodes.LockNotAvailable, failure.SqlState);
            await open.RollbackAsync();
        }

        Assert.Null(await storage.FindAsync("tx-1", None));
        Assert.Equal((10L, 0L), await db.ReadAsync(c => c.QuerySingleAsync<(long, long)>(new CommandDefinition("SELECT on_hand, reserved FROM products WHERE sku = 'widget'")), None));
        Assert.Equal(VoteKind.Yes, (await storage.PrepareAsync("tx-1", """{"orderId":"o-1","items":[{"sku":"widget","quantity":1}]}""", None)).Vote);
    }

    /// <summary>
    /// The plan trap that enable_seqscan=off used to paper over: statements prepared while the ledger is small (after
    /// an early ANALYZE, as autovacuum does) keep a generic sequential-scan plan after the table has grown. Our sessions
    /// plan each execution for the table as it is, so the grown table is read through its index.
    /// </summary>
    [Fact]
    public async Task HotStatementsPreparedWhileLedgerSmall_AfterGrowth_UseTheIndex()
    {
        await using var db = await server.CreateDatabaseAsync();
        await db.ExecuteScriptAsync(LedgerSql.Schema, None);
        await using var connection = await db.OpenAsync(None);
        await connection.ExecuteAsync("""
            INSERT INTO tp_ledger (tx_id, state, created_ms, updated_ms) SELECT 'seed-' || g, 'prepared', g, g FROM generate_series(1, 100) g;
            ANALYZE tp_ledger;
            PREPARE known(text[]) AS SELECT tx_id FROM tp_ledger WHERE tx_id = ANY($1);
            PREPARE move(text[]) AS UPDATE tp_ledger SET updated_ms = updated_ms WHERE tx_id = ANY($1) AND state = 'prepared';
            PREPARE find(text) AS SELECT tx_id FROM tp_ledger WHERE tx_id = $1;
            """);
        for (var i = 0; i < 7; i++)
        {
            // Past the five custom plans after which PostgreSQL settles on a generic plan if it looks no worse.
            await connection.ExecuteAsync("EXECUTE known(ARRAY['a', 'b']); EXECUTE move(ARRAY['a', 'b']); EXECUTE find('a');");
        }

        await connection.ExecuteAsync("INSERT INTO tp_ledger (tx_id, state, created_ms, updated_ms) SELECT 'tx-' || g, 'committed', g, g FROM generate_series(1, 100000) g");

        foreach (var statement in new[] { "known(ARRAY['tx-5', 'tx-7'])", "move(ARRAY['tx-5', 'tx-7'])", "find('tx-5')" })
        {
            var plan = string.Join('\n', await connection.QueryAsync<string>($"EXPLAIN (COSTS OFF) EXECUTE {statement}"));
            Assert.Contains("using tp_ledger_pkey", plan, StringComparison.Ordinal);
            Assert.DoesNotContain("Seq Scan", plan, StringComparison.Ordinal);
        }

        await connection.ExecuteAsync("DEALLOCATE ALL");
    }

    [Fact]
    public async Task ServerWithFsyncOn_Verified()
    {
        await using var db = await server.CreateDatabaseAsync();

        Assert.Null(await db.VerifyAsync(None));
    }
}

/// <summary>A cluster of its own with <c>fsync = off</c>, shared by the tests of one class.</summary>
public sealed class FsyncOffCluster : IAsyncLifetime
{
    private PostgresCluster? _cluster;

    public string ConnectionString => _cluster!.ConnectionString + ";Pooling=false";

    public async Task InitializeAsync() => _cluster = await PostgresCluster.CreateAsync(
        new PostgresClusterOptions { Name = "twophase-pg-fsync-off", MaxConnections = 20, ExtraSettings = ["fsync = off"] },
        CancellationToken.None);

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }
    }
}

public sealed class PostgresFsyncOffTests(FsyncOffCluster cluster) : IClassFixture<FsyncOffCluster>
{
    [Fact]
    public async Task ServerWithFsyncOff_StartRefused_MessageNamesTheSettingAndTheOption()
    {
        await using var db = Database.Create(new DatabaseOptions { Provider = "postgres", ConnectionString = cluster.ConnectionString }, "unused.db");

        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => db.VerifyAsync(CancellationToken.None));

        Assert.Contains("fsync=off", refused.Message, StringComparison.Ordinal);
        Assert.Contains("TwoPhase:Database:AllowUnsafeFsyncOff", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ServerWithFsyncOff_AllowedExplicitly_StartsWithAWarning()
    {
        await using var db = Database.Create(new DatabaseOptions { Provider = "postgres", ConnectionString = cluster.ConnectionString, AllowUnsafeFsyncOff = true }, "unused.db");

        var warning = await db.VerifyAsync(CancellationToken.None);

        Assert.Contains("fsync=off", warning, StringComparison.Ordinal);
    }
}
