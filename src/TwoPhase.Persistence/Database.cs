using System.ComponentModel.DataAnnotations;
using System.Data;
using System.Data.Common;
using Dapper;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace TwoPhase.Persistence;

/// <summary>The two stores we support. Every SQL difference between them is decided here or beside the SQL that needs it.</summary>
public enum Dialect
{
    /// <summary>SQLite through Microsoft.Data.Sqlite: one file, one writer, for development and small single-node services.</summary>
    Sqlite,

    /// <summary>PostgreSQL through Npgsql: the production store.</summary>
    Postgres,
}

/// <summary>
/// Where a service keeps its data, section <c>TwoPhase:Database</c>. The connection is, in this order:
/// <see cref="ConnectionString"/>; else <c>ConnectionStrings:&lt;<see cref="ConnectionStringName"/>&gt;</c> (filled in by the
/// host's registration); else an <see cref="NpgsqlDataSource"/> the host registered; else the SQLite file
/// <see cref="SqliteFile"/> (docs/api.md, "Configuration").
/// </summary>
public sealed class DatabaseOptions
{
    /// <summary>The configuration section these options bind from.</summary>
    public const string SectionName = "TwoPhase:Database";

    /// <summary>
    /// <c>sqlite</c>, <c>postgres</c>, or unset: PostgreSQL when a connection string or a registered
    /// <see cref="NpgsqlDataSource"/> is found, else the SQLite file.
    /// </summary>
    [RegularExpression(@"(?i)^\s*(sqlite|postgres|postgresql|npgsql)?\s*$", ErrorMessage = "must be sqlite or postgres")]
    public string? Provider { get; set; }

    /// <summary>An Npgsql (or, with <see cref="Provider"/> <c>sqlite</c>, a Microsoft.Data.Sqlite) connection string.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>The entry of the host's <c>ConnectionStrings</c> section read when <see cref="ConnectionString"/> is unset.</summary>
    public string ConnectionStringName { get; set; } = "TwoPhase";

    /// <summary>
    /// The SQLite file used when no connection is configured. A relative path resolves against the host's content root
    /// (where its appsettings.json is read from), never the working directory.
    /// </summary>
    public string SqliteFile { get; set; } = "twophase.db";

    /// <summary>
    /// Connections to PostgreSQL at most in the durable pool; the pool of writes the protocol may lose gets a third of
    /// it (at least 2). The default, 12 + 4 = 16 per service, lets the three services of the reference application
    /// share a stock server (max_connections = 100) with half of it to spare: measured at 64 concurrent orders, the
    /// three used 21 between them (docs/performance.md).
    /// </summary>
    [Range(1, 1000)]
    public int MaxPoolSize { get; set; } = 12;

    /// <summary>
    /// PostgreSQL <c>lock_timeout</c> of every session, in milliseconds (0: wait forever). A protocol write that waits
    /// longer for a row lock (a stuck session holding it) fails with SQLSTATE 55P03: the participant answers 503, the
    /// coordinator counts no vote and aborts, instead of every order queueing behind the holder.
    /// </summary>
    [Range(0, 3_600_000)]
    public int LockTimeoutMs { get; set; } = 2_000;

    /// <summary>PostgreSQL <c>statement_timeout</c> of every session, in milliseconds (0: none): one statement never runs longer (SQLSTATE 57014).</summary>
    [Range(0, 3_600_000)]
    public int StatementTimeoutMs { get; set; } = 10_000;

    /// <summary>
    /// PostgreSQL <c>idle_in_transaction_session_timeout</c>, in milliseconds (0: none): a session of ours that stays
    /// idle inside a transaction (a stalled process) is ended by the server and its locks freed.
    /// </summary>
    [Range(0, 3_600_000)]
    public int IdleInTransactionTimeoutMs { get; set; } = 30_000;

    /// <summary>
    /// Start even when the PostgreSQL server runs with <c>fsync = off</c>, where a crash of the server or the machine
    /// can lose forced writes (votes, commit decisions) and so break atomicity. Only for throwaway clusters.
    /// </summary>
    public bool AllowUnsafeFsyncOff { get; set; }
}

/// <summary>One local database transaction in progress.</summary>
public sealed record LocalTransaction(DbConnection Connection, DbTransaction Transaction, Dialect Dialect)
{
    /// <summary>One statement inside this transaction; the rows it touched.</summary>
    public Task<int> ExecuteAsync(string sql, object? parameters, CancellationToken cancellationToken) =>
        Connection.ExecuteAsync(new CommandDefinition(sql, parameters, Transaction, cancellationToken: cancellationToken));
}

