using System.Text.Json;
using Dapper;
using TwoPhase.Protocol;

namespace TwoPhase.Persistence;

/// <summary>
/// The coordinator's decision log in one table, <c>tp_transactions</c>, on either store. Several coordinator replicas
/// may share one (on PostgreSQL), each with its own <c>replicaId</c>: the log records the replica that began, decided
/// or claimed a transaction as its owner, and recovery's claims divide the due transactions among them (docs/recovery.md,
/// "Replicas and leases").
/// </summary>
public sealed class SqlDecisionLog : IDecisionLog
{
    private readonly Database db;
    private readonly TimeProvider time;
    private readonly string replicaId;

    /// <summary>A log for this process alone, or the only replica: its replica id is <see cref="DefaultReplicaId"/>.</summary>
    public SqlDecisionLog(Database db, TimeProvider time)
        : this(db, time, DefaultReplicaId)
    {
    }

    /// <summary>A log for the replica <paramref name="replicaId"/> (1 to 200 characters) of coordinators sharing one database.</summary>
    public SqlDecisionLog(Database db, TimeProvider time, string replicaId)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentException.ThrowIfNullOrWhiteSpace(replicaId);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(replicaId.Length, MaxReplicaIdLength, nameof(replicaId));
        this.db = db;
        this.time = time;
        this.replicaId = replicaId;
    }

    /// <summary>The longest replica id the log takes.</summary>
    public const int MaxReplicaIdLength = 200;

    /// <summary>This machine's name and this process's id: unique among the replicas of one deployment.</summary>
    public static string DefaultReplicaId => $"{Environment.MachineName}-{Environment.ProcessId}";

    /// <summary>The replica this log writes as the owner of what it begins, decides and claims.</summary>
    public string ReplicaId => replicaId;

    // The kinds of set write this log joins the group commits with (created on first use).
    private SetWrite<BeginItem, bool>? _begins;
    private SetWrite<DecisionItem, Row?>? _decisions;
    private SetWrite<string, bool>? _completions;

    internal const string Schema = """
        CREATE TABLE IF NOT EXISTS tp_transactions (
            tx_id            TEXT PRIMARY KEY,
            state            TEXT NOT NULL,
            participants     TEXT NOT NULL,
            acknowledged     TEXT NOT NULL DEFAULT '[]',
            votes            TEXT NOT NULL DEFAULT '[]',
            reason           TEXT NULL,
            payload          TEXT NOT NULL DEFAULT '',
            payloads         TEXT NULL,
            metadata         TEXT NULL,
            idempotency_key  TEXT NULL UNIQUE,
            request_hash     TEXT NULL,
            created_ms       BIGINT NOT NULL,
            deadline_ms      BIGINT NOT NULL,
            decided_ms       BIGINT NULL,
            completed_ms     BIGINT NULL,
            attempts         INTEGER NOT NULL DEFAULT 0,
            next_attempt_ms  BIGINT NULL,
            abandon_ms       BIGINT NULL,
            conflicts        TEXT NOT NULL DEFAULT '[]',
            settled_ms       BIGINT NULL
        );
        CREATE INDEX IF NOT EXISTS tp_transactions_unfinished ON tp_transactions (created_ms) WHERE completed_ms IS NULL;
        """;

    /// <summary>
    /// Columns added after the first release, for databases created before them (CREATE TABLE IF NOT EXISTS leaves an
    /// existing table as it is). <c>abandon_ms</c>: the abandon moment on the database's clock (null on old rows: their
    /// deadline stands in). <c>conflicts</c>: participants that refused the decision. <c>settled_ms</c>: when everyone had
    /// acknowledged or refused, so recovery stopped re-driving. <c>payloads</c>: each participant's own PREPARE body, a JSON
    /// object of name to body; null on rows written before it, whose one <c>payload</c> went to every participant and is
    /// read so (see <see cref="Row.ToRecord()"/>). <c>metadata</c>: the caller's own JSON, sent to nobody. <c>owner</c>: the
    /// replica that last began, decided or claimed the transaction; it holds it until <c>next_attempt_ms</c> (a preparing
    /// one until <c>abandon_ms</c>), both on the database's clock.
    /// </summary>
    private static readonly (string Name, string Definition)[] AddedColumns =
    [
        ("abandon_ms", "BIGINT NULL"),
        ("conflicts", "TEXT NOT NULL DEFAULT '[]'"),
        ("settled_ms", "BIGINT NULL"),
        ("payloads", "TEXT NULL"),
        ("metadata", "TEXT NULL"),
        ("owner", "TEXT NULL"),
    ];

    private const string Columns = "tx_id, state, participants, acknowledged, votes, reason, payload, payloads, metadata, idempotency_key, request_hash, created_ms, deadline_ms, decided_ms, completed_ms, attempts, next_attempt_ms, conflicts, settled_ms, owner";

    // A transaction is abandoned from this moment on, judged by the database's clock (see IDecisionLog.BeginAsync).
    private static string AbandonMs(string table = "") => $"COALESCE({table}abandon_ms, {table}deadline_ms)";

    /// <summary>The database's clock in SQL; on SQLite the <c>@Clock</c> parameter, filled from the injected clock.</summary>
    private string Clock => db.ClockMsSql("@Clock");

    /// <summary>Creates the decision log's table and indexes if missing; idempotent, run at start.</summary>
    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        await db.ExecuteScriptAsync(Schema, cancellationToken);
        await db.WriteAsync(
            async tx =>
            {
                // PostgreSQL says IF NOT EXISTS itself; SQLite cannot, so look first, inside the write lock that
                // serialises two services starting on one file.
                var existing = tx.Dialect == Dialect.Postgres
                    ? []
                    : (await tx.Connection.QueryAsync<string>(new CommandDefinition("SELECT name FROM pragma_table_info('tp_transactions')", transaction: tx.Transaction, cancellationToken: cancellationToken))).ToHashSet(StringComparer.OrdinalIgnoreCase);
                foreach (var (name, definition) in AddedColumns.Where(c => !existing.Contains(c.Name)))
                {
                    var ifMissing = tx.Dialect == Dialect.Postgres ? "IF NOT EXISTS " : "";
                    await tx.Connection.ExecuteAsync(new CommandDefinition($"ALTER TABLE tp_transactions ADD COLUMN {ifMissing}{name} {definition}", transaction: tx.Transaction, cancellationToken: cancellationToken));
                }
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public async Task<(TransactionRecord Record, bool Created)> BeginAsync(TransactionRequest request, DateTimeOffset deadline, DateTimeOffset abandonAt, CancellationToken cancellationToken)
    {
        var now = UnixMs.From(time.GetUtcNow());
        var participants = JsonSerializer.Serialize(request.Participants.Select(p => p.Name).ToArray(), PersistenceJson.Default.StringArray);
        // Preparing need not be forced (DESIGN §2): if it is lost, so is the transaction, and presumed
        // abort answers "aborted" to any participant that prepared for it.
        // The begins of the moment share one local transaction and one INSERT (relaxed group commit).
        var payloads = JsonSerializer.Serialize(request.Payloads.ToDictionary(StringComparer.Ordinal), PersistenceJson.Default.Payloads);
        var item = new BeginItem(request.Id, participants, payloads, request.Metadata, request.IdempotencyKey, request.RequestHash, now, UnixMs.From(deadline), UnixMs.From(abandonAt));
        var inserted = await db.WriteBatchedAsync(_begins ??= new SetWrite<BeginItem, bool>(BeginOneAsync, BeginAllAsync), item, cancellationToken, forced: false);
        if (inserted)
        {
            var record = new TransactionRecord(
                request.Id, TransactionState.Preparing, request.Participants.Select(p => p.Name).ToArray(), [], [], null, request.Payloads,
                request.IdempotencyKey, request.RequestHash, UnixMs.To(now), deadline, null, null, 0, null) { Metadata = request.Metadata, Owner = replicaId };
            return (record, true);
        }

        var existing = (request.IdempotencyKey is null ? null : await FindByIdempotencyKeyAsync(request.IdempotencyKey, cancellationToken))
            ?? await FindAsync(request.Id, cancellationToken)
            ?? throw new InvalidOperationException($"Transaction {request.Id} conflicted on insert but cannot be found.");
        return (existing, false);
    }

    private sealed record BeginItem(string Id, string Participants, string Payloads, string? Metadata, string? Key, string? Hash, long Now, long Deadline, long AbandonAt);

    // The old one-for-all payload column gets '' on new rows: NOT NULL, without a default on databases created before
    // payloads were per participant; payloads (not null) is what tells a new row from an old one.
    private const string BeginColumns = "tx_id, state, participants, payload, payloads, metadata, idempotency_key, request_hash, created_ms, deadline_ms, abandon_ms, owner";

    /// <summary>
    /// How far from now, on the process's clock, the abandon moment is, taken when the write runs: the database records
    /// the same distance from its own clock. On SQLite the two clocks are one, and the moment is recorded as given.
    /// </summary>
    private (long Clock, long AbandonIn) AbandonFromNow(long abandonAt)
    {
        var clock = UnixMs.From(time.GetUtcNow());
        return (clock, abandonAt - clock);
    }

    /// <summary>
    /// How far from now, on the process's clock, a moment is (a next attempt, an abandon moment), for the database to
    /// record the same distance from its own clock: replicas whose clocks disagree still agree on the leases.
    /// </summary>
    private long FromNow(long at) => at - UnixMs.From(time.GetUtcNow());

    /// <summary>One begin: true when its row was inserted, false when its id or idempotency key was already taken.</summary>
    private async Task<bool> BeginOneAsync(LocalTransaction tx, BeginItem item)
    {
        var (clock, abandonIn) = AbandonFromNow(item.AbandonAt);
        return await tx.Connection.ExecuteAsync(new CommandDefinition(
            $"INSERT INTO tp_transactions ({BeginColumns}) VALUES (@Id, 'preparing', @Participants, '', @Payloads, @Metadata, @Key, @Hash, @Now, @Deadline, {Clock} + @AbandonIn, @Owner) ON CONFLICT DO NOTHING",
            new { item.Id, item.Participants, item.Payloads, item.Metadata, item.Key, item.Hash, item.Now, item.Deadline, Clock = clock, AbandonIn = abandonIn, Owner = replicaId },
            tx.Transaction)) == 1;
    }

    /// <summary>The begins of one batch, on PostgreSQL: one INSERT for all; as <see cref="BeginOneAsync"/> for each (a repeat of an id here is taken).</summary>
    private async Task<IReadOnlyList<bool>> BeginAllAsync(LocalTransaction tx, IReadOnlyList<BeginItem> items)
    {
        var inserted = (await tx.Connection.QueryAsync<string>(new CommandDefinition(
            $"""
            INSERT INTO tp_transactions ({BeginColumns})
            SELECT u.id, 'preparing', u.participants, '', u.payloads, u.metadata, u.key, u.hash, u.now, u.deadline, {Clock} + u.abandon_in, @Owner
            FROM unnest(@Ids, @Participants, @Payloads, @Metadatas, @Keys, @Hashes, @Nows, @Deadlines, @AbandonIns) AS u(id, participants, payloads, metadata, key, hash, now, deadline, abandon_in)
            ON CONFLICT DO NOTHING RETURNING tx_id
            """,
            new
            {
                Ids = items.Select(i => i.Id).ToArray(),
                Participants = items.Select(i => i.Participants).ToArray(),
                Payloads = items.Select(i => i.Payloads).ToArray(),
                Metadatas = items.Select(i => i.Metadata).ToArray(),
                Keys = items.Select(i => i.Key).ToArray(),
                Hashes = items.Select(i => i.Hash).ToArray(),
                Nows = items.Select(i => i.Now).ToArray(),
                Deadlines = items.Select(i => i.Deadline).ToArray(),
                AbandonIns = items.Select(i => AbandonFromNow(i.AbandonAt).AbandonIn).ToArray(),
                Clock = UnixMs.From(time.GetUtcNow()),
                Owner = replicaId,
            },
            tx.Transaction))).ToHashSet(StringComparer.Ordinal);

        // The same id twice in one batch: only the first was inserted.
        var claimed = new HashSet<string>(StringComparer.Ordinal);
        return items.Select(i => inserted.Contains(i.Id) && claimed.Add(i.Id)).ToList();
    }

    /// <inheritdoc />
    public async Task<TransactionRecord> DecideAsync(string id, Decision decision, string? reason, IReadOnlyList<Vote> votes, DateTimeOffset nextAttemptAt, Durability abortDurability, CancellationToken cancellationToken)
    {
        var state = decision == Decision.Commit ? TransactionState.Committed : TransactionState.Aborted;
        var item = new DecisionItem(id, state.ToWire(), reason, JsonSerializer.Serialize(votes.ToArray(), PersistenceJson.Default.VoteArray), UnixMs.From(nextAttemptAt));
        var row = decision == Decision.Commit || abortDurability == Durability.Forced
            // The commit point must be on disk before any COMMIT leaves, and so must an abort that ABORTs or a client's
            // answer follow. Concurrent forced decisions share one local transaction and its fsync (group commit),
            // and one UPDATE for all of them.
            ? await db.WriteBatchedAsync(_decisions ??= new SetWrite<DecisionItem, Row?>((tx, item) => DecideOneAsync(tx.Connection, tx.Transaction, item), DecideAllAsync), item, cancellationToken)
            // The live coordinator's own abort may be lost (presumed abort): not forced.
            : await db.ExecuteAsync(c => DecideOneAsync(c, null, item), cancellationToken, forced: false);
        if (row is not null)
        {
            return row.ToRecord();
        }

        // Someone decided first (recovery past the deadline, or a duplicate), and that decision stands; or this is a
        // commit refused because the transaction is abandoned, and it is returned still preparing.
        return await FindAsync(id, cancellationToken)
            ?? throw new InvalidOperationException($"Transaction {id} is not in the decision log.");
    }

    /// <summary>A decision to write: only a transaction still preparing takes it.</summary>
    private sealed record DecisionItem(string Id, string State, string? Reason, string Votes, long Next);

    // Only a transaction still preparing takes a decision; a commit only before its abandon moment, on the database's
    // clock at the moment the statement runs (the same clock FindAbandonedAsync reads), so that a commit and
    // recovery's abort are never both possible, even if an abort were lost.
    private string DecideCondition(string table, string state) =>
        $"{table}state = 'preparing' AND ({state} <> 'committed' OR {AbandonMs(table)} > {Clock})";

    private Task<Row?> DecideOneAsync(System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction? transaction, DecisionItem item) =>
        connection.QuerySingleOrDefaultAsync<Row>(new CommandDefinition(
            $"""
            UPDATE tp_transactions
            SET state = @State, reason = @Reason, votes = @Votes, decided_ms = @Now, next_attempt_ms = {Clock} + @NextIn, owner = @Owner
            WHERE tx_id = @Id AND {DecideCondition("", "@State")}
            RETURNING {Columns}
            """,
            new { item.Id, item.State, item.Reason, item.Votes, Now = UnixMs.From(time.GetUtcNow()), NextIn = FromNow(item.Next), Clock = UnixMs.From(time.GetUtcNow()), Owner = replicaId },
            transaction));

    /// <summary>
    /// The decisions of one group commit, on PostgreSQL: one UPDATE for all (one round trip). A transaction no longer
    /// preparing (or a commit past its abandon moment) is left as it is, and its item gets null.
    /// </summary>
    private async Task<IReadOnlyList<Row?>> DecideAllAsync(LocalTransaction tx, IReadOnlyList<DecisionItem> items)
    {
        // The same id twice (a duplicate decision) updates the row once; both items get the row.
        var rows = (await tx.Connection.QueryAsync<Row>(new CommandDefinition(
            $"""
            UPDATE tp_transactions t
            SET state = u.state, reason = u.reason, votes = u.votes, decided_ms = @Now, next_attempt_ms = {Clock} + u.next_in, owner = @Owner
            FROM unnest(@Ids, @States, @Reasons, @Votes, @NextIns) AS u(id, state, reason, votes, next_in)
            WHERE t.tx_id = u.id AND {DecideCondition("t.", "u.state")}
            RETURNING {string.Join(", ", Columns.Split(", ").Select(c => "t." + c))}
            """,
            new
            {
                Ids = items.Select(i => i.Id).ToArray(),
                States = items.Select(i => i.State).ToArray(),
                Reasons = items.Select(i => i.Reason).ToArray(),
                Votes = items.Select(i => i.Votes).ToArray(),
                NextIns = items.Select(i => FromNow(i.Next)).ToArray(),
                Now = UnixMs.From(time.GetUtcNow()),
                Clock = UnixMs.From(time.GetUtcNow()),
                Owner = replicaId,
            },
            tx.Transaction))).ToDictionary(r => r.tx_id, StringComparer.Ordinal);
        return items.Select(i => rows.GetValueOrDefault(i.Id)).ToList();
    }

    /// <inheritdoc />
    public Task AcknowledgeAsync(string id, IReadOnlyCollection<string> acknowledged, bool complete, CancellationToken cancellationToken) =>
        complete
            // Losing "completed" only costs one more, idempotent, phase-2 round after a crash: not forced, and the
            // completions of the moment share one local transaction and one UPDATE.
            ? db.WriteBatchedAsync(_completions ??= new SetWrite<string, bool>(CompleteOneAsync, CompleteAllAsync), id, cancellationToken, forced: false)
            : MergeAsync(id, acknowledged, [], settled: false, forced: false, cancellationToken);

    // A refusal is rare and is what an operator must see: forced (a lost one would only be found again by the next round).
    /// <inheritdoc />
    public Task RecordConflictsAsync(string id, IReadOnlyCollection<string> acknowledged, IReadOnlyCollection<string> conflicts, bool settled, CancellationToken cancellationToken) =>
        MergeAsync(id, acknowledged, conflicts, settled, forced: true, cancellationToken);

    /// <summary>
    /// Add to the acknowledged and refused lists of a transaction not completed; the lists only grow, so two phase-2
    /// rounds racing (the live one and recovery's, or two replicas) never take back what the other recorded.
    /// Read and write in one local transaction, the row locked on PostgreSQL; SQLite's writer holds the whole database.
    /// </summary>
    private Task MergeAsync(string id, IReadOnlyCollection<string> acknowledged, IReadOnlyCollection<string> conflicts, bool settled, bool forced, CancellationToken cancellationToken) =>
        db.WriteAsync(
            async tx =>
            {
                var lockRow = tx.Dialect == Dialect.Postgres ? " FOR UPDATE" : "";
                var current = await tx.Connection.QuerySingleOrDefaultAsync<Row>(new CommandDefinition(
                    $"SELECT {Columns} FROM tp_transactions WHERE tx_id = @Id AND completed_ms IS NULL{lockRow}", new { Id = id }, tx.Transaction, cancellationToken: cancellationToken));
                if (current is null)
                {
                    return;
                }

                var record = current.ToRecord();
                await tx.Connection.ExecuteAsync(new CommandDefinition(
                    "UPDATE tp_transactions SET acknowledged = @Acks, conflicts = @Conflicts, settled_ms = COALESCE(settled_ms, @Settled) WHERE tx_id = @Id AND completed_ms IS NULL",
                    new
                    {
                        Id = id,
                        Acks = Union(record.Acknowledged, acknowledged),
                        Conflicts = Union(record.Conflicts, conflicts),
                        Settled = settled ? UnixMs.From(time.GetUtcNow()) : (long?)null,
                    },
                    tx.Transaction,
                    cancellationToken: cancellationToken));
            },
            cancellationToken,
            forced);

    private static string Union(IReadOnlyList<string> recorded, IReadOnlyCollection<string> added) =>
        JsonSerializer.Serialize(recorded.Concat(added).Distinct(StringComparer.Ordinal).ToArray(), PersistenceJson.Default.StringArray);

    // Completed: every participant acknowledged, so the acknowledged list is the participant list. Once only.
    private const string CompleteSql = "UPDATE tp_transactions SET acknowledged = participants, completed_ms = @Now WHERE completed_ms IS NULL AND tx_id";

    private async Task<bool> CompleteOneAsync(LocalTransaction tx, string id)
    {
        await tx.Connection.ExecuteAsync(new CommandDefinition($"{CompleteSql} = @Id", new { Id = id, Now = UnixMs.From(time.GetUtcNow()) }, tx.Transaction));
        return true;
    }

    /// <summary>The completions of one batch, on PostgreSQL: one UPDATE.</summary>
    private async Task<IReadOnlyList<bool>> CompleteAllAsync(LocalTransaction tx, IReadOnlyList<string> ids)
    {
        await tx.Connection.ExecuteAsync(new CommandDefinition(
            $"{CompleteSql} = ANY(@Ids)", new { Ids = ids.Distinct(StringComparer.Ordinal).ToArray(), Now = UnixMs.From(time.GetUtcNow()) }, tx.Transaction));
        return ids.Select(_ => true).ToList();
    }

    /// <inheritdoc />
    public Task ScheduleRetryAsync(string id, DateTimeOffset nextAttemptAt, CancellationToken cancellationToken) =>
        db.ExecuteAsync(
            connection => connection.ExecuteAsync(
                new CommandDefinition(
                    // Only the owner's (or an old row's, owned by nobody): a replica whose lease ran out and was claimed
                    // by another must not cut the new owner's lease short.
                    $"UPDATE tp_transactions SET attempts = attempts + 1, next_attempt_ms = {Clock} + @NextIn WHERE tx_id = @Id AND completed_ms IS NULL AND (owner IS NULL OR owner = @Owner)",
                    new { Id = id, NextIn = FromNow(UnixMs.From(nextAttemptAt)), Clock = UnixMs.From(time.GetUtcNow()), Owner = replicaId },
                    cancellationToken: cancellationToken)),
            cancellationToken,
            forced: false);

    /// <inheritdoc />
    public Task<TransactionRecord?> FindAsync(string id, CancellationToken cancellationToken) =>
        QueryOneAsync($"SELECT {Columns} FROM tp_transactions WHERE tx_id = @Id", new { Id = id }, cancellationToken);

    /// <inheritdoc />
    public Task<TransactionRecord?> FindByIdempotencyKeyAsync(string key, CancellationToken cancellationToken) =>
        QueryOneAsync($"SELECT {Columns} FROM tp_transactions WHERE idempotency_key = @Key", new { Key = key }, cancellationToken);

    /// <inheritdoc />
    public Task<IReadOnlyList<TransactionRecord>> FindAbandonedAsync(int limit, CancellationToken cancellationToken) =>
        QueryAsync(
            $"SELECT {Columns} FROM tp_transactions WHERE completed_ms IS NULL AND state = 'preparing' AND {AbandonMs()} <= {Clock} ORDER BY created_ms LIMIT @Limit",
            new { Clock = UnixMs.From(time.GetUtcNow()), Limit = limit },
            cancellationToken);

    // Decided, not completed, not settled, and its next attempt (the lease of whoever holds it) reached on the database's clock.
    private string DueCondition => $"completed_ms IS NULL AND settled_ms IS NULL AND state <> 'preparing' AND (next_attempt_ms IS NULL OR next_attempt_ms <= {Clock})";

    /// <inheritdoc />
    /// <remarks>
    /// One statement. On PostgreSQL the due rows are locked <c>FOR UPDATE SKIP LOCKED</c>, so a concurrent claim skips
    /// them, and one that waited re-reads them as claimed (no longer due); on SQLite the one writer makes the conditional
    /// UPDATE atomic. The lease's end is the database's clock plus <paramref name="lease"/>.
    /// </remarks>
    public async Task<IReadOnlyList<TransactionRecord>> ClaimDueAsync(TimeSpan lease, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(lease, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        var rows = await db.WriteAsync(
            async tx =>
            {
                var sql = tx.Dialect == Dialect.Postgres
                    ? $"""
                      WITH due AS (
                          SELECT tx_id FROM tp_transactions WHERE {DueCondition}
                          ORDER BY created_ms LIMIT @Limit FOR UPDATE SKIP LOCKED)
                      UPDATE tp_transactions t SET owner = @Owner, next_attempt_ms = {Clock} + @LeaseMs
                      FROM due WHERE t.tx_id = due.tx_id
                      RETURNING {string.Join(", ", Columns.Split(", ").Select(c => "t." + c))}
                      """
                    : $"""
                      UPDATE tp_transactions SET owner = @Owner, next_attempt_ms = {Clock} + @LeaseMs
                      WHERE tx_id IN (SELECT tx_id FROM tp_transactions WHERE {DueCondition} ORDER BY created_ms LIMIT @Limit)
                      RETURNING {Columns}
                      """;
                return (await tx.Connection.QueryAsync<Row>(new CommandDefinition(
                    sql,
                    new { Owner = replicaId, LeaseMs = (long)lease.TotalMilliseconds, Limit = limit, Clock = UnixMs.From(time.GetUtcNow()) },
                    tx.Transaction,
                    cancellationToken: cancellationToken))).ToList();
            },
            cancellationToken,
            forced: false);
        // RETURNING keeps no order: oldest first, as the claim chose them.
        return [.. rows.OrderBy(r => r.created_ms).ThenBy(r => r.tx_id, StringComparer.Ordinal).Select(r => r.ToRecord())];
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<TransactionRecord>> ListUnfinishedAsync(int limit, CancellationToken cancellationToken) =>
        QueryAsync(
            $"SELECT {Columns} FROM tp_transactions WHERE completed_ms IS NULL ORDER BY created_ms LIMIT @Limit",
            new { Limit = limit },
            cancellationToken);

    /// <inheritdoc />
    public Task<IReadOnlyList<TransactionRecord>> ListAsync(string? after, int limit, CancellationToken cancellationToken) =>
        QueryAsync(
            $"SELECT {Columns} FROM tp_transactions WHERE tx_id > @After ORDER BY tx_id LIMIT @Limit",
            new { After = after ?? string.Empty, Limit = limit },
            cancellationToken);

    /// <summary>
    /// Transactions not completed that some participant refused (409), oldest first: the operator's work list. Reads
    /// only unfinished rows (the partial index), as conflicted transactions are never completed.
    /// </summary>
    public Task<IReadOnlyList<TransactionRecord>> ListConflictedAsync(int limit, CancellationToken cancellationToken) =>
        QueryAsync(
            $"SELECT {Columns} FROM tp_transactions WHERE completed_ms IS NULL AND conflicts <> '[]' ORDER BY created_ms LIMIT @Limit",
            new { Limit = limit },
            cancellationToken);

    /// <summary>How many transactions not completed some participant refused (409).</summary>
    public Task<long> CountConflictedAsync(CancellationToken cancellationToken) =>
        db.ReadAsync(
            connection => connection.ExecuteScalarAsync<long>(new CommandDefinition(
                "SELECT COUNT(*) FROM tp_transactions WHERE completed_ms IS NULL AND conflicts <> '[]'", cancellationToken: cancellationToken)),
            cancellationToken);

    /// <summary>
    /// The newest transactions first, for the dashboard. Ids are version-7 GUIDs (time first), so id order is
    /// creation order and the primary key serves the query without a scan.
    /// </summary>
    public Task<IReadOnlyList<TransactionRecord>> ListRecentAsync(int limit, CancellationToken cancellationToken) =>
        QueryAsync($"SELECT {Columns} FROM tp_transactions ORDER BY tx_id DESC LIMIT @Limit", new { Limit = limit }, cancellationToken);

    private Task<TransactionRecord?> QueryOneAsync(string sql, object args, CancellationToken cancellationToken) =>
        db.ReadAsync(
            async connection => (await connection.QuerySingleOrDefaultAsync<Row>(new CommandDefinition(sql, args, cancellationToken: cancellationToken)))?.ToRecord(),
            cancellationToken);

    private Task<IReadOnlyList<TransactionRecord>> QueryAsync(string sql, object args, CancellationToken cancellationToken) =>
        db.ReadAsync<IReadOnlyList<TransactionRecord>>(
            async connection => (await connection.QueryAsync<Row>(new CommandDefinition(sql, args, cancellationToken: cancellationToken))).Select(r => r.ToRecord()).ToList(),
            cancellationToken);

    private sealed class Row
    {
        public string tx_id { get; set; } = "";
        public string state { get; set; } = "";
        public string participants { get; set; } = "[]";
        public string acknowledged { get; set; } = "[]";
        public string votes { get; set; } = "[]";
        public string? reason { get; set; }
        public string payload { get; set; } = "";
        public string? payloads { get; set; }
        public string? metadata { get; set; }
        public string? idempotency_key { get; set; }
        public string? request_hash { get; set; }
        public long created_ms { get; set; }
        public long deadline_ms { get; set; }
        public long? decided_ms { get; set; }
        public long? completed_ms { get; set; }
        public long attempts { get; set; }
        public long? next_attempt_ms { get; set; }

        public string conflicts { get; set; } = "[]";

        public long? settled_ms { get; set; }

        public string? owner { get; set; }

        /// <summary>
        /// The record; a row written before payloads were per participant (<c>payloads</c> null) had one payload that
        /// every participant received, and reads so: the same for each, and as the caller's metadata (it was the whole
        /// request), so that recovery re-drives such a row exactly as it was begun.
        /// </summary>
        public TransactionRecord ToRecord()
        {
            var names = JsonSerializer.Deserialize(participants, PersistenceJson.Default.StringArray) ?? [];
            IReadOnlyDictionary<string, string> each = payloads is null
                ? names.Distinct(StringComparer.Ordinal).ToDictionary(n => n, _ => payload, StringComparer.Ordinal)
                : JsonSerializer.Deserialize(payloads, PersistenceJson.Default.Payloads) ?? [];
            return ToRecord(names, each, payloads is null ? payload : metadata);
        }

        private TransactionRecord ToRecord(string[] names, IReadOnlyDictionary<string, string> each, string? caller) => new(
            tx_id,
            StateNames.ParseTransactionState(state),
            names,
            JsonSerializer.Deserialize(acknowledged, PersistenceJson.Default.StringArray) ?? [],
            JsonSerializer.Deserialize(votes, PersistenceJson.Default.VoteArray) ?? [],
            reason,
            each,
            idempotency_key,
            request_hash,
            UnixMs.To(created_ms),
            UnixMs.To(deadline_ms),
            UnixMs.To(decided_ms),
            UnixMs.To(completed_ms),
            (int)attempts,
            UnixMs.To(next_attempt_ms))
        {
            Conflicts = JsonSerializer.Deserialize(conflicts, PersistenceJson.Default.StringArray) ?? [],
            SettledAt = UnixMs.To(settled_ms),
            Metadata = caller,
            Owner = owner,
        };
    }
}
