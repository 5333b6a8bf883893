using Dapper;
using TwoPhase.Protocol;

namespace TwoPhase.Persistence;

/// <summary>The outcome of a COMMIT or ABORT at a participant.</summary>
/// <param name="State">The ledger state after the message (null when there is no row).</param>
/// <param name="Conflict">True when the message contradicts the ledger (409).</param>
/// <param name="Detail">What the conflict is.</param>
public sealed record DecisionResult(LedgerState? State, bool Conflict, string? Detail);

/// <summary>
/// Presumed-abort 2PC, the participant's side (DESIGN §2), on a SQL ledger. Every message is handled
/// in one local transaction that reads the ledger row, changes the domain and writes the row; repeats
/// and reorderings are answered from the row.
/// </summary>
public sealed class LedgerParticipant(Database db, IResourceManager resources, TimeProvider time, IProtocolHooks hooks)
{
    public Database Database => db;

    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        await db.ExecuteScriptAsync(LedgerSql.Schema, cancellationToken);
        await db.ExecuteScriptAsync(resources.Schema(db.Dialect), cancellationToken);
    }

    /// <summary>PREPARE: reserve and vote, durably, once; every repeat gets the same vote.</summary>
    public async Task<(VoteKind Vote, string? Reason)> PrepareAsync(string transactionId, string payload, CancellationToken cancellationToken)
    {
        await hooks.AtAsync(ProtocolPoint.ParticipantBeforePrepareWritten, transactionId, cancellationToken);
        var now = UnixMs.From(time.GetUtcNow());
        VoteKind vote;
        string? reason;
        try
        {
            (vote, reason) = await db.WriteAsync(tx => ClaimAndReserveAsync(tx, transactionId, payload, now, cancellationToken), cancellationToken);
        }
        catch (RefusedException refusal)
        {
            // The local transaction rolled back whatever the domain did before refusing; record the refusal.
            (vote, reason) = await RecordRefusalAsync(transactionId, refusal.Message, cancellationToken);
        }

        await hooks.AtAsync(ProtocolPoint.ParticipantAfterPrepareWritten, transactionId, cancellationToken);
        await hooks.AtAsync(ProtocolPoint.ParticipantBeforePrepareAnswered, transactionId, cancellationToken);
        return (vote, reason);
    }

    private async Task<(VoteKind, string?)> ClaimAndReserveAsync(LocalTransaction tx, string transactionId, string payload, long now, CancellationToken cancellationToken)
    {
        // Claim the id first. A concurrent duplicate waits on this row (PostgreSQL) or the write
        // lock (SQLite) and then answers from what we wrote: one reservation per transaction.
        var claimed = await tx.Connection.ExecuteAsync(new CommandDefinition(
            "INSERT INTO tp_ledger (tx_id, state, created_ms, updated_ms) VALUES (@Id, 'prepared', @Now, @Now) ON CONFLICT DO NOTHING",
            new { Id = transactionId, Now = now },
            tx.Transaction,
            cancellationToken: cancellationToken));
        if (claimed == 0)
        {
            var existing = await LedgerSql.FindAsync(tx, transactionId, forUpdate: false, cancellationToken);
            return (ParticipantRules.VoteOf(existing!.State), existing.Reason);
        }

        var reservation = await resources.ReserveAsync(tx, transactionId, payload, cancellationToken);
        if (!reservation.Reserved)
        {
            throw new RefusedException(reservation.Reason ?? "refused");
        }

        await tx.Connection.ExecuteAsync(new CommandDefinition(
            "UPDATE tp_ledger SET holding = @Holding WHERE tx_id = @Id",
            new { Id = transactionId, reservation.Holding },
            tx.Transaction,
            cancellationToken: cancellationToken));
        return (VoteKind.Yes, null);
    }

    private Task<(VoteKind, string?)> RecordRefusalAsync(string transactionId, string reason, CancellationToken cancellationToken)
    {
        var now = UnixMs.From(time.GetUtcNow());
        // A refusal need not be forced: if it is lost, a repeated PREPARE simply tries again and nothing was held.
        return db.WriteAsync(
            async tx =>
            {
                await tx.Connection.ExecuteAsync(new CommandDefinition(
                    "INSERT INTO tp_ledger (tx_id, state, reason, created_ms, updated_ms) VALUES (@Id, 'refused', @Reason, @Now, @Now) ON CONFLICT DO NOTHING",
                    new { Id = transactionId, Reason = reason, Now = now },
                    tx.Transaction,
                    cancellationToken: cancellationToken));
                // A concurrent duplicate may have prepared meanwhile; the row, not our attempt, is the vote.
                var row = await LedgerSql.FindAsync(tx, transactionId, forUpdate: false, cancellationToken);
                return (ParticipantRules.VoteOf(row!.State), row.Reason);
            },
            cancellationToken,
            forced: false);
    }

    /// <summary>COMMIT: prepared becomes committed; repeats are no-ops; anything else is a conflict.</summary>
    public async Task<DecisionResult> CommitAsync(string transactionId, CancellationToken cancellationToken)
    {
        await hooks.AtAsync(ProtocolPoint.ParticipantBeforeCommitWritten, transactionId, cancellationToken);
        var result = await db.WriteAsync(
            async tx =>
            {
                var row = await LedgerSql.FindAsync(tx, transactionId, forUpdate: true, cancellationToken);
                switch (ParticipantRules.OnCommit(row?.State))
                {
                    case ParticipantAction.ApplyCommit:
                        await resources.CommitAsync(tx, transactionId, row!.Holding, cancellationToken);
                        await SetStateAsync(tx, transactionId, LedgerState.Committed, cancellationToken);
                        return new DecisionResult(LedgerState.Committed, false, null);
                    case ParticipantAction.AnswerFromLedger:
                        return new DecisionResult(row!.State, false, null);
                    default:
                        return new DecisionResult(row?.State, true, row is null
                            ? "commit for a transaction that was never prepared here"
                            : $"commit for a transaction that is {row.State.ToWire()} here");
                }
            },
            cancellationToken);
        await hooks.AtAsync(ProtocolPoint.ParticipantAfterCommitWritten, transactionId, cancellationToken);
        return result;
    }

    /// <summary>ABORT: prepared is released; unknown leaves a tombstone; repeats are no-ops; committed is a conflict.</summary>
    public async Task<DecisionResult> AbortAsync(string transactionId, CancellationToken cancellationToken)
    {
        await hooks.AtAsync(ProtocolPoint.ParticipantBeforeAbortWritten, transactionId, cancellationToken);
        var now = UnixMs.From(time.GetUtcNow());
        var result = await db.WriteAsync(
            async tx =>
            {
                var tombstone = await tx.Connection.ExecuteAsync(new CommandDefinition(
                    "INSERT INTO tp_ledger (tx_id, state, reason, created_ms, updated_ms) VALUES (@Id, 'aborted', 'abort arrived before prepare', @Now, @Now) ON CONFLICT DO NOTHING",
                    new { Id = transactionId, Now = now },
                    tx.Transaction,
                    cancellationToken: cancellationToken));
                if (tombstone == 1)
                {
                    return new DecisionResult(LedgerState.Aborted, false, null);
                }

                var row = await LedgerSql.FindAsync(tx, transactionId, forUpdate: true, cancellationToken);
                switch (ParticipantRules.OnAbort(row?.State))
                {
                    case ParticipantAction.Release:
                        await resources.ReleaseAsync(tx, transactionId, row!.Holding, cancellationToken);
                        await SetStateAsync(tx, transactionId, LedgerState.Aborted, cancellationToken);
                        return new DecisionResult(LedgerState.Aborted, false, null);
                    case ParticipantAction.AnswerFromLedger:
                        return new DecisionResult(row!.State, false, null);
                    default:
                        return new DecisionResult(row?.State, true, "abort for a transaction already committed here");
                }
            },
            cancellationToken);
        await hooks.AtAsync(ProtocolPoint.ParticipantAfterAbortWritten, transactionId, cancellationToken);
        return result;
    }

    private Task SetStateAsync(LocalTransaction tx, string transactionId, LedgerState state, CancellationToken cancellationToken) =>
        tx.Connection.ExecuteAsync(new CommandDefinition(
            "UPDATE tp_ledger SET state = @State, updated_ms = @Now, next_check_ms = NULL WHERE tx_id = @Id",
            new { Id = transactionId, State = state.ToWire(), Now = UnixMs.From(time.GetUtcNow()) },
            tx.Transaction,
            cancellationToken: cancellationToken));

    public Task<LedgerEntry?> FindAsync(string transactionId, CancellationToken cancellationToken) =>
        db.ReadAsync(
            async connection => (await connection.QuerySingleOrDefaultAsync<LedgerSql.Row>(new CommandDefinition(
                $"SELECT {LedgerSql.Columns} FROM tp_ledger WHERE tx_id = @Id", new { Id = transactionId }, cancellationToken: cancellationToken)))?.ToEntry(),
            cancellationToken);

    public Task<IReadOnlyList<LedgerEntry>> ListAsync(string? after, int limit, CancellationToken cancellationToken) =>
        QueryAsync($"SELECT {LedgerSql.Columns} FROM tp_ledger WHERE tx_id > @After ORDER BY tx_id LIMIT @Limit", new { After = after ?? string.Empty, Limit = limit }, cancellationToken);

    /// <summary>Rows still prepared, oldest first.</summary>
    public Task<IReadOnlyList<LedgerEntry>> ListPreparedAsync(int limit, CancellationToken cancellationToken) =>
        QueryAsync($"SELECT {LedgerSql.Columns} FROM tp_ledger WHERE state = 'prepared' ORDER BY created_ms LIMIT @Limit", new { Limit = limit }, cancellationToken);

    /// <summary>Prepared rows old enough to be in doubt and due for a question to the coordinator.</summary>
    public Task<IReadOnlyList<LedgerEntry>> FindInDoubtAsync(DateTimeOffset preparedBefore, DateTimeOffset now, int limit, CancellationToken cancellationToken) =>
        QueryAsync(
            $"SELECT {LedgerSql.Columns} FROM tp_ledger WHERE state = 'prepared' AND created_ms <= @Before AND (next_check_ms IS NULL OR next_check_ms <= @Now) ORDER BY created_ms LIMIT @Limit",
            new { Before = UnixMs.From(preparedBefore), Now = UnixMs.From(now), Limit = limit },
            cancellationToken);

    /// <summary>The coordinator could not say yet: ask again at <paramref name="nextCheckAt"/>.</summary>
    public Task ScheduleCheckAsync(string transactionId, DateTimeOffset nextCheckAt, CancellationToken cancellationToken) =>
        db.WriteAsync(
            tx => tx.Connection.ExecuteAsync(new CommandDefinition(
                "UPDATE tp_ledger SET checks = checks + 1, next_check_ms = @Next WHERE tx_id = @Id AND state = 'prepared'",
                new { Id = transactionId, Next = UnixMs.From(nextCheckAt) },
                tx.Transaction,
                cancellationToken: cancellationToken)),
            cancellationToken,
            forced: false);

    /// <summary>Counts by state, and the age of the oldest prepared row.</summary>
    public Task<(IReadOnlyDictionary<string, long> ByState, DateTimeOffset? OldestPrepared)> StatsAsync(CancellationToken cancellationToken) =>
        db.ReadAsync<(IReadOnlyDictionary<string, long>, DateTimeOffset?)>(
            async connection =>
            {
                var counts = (await connection.QueryAsync<(string, long)>(new CommandDefinition("SELECT state, COUNT(*) FROM tp_ledger GROUP BY state", cancellationToken: cancellationToken)))
                    .ToDictionary(r => r.Item1, r => r.Item2);
                var oldest = await connection.ExecuteScalarAsync<long?>(new CommandDefinition("SELECT MIN(created_ms) FROM tp_ledger WHERE state = 'prepared'", cancellationToken: cancellationToken));
                return (counts, UnixMs.To(oldest));
            },
            cancellationToken);

    private Task<IReadOnlyList<LedgerEntry>> QueryAsync(string sql, object args, CancellationToken cancellationToken) =>
        db.ReadAsync<IReadOnlyList<LedgerEntry>>(
            async connection => (await connection.QueryAsync<LedgerSql.Row>(new CommandDefinition(sql, args, cancellationToken: cancellationToken))).Select(r => r.ToEntry()).ToList(),
            cancellationToken);

    private sealed class RefusedException(string reason) : Exception(reason);
}