/// <summary>
/// A service's database: opens connections, runs local transactions with the durability asked for, and hides
/// the two places where SQLite and PostgreSQL must be driven differently (write concurrency, forced commits).
/// </summary>
public sealed class Database : IAsyncDisposable
{
    private const int MaxDeadlockRetries = 5;
    private readonly NpgsqlDataSource? _postgres;

    // Same server and database, sessions started with synchronous_commit=off: for writes the protocol may
    // lose (preparing, abort, completed, refusals). A separate pool costs nothing per transaction, where
    // SET LOCAL would cost a round trip each time.
    private readonly NpgsqlDataSource? _postgresRelaxed;
    private readonly string? _sqlite;
    private readonly bool _allowFsyncOff;

    // A data source the host registered: both pools are it, our session settings are sent at open, and the host disposes it.
    private bool _external;
    private Func<bool, string>? _externalSession;

    // SQLite allows one writer at a time. Queuing writers here, instead of letting them spin on
    // SQLITE_BUSY inside the engine, keeps latency fair and predictable under concurrency.
    private readonly SemaphoreSlim _sqliteWriter = new(1, 1);
    private readonly Lazy<GroupCommit> _groupCommit;

    // The same for writes the protocol may lose (synchronous_commit off): no fsync to share, but one local
    // transaction, and set writes in one statement, for the many small writes of the same moment.
    private readonly Lazy<GroupCommit> _relaxedGroupCommit;

    private Database(Dialect dialect, NpgsqlDataSource? postgres, NpgsqlDataSource? postgresRelaxed, string? sqlite, bool allowFsyncOff)
    {
        Dialect = dialect;
        _allowFsyncOff = allowFsyncOff;
        _postgres = postgres;
        _postgresRelaxed = postgresRelaxed;
        _sqlite = sqlite;
        // One batch at a time. Two concurrent batches on PostgreSQL could lock the same hot rows in opposite
        // orders (each batch holds many orders' rows) and stall on deadlock detection; one writer never does,
        // and a batch grows while the previous one waits for its fsync, so throughput scales with load.
        _groupCommit = new Lazy<GroupCommit>(() => new GroupCommit(
            (work, ct) => WriteAsync(work, ct),
            writers: 1,
            maxBatch: 64,
            capacity: 4096));
        _relaxedGroupCommit = new Lazy<GroupCommit>(() => new GroupCommit(
            (work, ct) => WriteAsync(work, ct, forced: false),
            writers: 1,
            maxBatch: 256,
            capacity: 4096));
    }

    /// <summary>Which store this is; resource managers pick their SQL by it.</summary>
    public Dialect Dialect { get; }

    /// <summary>
    /// SQL for "now" on the database's own clock, in Unix milliseconds, for rules every process must judge by one clock
    /// whatever its own says (when a transaction is abandoned). PostgreSQL: the server's clock as the statement runs
    /// (<c>clock_timestamp()</c>, not <c>now()</c>, which is the start of the local transaction). SQLite is embedded, so
    /// its clock is the process's: <paramref name="processClock"/>, a parameter the caller fills from its TimeProvider.
    /// </summary>
    public string ClockMsSql(string processClock) =>
        Dialect == Dialect.Postgres ? "(extract(epoch FROM clock_timestamp()) * 1000)::bigint" : processClock;

    /// <summary>A readable description without secrets, for logs and the CLI.</summary>
    public string Describe() => Dialect == Dialect.Postgres
        ? $"postgres {new NpgsqlConnectionStringBuilder(_postgres!.ConnectionString).Host}/{new NpgsqlConnectionStringBuilder(_postgres.ConnectionString).Database}"
        : $"sqlite {new SqliteConnectionStringBuilder(_sqlite).DataSource}";

