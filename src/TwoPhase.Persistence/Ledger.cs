using System.Data.Common;
using Dapper;
using TwoPhase.Protocol;

namespace TwoPhase.Persistence;

/// <summary>What the domain did with a PREPARE.</summary>
/// <param name="Reserved">True when everything asked for is now held.</param>
/// <param name="Holding">What is held, as JSON the domain reads back at commit or abort (and operators read).</param>
/// <param name="Reason">Why not, when refused.</param>
public sealed record Reservation(bool Reserved, string? Holding, string? Reason)
{
    /// <summary>Everything asked for is held; <paramref name="holding"/> is read back at commit or abort.</summary>
    public static Reservation Held(string holding) => new(true, holding, null);

    /// <summary>Not held: the participant votes no with <paramref name="reason"/>, and nothing may have changed.</summary>
    public static Reservation Refused(string reason) => new(false, null, reason);
}

/// <summary>
/// Thrown by <see cref="IResourceManager.ReserveAsync"/> for a payload it cannot act on (a missing or malformed field), and
/// only before it changed anything: that PREPARE alone is answered as invalid (a NO vote with this reason; 422 from its own
/// endpoint), the others sharing its local transaction go on, and no ledger row is written (the coordinator's ABORT leaves
/// the tombstone). Any other exception fails the whole local transaction, and with it every PREPARE of the group commit.
/// </summary>
/// <param name="path">The offending field of the payload, as a JSON path without <c>$.</c> (<c>items[0].quantity</c>).</param>
/// <param name="reason">What is wrong with it.</param>
public sealed class InvalidPayloadException(string path, string reason) : Exception($"{path}: {reason}")
{
    /// <summary>The offending field of the payload.</summary>
    public string Field => path;

    /// <summary>What is wrong with it.</summary>
    public string Reason => reason;
}

/// <summary>
/// The domain half of a participant: reserve, make final, release. Every method runs inside the local
/// transaction that also writes the ledger row, so the business change and the vote commit together.
/// </summary>
public interface IResourceManager
{
    /// <summary>
    /// Hold what <paramref name="payload"/> asks for with conditional updates (never read-then-write), or refuse.
    /// A refusal must leave nothing changed (undo what was taken before refusing): the local transaction is
    /// shared with other PREPAREs (group commit) and is not rolled back for one refusal. A payload it cannot read: throw
    /// <see cref="InvalidPayloadException"/> before changing anything.
    /// </summary>
    Task<Reservation> ReserveAsync(LocalTransaction tx, string transactionId, string payload, CancellationToken cancellationToken);

    /// <summary>Make the held reservation final.</summary>
    Task CommitAsync(LocalTransaction tx, string transactionId, string? holding, CancellationToken cancellationToken);

    /// <summary>Give back what is held.</summary>
    Task ReleaseAsync(LocalTransaction tx, string transactionId, string? holding, CancellationToken cancellationToken);

    /// <summary>
    /// <see cref="CommitAsync"/> for many transactions at once (each once), in the shared local transaction of a group
    /// commit on PostgreSQL (on SQLite each is committed alone). Override it with set-oriented statements: each
    /// statement is a round trip. By default, one by one.
    /// </summary>
    async Task CommitManyAsync(LocalTransaction tx, IReadOnlyList<LedgerEntry> held, CancellationToken cancellationToken)
    {
        foreach (var entry in held)
        {
            await CommitAsync(tx, entry.TransactionId, entry.Holding, cancellationToken);
        }
    }

    /// <summary><see cref="ReleaseAsync"/> for many transactions at once (each once); as <see cref="CommitManyAsync"/>.</summary>
    async Task ReleaseManyAsync(LocalTransaction tx, IReadOnlyList<LedgerEntry> held, CancellationToken cancellationToken)
    {
        foreach (var entry in held)
        {
            await ReleaseAsync(tx, entry.TransactionId, entry.Holding, cancellationToken);
        }
    }

    /// <summary>Idempotent DDL for the domain's tables.</summary>
    string Schema(Dialect dialect);
}