    /// <summary>
    /// The database <paramref name="options"/> describe. <paramref name="contentRoot"/> is what a relative SQLite path
    /// resolves against (the host's content root; null: the working directory). <paramref name="registered"/> is an
    /// <see cref="NpgsqlDataSource"/> the host owns, used when no connection string is configured; it is not disposed here.
    /// </summary>
    public static Database Create(DatabaseOptions options, string? contentRoot = null, NpgsqlDataSource? registered = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var provider = options.Provider?.Trim().ToLowerInvariant() ?? "";
        var configured = !string.IsNullOrWhiteSpace(options.ConnectionString);
        if (provider is "" && (configured || registered is not null))
        {
            provider = "postgres";
        }

        if (provider is "postgres" or "postgresql" or "npgsql")
        {
            if (!configured && registered is not null)
            {
                return new Database(Dialect.Postgres, registered, registered, null, options.AllowUnsafeFsyncOff)
                {
                    _external = true,
                    _externalSession = ExternalSessionSql(options),
                };
            }

            if (!configured)
            {
                throw new InvalidOperationException(
                    $"{DatabaseOptions.SectionName}:Provider is postgres but there is no connection: set {DatabaseOptions.SectionName}:ConnectionString or "
                    + $"ConnectionStrings:{options.ConnectionStringName}, or register an NpgsqlDataSource.");
            }

            var text = options.ConnectionString!;
            var builder = new NpgsqlConnectionStringBuilder(text);
            if (!text.Contains("Maximum Pool Size", StringComparison.OrdinalIgnoreCase)
                && !text.Contains("MaxPoolSize", StringComparison.OrdinalIgnoreCase))
            {
                builder.MaxPoolSize = options.MaxPoolSize;
            }

            // Bounded waits: a stuck database must surface as an error, not hang a request forever.
            if (builder.Timeout == 15)
            {
                builder.Timeout = 5;
            }

            // The server's statement_timeout answers first (a clean error, the session kept); Npgsql's own timeout
            // stays behind it as the last resort for a server that does not answer at all.
            if (builder.CommandTimeout == 30 && options.StatementTimeoutMs > 0)
            {
                builder.CommandTimeout = (options.StatementTimeoutMs / 1000) + 5;
            }

            // The same few statements run for every order: let Npgsql prepare them on the server.
            if (builder.MaxAutoPrepare == 0)
            {
                builder.MaxAutoPrepare = 64;
                builder.AutoPrepareMinUsages = 2;
            }

            // Npgsql's default resets every session handed back to the pool (CLOSE ALL, RESET ALL, UNLISTEN,
            // DISCARD ...: seven statements parsed and run before the next command). Profiled, that was
            // PostgreSQL's biggest single cost per order. Our sessions keep no state beyond a transaction
            // (no SET, no temp tables, no LISTEN, no advisory locks), so there is nothing to reset.
            if (!text.Contains("Reset", StringComparison.OrdinalIgnoreCase))
            {
                builder.NoResetOnClose = true;
            }

            var forced = new NpgsqlConnectionStringBuilder(builder.ConnectionString) { Options = SessionOptions(options, builder.Options, synchronousCommit: true) };
            var relaxed = new NpgsqlConnectionStringBuilder(builder.ConnectionString)
            {
                Options = SessionOptions(options, builder.Options, synchronousCommit: false),
                MaxPoolSize = Math.Max(2, builder.MaxPoolSize / 3),
            };
            return new Database(
                Dialect.Postgres,
                new NpgsqlDataSourceBuilder(forced.ConnectionString).Build(),
                new NpgsqlDataSourceBuilder(relaxed.ConnectionString).Build(),
                null,
                options.AllowUnsafeFsyncOff);
        }

        if (provider is not ("" or "sqlite"))
        {
            throw new InvalidOperationException($"{DatabaseOptions.SectionName}:Provider '{options.Provider}' is not known; use sqlite or postgres.");
        }

        var sqlite = new SqliteConnectionStringBuilder(configured ? options.ConnectionString : null)
        {
            Pooling = true,
            DefaultTimeout = 30,
        };
        if (!configured)
        {
            sqlite.DataSource = options.SqliteFile;
        }

        // One rule for every relative path the host reads: against its content root, like its configuration files.
        if (contentRoot is not null && IsRelativeFile(sqlite.DataSource))
        {
            sqlite.DataSource = Path.GetFullPath(Path.Combine(contentRoot, sqlite.DataSource));
        }
        var folder = Path.GetDirectoryName(Path.GetFullPath(sqlite.DataSource));
        if (!string.IsNullOrEmpty(folder))
        {
            Directory.CreateDirectory(folder);
        }

        return new Database(Dialect.Sqlite, null, null, sqlite.ConnectionString, allowFsyncOff: false);
    }

    private static bool IsRelativeFile(string dataSource) =>
        !string.IsNullOrEmpty(dataSource)
        && !dataSource.Equals(":memory:", StringComparison.OrdinalIgnoreCase)
        && !dataSource.StartsWith("file:", StringComparison.OrdinalIgnoreCase)
        && !Path.IsPathRooted(dataSource);

    /// <summary>
    /// A data source the host built carries its own connection settings, so ours are set on each session as it is
    /// opened (one round trip), as the session <c>Options</c> would: Npgsql's reset on return to the pool clears them
    /// again for the host's own use, unless the host turned that reset off (docs/api.md, "Configuration").
    /// </summary>
    private static Func<bool, string> ExternalSessionSql(DatabaseOptions options) => synchronousCommit =>
        "SET plan_cache_mode = force_custom_plan; "
        + $"SET lock_timeout = {Math.Max(0, options.LockTimeoutMs)}; "
        + $"SET statement_timeout = {Math.Max(0, options.StatementTimeoutMs)}; "
        + $"SET idle_in_transaction_session_timeout = {Math.Max(0, options.IdleInTransactionTimeoutMs)}; "
        + $"SET synchronous_commit = {(synchronousCommit ? "on" : "off")};";

    /// <summary>
    /// The settings every PostgreSQL session of ours starts with (connection <c>Options</c>, so no round trip). The
    /// durable pool says <c>synchronous_commit=on</c> itself: a role or database default of off must not silently make
    /// votes and commit decisions non-durable. The operator's own <c>Options</c> come after ours and win, except that one.
    /// </summary>
    private static string SessionOptions(DatabaseOptions options, string? own, bool synchronousCommit)
    {
        var parts = new List<string>
        {
            // Npgsql prepares the hot statements on the server, and PostgreSQL then keeps one generic plan per
            // statement until something invalidates it (an ANALYZE). Made while a table is still nearly empty,
            // the generic plan is a sequential scan, and it stayed one while the table grew for a minute, until
            // autovacuum's next visit (measured: 600 buffers per call for the completed mark). Running ANALYZE
            // after creating the schema would not help: an analyzed empty table is trusted to be empty, where a
            // never-analyzed one is assumed to have 10 pages. So every execution gets a plan for the table as it
            // is now (custom plans: a sequential scan of a two-page table, the index once it has grown), at the
            // price of planning each statement. This replaces enable_seqscan=off, which forbade the plan for
            // every query of the session instead of fixing how the plan was chosen.
            "-c plan_cache_mode=force_custom_plan",
            $"-c lock_timeout={Math.Max(0, options.LockTimeoutMs)}",
            $"-c statement_timeout={Math.Max(0, options.StatementTimeoutMs)}",
            $"-c idle_in_transaction_session_timeout={Math.Max(0, options.IdleInTransactionTimeoutMs)}",
        };
        if (!string.IsNullOrWhiteSpace(own))
        {
            parts.Add(own.Trim());
        }

        parts.Add(synchronousCommit ? "-c synchronous_commit=on" : "-c synchronous_commit=off");
        return string.Join(' ', parts);
    }

    /// <summary>
    /// Checks, once at start-up, that the server keeps what the protocol forces: PostgreSQL with <c>fsync = off</c> is
    /// refused unless <see cref="DatabaseOptions.AllowUnsafeFsyncOff"/> says so. Returns a warning to log when it was
    /// allowed, else null. SQLite: nothing to check (its durability is set per connection by us).
    /// </summary>
    public async Task<string?> VerifyAsync(CancellationToken cancellationToken)
    {
        if (_postgres is null)
        {
            return null;
        }

        await using var connection = await OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT current_setting('fsync'), current_setting('synchronous_commit')";
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        var (fsync, synchronousCommit) = (reader.GetString(0), reader.GetString(1));
        if (synchronousCommit == "off")
        {
            // Cannot happen with our session options; if it does, something rewrote them, and nothing forced is durable.
            throw new InvalidOperationException($"PostgreSQL ({Describe()}): the durable pool's sessions run with synchronous_commit=off; refusing to start.");
        }

        if (fsync == "on")
        {
            return null;
        }

        var risk = $"PostgreSQL ({Describe()}) runs with fsync=off: a crash of the server or the machine can lose votes and commit decisions it reported durable, and break atomicity.";
        return _allowFsyncOff
            ? $"{risk} Allowed by {DatabaseOptions.SectionName}:AllowUnsafeFsyncOff."
            : throw new InvalidOperationException($"{risk} Turn fsync on (postgresql.conf), or set {DatabaseOptions.SectionName}:AllowUnsafeFsyncOff=true (TwoPhase__Database__AllowUnsafeFsyncOff) to run anyway, on a throwaway cluster only.");
    }