/// <summary>The ledger table's SQL.</summary>
internal static class LedgerSql
{
    public const string Schema = """
        CREATE TABLE IF NOT EXISTS tp_ledger (
            tx_id          TEXT PRIMARY KEY,
            state          TEXT NOT NULL,
            reason         TEXT NULL,
            holding        TEXT NULL,
            created_ms     BIGINT NOT NULL,
            updated_ms     BIGINT NOT NULL,
            checks         INTEGER NOT NULL DEFAULT 0,
            next_check_ms  BIGINT NULL,
            coordinator_group TEXT NULL,
            coordinator_url   TEXT NULL
        );
        CREATE INDEX IF NOT EXISTS tp_ledger_prepared ON tp_ledger (created_ms) WHERE state = 'prepared';
        """;

    /// <summary>
    /// Columns added after the first release, for ledgers created before them (<see cref="MigrateAsync"/>): the coordinator
    /// group a PREPARE named and where it answers (docs/protocol.md, "Coordinator groups"). Older rows keep null: they ask
    /// the configured coordinator, as they did.
    /// </summary>
    public static readonly (string Name, string Definition)[] AddedColumns =
    [
        ("coordinator_group", "TEXT NULL"),
        ("coordinator_url", "TEXT NULL"),
    ];

    public const string Columns = "tx_id, state, reason, holding, created_ms, updated_ms, checks, next_check_ms, coordinator_group, coordinator_url";

    /// <summary>Adds <see cref="AddedColumns"/> where missing; idempotent, run at start after the schema.</summary>
    public static Task MigrateAsync(Database db, CancellationToken cancellationToken) =>
        db.WriteAsync(
            async tx =>
            {
                // PostgreSQL says IF NOT EXISTS itself; SQLite cannot, so look first, inside the write lock that
                // serialises two replicas starting on one file.
                var existing = tx.Dialect == Dialect.Postgres
                    ? []
                    : (await tx.Connection.QueryAsync<string>(new CommandDefinition("SELECT name FROM pragma_table_info('tp_ledger')", transaction: tx.Transaction, cancellationToken: cancellationToken))).ToHashSet(StringComparer.OrdinalIgnoreCase);
                foreach (var (name, definition) in AddedColumns.Where(c => !existing.Contains(c.Name)))
                {
                    var ifMissing = tx.Dialect == Dialect.Postgres ? "IF NOT EXISTS " : "";
                    await tx.Connection.ExecuteAsync(new CommandDefinition($"ALTER TABLE tp_ledger ADD COLUMN {ifMissing}{name} {definition}", transaction: tx.Transaction, cancellationToken: cancellationToken));
                }
            },
            cancellationToken);

    /// <summary>The row as this local transaction sees it. No lock: decisions lock the row with their conditional UPDATE.</summary>
    public static Task<LedgerEntry?> FindAsync(LocalTransaction tx, string id, CancellationToken cancellationToken) =>
        QuerySingleAsync(tx.Connection, new CommandDefinition(
            $"SELECT {Columns} FROM tp_ledger WHERE tx_id = @Id",
            new { Id = id },
            tx.Transaction,
            cancellationToken: cancellationToken));

    /// <summary>Ledger rows a query selects with <see cref="Columns"/>.</summary>
    internal static async Task<IReadOnlyList<LedgerEntry>> QueryAsync(DbConnection connection, CommandDefinition command) =>
        (await connection.QueryAsync<EntryColumns>(command)).Select(c => c.ToEntry()).ToList();

    /// <summary>The one ledger row a query selects with <see cref="Columns"/>, if any.</summary>
    internal static async Task<LedgerEntry?> QuerySingleAsync(DbConnection connection, CommandDefinition command) =>
        (await connection.QuerySingleOrDefaultAsync<EntryColumns>(command))?.ToEntry();

    /// <summary>A <see cref="LedgerEntry"/> as its columns come from the database (integers differ by store), for Dapper only.</summary>
    private sealed class EntryColumns
    {
        public string tx_id { get; set; } = "";
        public string state { get; set; } = "";
        public string? reason { get; set; }
        public string? holding { get; set; }
        public long created_ms { get; set; }
        public long updated_ms { get; set; }
        public long checks { get; set; }
        public long? next_check_ms { get; set; }
        public string? coordinator_group { get; set; }
        public string? coordinator_url { get; set; }

        public LedgerEntry ToEntry() => new(
            tx_id, StateNames.ParseLedgerState(state), reason, holding, UnixMs.To(created_ms), UnixMs.To(updated_ms), (int)checks, UnixMs.To(next_check_ms))
        {
            CoordinatorGroup = coordinator_group,
            CoordinatorUrl = coordinator_url,
        };
    }
}