    /// <summary>An open connection for the caller's own reads and writes outside the ledger; the caller disposes it.</summary>
    public Task<DbConnection> OpenAsync(CancellationToken cancellationToken) => OpenAsync(forced: true, cancellationToken);

    private async Task<DbConnection> OpenAsync(bool forced, CancellationToken cancellationToken)
    {
        if (_postgres is not null)
        {
            var session = await (forced ? _postgres : _postgresRelaxed!).OpenConnectionAsync(cancellationToken);
            if (_externalSession is not null)
            {
                try
                {
                    await using var set = session.CreateCommand();
                    set.CommandText = _externalSession(forced);
                    await set.ExecuteNonQueryAsync(cancellationToken);
                }
                catch
                {
                    await session.DisposeAsync();
                    throw;
                }
            }

            return session;
        }

        var connection = new SqliteConnection(_sqlite);
        await connection.OpenAsync(cancellationToken);
        await using var pragma = connection.CreateCommand();
        // WAL lets readers run beside the writer. synchronous=FULL fsyncs the WAL at every commit, so a forced
        // write (a vote yes, a commit decision) survives power loss too; NORMAL leaves the fsync to the next
        // checkpoint, which still survives kill -9 (the WAL is in the OS's cache) and is enough for the rest.
        pragma.CommandText = $"PRAGMA journal_mode=WAL; PRAGMA synchronous={(forced ? "FULL" : "NORMAL")}; PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON;";
        await pragma.ExecuteNonQueryAsync(cancellationToken);
        return connection;
    }

    /// <summary>Run <paramref name="work"/> on a connection without a transaction (reads).</summary>
    public async Task<T> ReadAsync<T>(Func<DbConnection, Task<T>> work, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        return await work(connection);
    }

    /// <summary>
    /// Run <paramref name="work"/> in one local transaction and commit it. With <paramref name="forced"/> false
    /// the commit may return before it is on disk (PostgreSQL <c>synchronous_commit = off</c>): only for writes
    /// whose loss the protocol tolerates. A PostgreSQL deadlock or serialization failure reruns the work.
    /// </summary>
    public Task<T> WriteAsync<T>(Func<LocalTransaction, Task<T>> work, CancellationToken cancellationToken, bool forced) =>
        AsWriterAsync(() => RunOnceAsync(work, forced, cancellationToken), cancellationToken);

    /// <summary>A forced write: <see cref="WriteAsync{T}(Func{LocalTransaction, Task{T}}, CancellationToken, bool)"/> with forced true.</summary>
    public Task<T> WriteAsync<T>(Func<LocalTransaction, Task<T>> work, CancellationToken cancellationToken) =>
        WriteAsync(work, cancellationToken, forced: true);

    /// <summary>
    /// A forced write that shares its local transaction, and so its commit and fsync, with other writes queued
    /// at the same moment (<see cref="GroupCommit"/>). <paramref name="work"/> must change nothing when it decides
    /// not to act, and must not depend on running alone. Its result is returned only once the batch is durable.
    /// </summary>
    public Task<T> WriteBatchedAsync<T>(Func<LocalTransaction, Task<T>> work, CancellationToken cancellationToken) =>
        _groupCommit.Value.WriteAsync(work, cancellationToken);

    /// <summary>For tests: the next forced group-commit batch waits until <paramref name="units"/> writes are queued (bounded).</summary>
    internal void HoldNextBatchUntil(int units, TimeSpan bound) => _groupCommit.Value.HoldNextBatchUntil(units, bound);

    /// <summary>
    /// A write of a kind many callers make at once (<see cref="SetWrite{TItem, TResult}"/>): it joins the group commit,
    /// and the batch runs all items of its kind in one call. With <paramref name="forced"/> false it joins the group of
    /// writes the protocol may lose instead (not fsynced).
    /// </summary>
    public Task<TResult> WriteBatchedAsync<TItem, TResult>(SetWrite<TItem, TResult> kind, TItem item, CancellationToken cancellationToken, bool forced = true) =>
        (forced ? _groupCommit : _relaxedGroupCommit).Value.WriteAsync(kind, item, cancellationToken);

    /// <summary>A forced write whose only result is done.</summary>
    public Task WriteAsync(Func<LocalTransaction, Task> work, CancellationToken cancellationToken) =>
        WriteAsync(work, cancellationToken, forced: true);

    /// <summary>A write whose only result is done; <paramref name="forced"/> as for the write with a result.</summary>
    public Task WriteAsync(Func<LocalTransaction, Task> work, CancellationToken cancellationToken, bool forced) =>
        WriteAsync(
            async tx =>
            {
                await work(tx);
                return true;
            },
            cancellationToken,
            forced);

    private async Task<T> RunOnceAsync<T>(Func<LocalTransaction, Task<T>> work, bool forced, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(forced, cancellationToken);
        // Microsoft.Data.Sqlite begins IMMEDIATE by default: the write lock is taken up front, so two
        // writers never deadlock upgrading from a read lock.
        await using var transaction = await connection.BeginTransactionAsync(IsolationLevel.ReadCommitted, cancellationToken);
        var result = await work(new LocalTransaction(connection, transaction, Dialect));
        await transaction.CommitAsync(cancellationToken);
        return result;
    }

    /// <summary>
    /// Run one statement on its own (autocommit: one round trip instead of three). Use it only where a single
    /// statement is the whole local transaction. <paramref name="forced"/> as for <see cref="WriteAsync{T}(Func{LocalTransaction, Task{T}}, CancellationToken, bool)"/>.
    /// </summary>
    public Task<T> ExecuteAsync<T>(Func<DbConnection, Task<T>> statement, CancellationToken cancellationToken, bool forced = true) =>
        AsWriterAsync(
            async () =>
            {
                await using var connection = await OpenAsync(forced, cancellationToken);
                return await statement(connection);
            },
            cancellationToken);

    /// <summary>
    /// The one place write concurrency differs: SQLite writers queue on the in-process gate; PostgreSQL writers
    /// run at once and rerun (bounded) when the server picks them as a deadlock or serialization victim.
    /// </summary>
    private async Task<T> AsWriterAsync<T>(Func<Task<T>> write, CancellationToken cancellationToken)
    {
        if (Dialect == Dialect.Sqlite)
        {
            await _sqliteWriter.WaitAsync(cancellationToken);
            try
            {
                return await write();
            }
            finally
            {
                _sqliteWriter.Release();
            }
        }

        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await write();
            }
            catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure && attempt < MaxDeadlockRetries)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(1, 10 * attempt)), cancellationToken);
            }
        }
    }

    /// <summary>Run a schema script (idempotent DDL).</summary>
    public async Task ExecuteScriptAsync(string sql, CancellationToken cancellationToken)
    {
        await WriteAsync(
            async tx =>
            {
                await using var command = tx.Connection.CreateCommand();
                command.Transaction = tx.Transaction;
                command.CommandText = sql;
                await command.ExecuteNonQueryAsync(cancellationToken);
            },
            cancellationToken);
    }

    /// <summary>Whether the database answers at all (readiness).</summary>
    public async Task<bool> PingAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await OpenAsync(cancellationToken);
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT 1";
            await command.ExecuteScalarAsync(cancellationToken);
            return true;
        }
        catch (Exception e) when (e is DbException or TimeoutException or InvalidOperationException or IOException)
        {
            return false;
        }
    }

    /// <summary>Stops the group-commit writers and closes the connection pool.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var group in new[] { _groupCommit, _relaxedGroupCommit })
        {
            if (group.IsValueCreated)
            {
                await group.Value.DisposeAsync();
            }
        }

        if (_postgres is not null && !_external)
        {
            await _postgres.DisposeAsync();
            await _postgresRelaxed!.DisposeAsync();
        }

        if (_sqlite is not null)
        {
            SqliteConnection.ClearAllPools();
        }

        _sqliteWriter.Dispose();
    }
}

/// <summary>Milliseconds since the epoch: the one time format in every table, the same on both stores.</summary>
internal static class UnixMs
{
    public static long From(DateTimeOffset time) => time.ToUnixTimeMilliseconds();

    public static DateTimeOffset To(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    public static DateTimeOffset? To(long? ms) => ms is null ? null : DateTimeOffset.FromUnixTimeMilliseconds(ms.Value);
}
