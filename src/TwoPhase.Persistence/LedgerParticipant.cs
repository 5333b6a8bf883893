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
public sealed class LedgerParticipant(Database db, IResourceManager resources, TimeProvider time, IProtocolHooks hooks, TwoPhaseMetrics? metrics = null)
{
    // The kinds of set write this participant joins its group commit with (created on first use; two racing
    // first uses only make two kinds, which run as two groups).
    private SetWrite<PrepareItem, (VoteKind, string?)>? _prepares;
    private SetWrite<string, DecisionResult>? _commits;
    private SetWrite<string, DecisionResult>? _aborts;

    public Database Database => db;

    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        await db.ExecuteScriptAsync(LedgerSql.Schema, cancellationToken);
        await db.ExecuteScriptAsync(resources.Schema(db.Dialect), cancellationToken);
    }

    /// <summary>PREPARE: reserve and vote, durably, once; every repeat gets the same vote.</summary>
    public async Task<(VoteKind Vote, string? Reason)> PrepareAsync(string transactionId, string payload, CancellationToken cancellationToken)
    {
        using var activity = TwoPhaseDiagnostics.StartParticipant("prepare", transactionId);
        await hooks.AtAsync(ProtocolPoint.ParticipantBeforePrepareWritten, transactionId, cancellationToken);
        var now = UnixMs.From(time.GetUtcNow());
        // Group commit: this PREPARE shares its local transaction and fsync with the others arriving now, and
        // their ledger rows are claimed in one INSERT.
        var (vote, reason) = await db.WriteBatchedAsync(
            _prepares ??= new SetWrite<PrepareItem, (VoteKind, string?)>((tx, item) => ReserveAndRecordAsync(tx, item.TransactionId, item.Payload, item.Now, CancellationToken.None), PrepareAllAsync),
            new PrepareItem(transactionId, payload, now),
            cancellationToken);

        await hooks.AtAsync(ProtocolPoint.ParticipantAfterPrepareWritten, transactionId, cancellationToken);
        await hooks.AtAsync(ProtocolPoint.ParticipantBeforePrepareAnswered, transactionId, cancellationToken);
        metrics?.RecordVote(vote);
        activity?.SetTag("twophase.vote", vote.ToWire());
        return (vote, reason);
    }

    private sealed record PrepareItem(string TransactionId, string Payload, long Now);

    /// <summary>
    /// The PREPAREs of one batch, on PostgreSQL. The ledger answers first: one SELECT finds the ids that already have
    /// a row (a repeat from an earlier batch, an abort tombstone) and they are answered from it without touching the
    /// domain, so a doomed id never holds what a new order of the same batch needs (reserving first and giving back
    /// at the end refused that order, durably). Only the new ids reserve (a repeat within the batch reserves once and
    /// gets the first one's answer); then one INSERT claims their rows.
    /// </summary>
    private async Task<IReadOnlyList<(VoteKind, string?)>> PrepareAllAsync(LocalTransaction tx, IReadOnlyList<PrepareItem> items)
    {
        var known = (await tx.Connection.QueryAsync<LedgerSql.Row>(new CommandDefinition(
            $"SELECT {LedgerSql.Columns} FROM tp_ledger WHERE tx_id = ANY(@Ids)",
            new { Ids = items.Select(i => i.TransactionId).Distinct(StringComparer.Ordinal).ToArray() },
            tx.Transaction))).ToDictionary(r => r.tx_id, r => r.ToEntry(), StringComparer.Ordinal);

        var firsts = new List<(int Index, Reservation Reservation)>(items.Count);
        var seen = new HashSet<string>(known.Keys, StringComparer.Ordinal);
        for (var i = 0; i < items.Count; i++)
        {
            if (seen.Add(items[i].TransactionId))
            {
                firsts.Add((i, await resources.ReserveAsync(tx, items[i].TransactionId, items[i].Payload, CancellationToken.None)));
            }
        }

        HashSet<string> claimed = firsts.Count == 0 ? [] : (await tx.Connection.QueryAsync<string>(new CommandDefinition(
            """
            INSERT INTO tp_ledger (tx_id, state, reason, holding, created_ms, updated_ms)
            SELECT u.id, u.state, u.reason, u.holding, u.now, u.now FROM unnest(@Ids, @States, @Reasons, @Holdings, @Nows) AS u(id, state, reason, holding, now)
            ON CONFLICT DO NOTHING RETURNING tx_id
            """,
            new
            {
                Ids = firsts.Select(f => items[f.Index].TransactionId).ToArray(),
                States = firsts.Select(f => f.Reservation.Reserved ? "prepared" : "refused").ToArray(),
                Reasons = firsts.Select(f => f.Reservation.Reserved ? null : f.Reservation.Reason ?? "refused").ToArray(),
                Holdings = firsts.Select(f => f.Reservation.Holding).ToArray(),
                Nows = firsts.Select(f => items[f.Index].Now).ToArray(),
            },
            tx.Transaction))).ToHashSet(StringComparer.Ordinal);

        var results = new (VoteKind, string?)[items.Count];
        var answered = new bool[items.Count];
        foreach (var (index, reservation) in firsts)
        {
            var id = items[index].TransactionId;
            if (claimed.Contains(id))
            {
                results[index] = reservation.Reserved ? (VoteKind.Yes, null) : (VoteKind.No, reservation.Reason ?? "refused");
                answered[index] = true;
            }
            else if (reservation.Reserved)
            {
                // Lost a race the SELECT could not see: another local transaction (another replica of this
                // participant, or a write outside this group commit) inserted the row after our SELECT and committed
                // while our INSERT waited on it. Give back; the row answers below. One transaction reserves at most once.
                // Only in this race can a doomed id still have held, within the batch, what another item needed.
                await resources.ReleaseAsync(tx, id, reservation.Holding, CancellationToken.None);
            }
        }

        for (var i = 0; i < items.Count; i++)
        {
            if (!answered[i])
            {
                var row = known.GetValueOrDefault(items[i].TransactionId) ?? await LedgerSql.FindAsync(tx, items[i].TransactionId, CancellationToken.None);
                results[i] = (ParticipantRules.VoteOf(row!.State), row.Reason);
            }
        }

        return results;
    }

    /// <summary>
    /// One PREPARE (SQLite, where the items of a batch run one after the other): answer from the ledger row if there
    /// is one, else reserve and claim the id with the row that records the vote.
    /// </summary>
    private async Task<(VoteKind, string?)> ReserveAndRecordAsync(LocalTransaction tx, string transactionId, string payload, long now, CancellationToken cancellationToken)
    {
        // Read first, as the set-oriented path does: a repeat or a tombstone is answered without reserving, so the
        // two paths act alike. The claim below still says ON CONFLICT DO NOTHING, and that, not the read, is what
        // keeps both rules under concurrency (PostgreSQL, read committed): a concurrent ABORT whose tombstone INSERT
        // is not yet committed is invisible to the read, but our INSERT waits on its key and then conflicts; we give
        // back what we took and answer from the tombstone (no). The other way round, the ABORT's INSERT waits on ours,
        // conflicts, and releases our prepared row. Either way the tombstone wins against a late PREPARE, and one
        // transaction reserves at most once, because only the claimed row keeps a reservation.
        if (await LedgerSql.FindAsync(tx, transactionId, cancellationToken) is { } existing)
        {
            return (ParticipantRules.VoteOf(existing.State), existing.Reason);
        }

        var reservation = await resources.ReserveAsync(tx, transactionId, payload, cancellationToken);
        var claimed = await tx.Connection.ExecuteAsync(new CommandDefinition(
            "INSERT INTO tp_ledger (tx_id, state, reason, holding, created_ms, updated_ms) VALUES (@Id, @State, @Reason, @Holding, @Now, @Now) ON CONFLICT DO NOTHING",
            new
            {
                Id = transactionId,
                State = reservation.Reserved ? "prepared" : "refused",
                Reason = reservation.Reserved ? null : reservation.Reason ?? "refused",
                reservation.Holding,
                Now = now,
            },
            tx.Transaction,
            cancellationToken: cancellationToken));
        if (claimed == 1)
        {
            return reservation.Reserved ? (VoteKind.Yes, null) : (VoteKind.No, reservation.Reason ?? "refused");
        }

        if (reservation.Reserved)
        {
            await resources.ReleaseAsync(tx, transactionId, reservation.Holding, cancellationToken);
        }

        var row = await LedgerSql.FindAsync(tx, transactionId, cancellationToken);
        return (ParticipantRules.VoteOf(row!.State), row.Reason);
    }

    /// <summary>COMMIT: prepared becomes committed; repeats are no-ops; anything else is a conflict.</summary>
    public async Task<DecisionResult> CommitAsync(string transactionId, CancellationToken cancellationToken)
    {
        using var activity = TwoPhaseDiagnostics.StartParticipant("commit", transactionId);
        await hooks.AtAsync(ProtocolPoint.ParticipantBeforeCommitWritten, transactionId, cancellationToken);
        // Group commit, and the COMMITs of the moment together: one UPDATE moves every prepared row at once.
        var result = await db.WriteBatchedAsync(
            _commits ??= new SetWrite<string, DecisionResult>((tx, id) => DecideOneAsync(tx, id, LedgerState.Committed), (tx, ids) => DecideAllAsync(tx, ids, LedgerState.Committed)),
            transactionId,
            cancellationToken);
        await hooks.AtAsync(ProtocolPoint.ParticipantAfterCommitWritten, transactionId, cancellationToken);
        metrics?.RecordParticipantDecision(Decision.Commit, result.Conflict);
        return result;
    }

    /// <summary>ABORT: prepared is released; unknown leaves a tombstone; repeats are no-ops; committed is a conflict.</summary>
    public async Task<DecisionResult> AbortAsync(string transactionId, CancellationToken cancellationToken)
    {
        using var activity = TwoPhaseDiagnostics.StartParticipant("abort", transactionId);
        await hooks.AtAsync(ProtocolPoint.ParticipantBeforeAbortWritten, transactionId, cancellationToken);
        var result = await db.WriteBatchedAsync(
            _aborts ??= new SetWrite<string, DecisionResult>((tx, id) => DecideOneAsync(tx, id, LedgerState.Aborted), (tx, ids) => DecideAllAsync(tx, ids, LedgerState.Aborted)),
            transactionId,
            cancellationToken);
        await hooks.AtAsync(ProtocolPoint.ParticipantAfterAbortWritten, transactionId, cancellationToken);
        metrics?.RecordParticipantDecision(Decision.Abort, result.Conflict);
        return result;
    }

    /// <summary>
    /// One COMMIT (or ABORT): the usual case, a prepared row, in one conditional UPDATE that moves it and learns what
    /// it holds, then the domain's commit or release; anything else is answered from the ledger.
    /// </summary>
    private async Task<DecisionResult> DecideOneAsync(LocalTransaction tx, string transactionId, LedgerState final)
    {
        if (await TransitionAsync(tx, transactionId, final, CancellationToken.None) is not { } held)
        {
            return await AnswerUnpreparedAsync(tx, transactionId, final);
        }

        await (final == LedgerState.Committed
            ? resources.CommitAsync(tx, transactionId, held.Holding, CancellationToken.None)
            : resources.ReleaseAsync(tx, transactionId, held.Holding, CancellationToken.None));
        return new DecisionResult(final, false, null);
    }

    /// <summary>
    /// The COMMITs (or ABORTs) of one batch, on PostgreSQL: the prepared rows in two statements for all of them, the
    /// UPDATE that moves them and learns what they hold, then the domain's set-oriented commit or release. Every
    /// other id (a repeat, an unknown one, a contradiction) is answered one by one from the ledger.
    /// </summary>
    private async Task<IReadOnlyList<DecisionResult>> DecideAllAsync(LocalTransaction tx, IReadOnlyList<string> ids, LedgerState final)
    {
        var moved = (await tx.Connection.QueryAsync<LedgerSql.Row>(new CommandDefinition(
            $"UPDATE tp_ledger SET state = @State, updated_ms = @Now, next_check_ms = NULL WHERE tx_id = ANY(@Ids) AND state = 'prepared' RETURNING {LedgerSql.Columns}",
            new { Ids = ids.Distinct(StringComparer.Ordinal).ToArray(), State = final.ToWire(), Now = UnixMs.From(time.GetUtcNow()) },
            tx.Transaction))).ToDictionary(r => r.tx_id, r => r.ToEntry(), StringComparer.Ordinal);
        if (moved.Count > 0)
        {
            var held = moved.Values.ToList();
            await (final == LedgerState.Committed
                ? resources.CommitManyAsync(tx, held, CancellationToken.None)
                : resources.ReleaseManyAsync(tx, held, CancellationToken.None));
        }

        var results = new List<DecisionResult>(ids.Count);
        foreach (var id in ids)
        {
            results.Add(moved.ContainsKey(id) ? new DecisionResult(final, false, null) : await AnswerUnpreparedAsync(tx, id, final));
        }

        return results;
    }

    private Task<DecisionResult> AnswerUnpreparedAsync(LocalTransaction tx, string transactionId, LedgerState final) =>
        final == LedgerState.Committed ? CommitUnpreparedAsync(tx, transactionId) : AbortUnpreparedAsync(tx, transactionId);

    /// <summary>A COMMIT for a row that is not prepared: a repeat is answered from the ledger, anything else is a conflict.</summary>
    private static async Task<DecisionResult> CommitUnpreparedAsync(LocalTransaction tx, string transactionId)
    {
        var row = await LedgerSql.FindAsync(tx, transactionId, CancellationToken.None);
        return ParticipantRules.OnCommit(row?.State) == ParticipantAction.AnswerFromLedger
            ? new DecisionResult(row!.State, false, null)
            : new DecisionResult(row?.State, true, row is null
                ? "commit for a transaction that was never prepared here"
                : $"commit for a transaction that is {row.State.ToWire()} here");
    }

    /// <summary>An ABORT for a row that is not prepared (as this transaction saw it).</summary>
    private async Task<DecisionResult> AbortUnpreparedAsync(LocalTransaction tx, string transactionId)
    {
        // Unknown here: a tombstone, so a PREPARE arriving late votes no.
        var tombstone = await tx.Connection.ExecuteAsync(new CommandDefinition(
            "INSERT INTO tp_ledger (tx_id, state, reason, created_ms, updated_ms) VALUES (@Id, 'aborted', 'abort arrived before prepare', @Now, @Now) ON CONFLICT DO NOTHING",
            new { Id = transactionId, Now = UnixMs.From(time.GetUtcNow()) },
            tx.Transaction));
        if (tombstone == 1)
        {
            return new DecisionResult(LedgerState.Aborted, false, null);
        }

        // The insert found a row our first UPDATE could not see: a PREPARE that committed while we
        // waited on it (PostgreSQL, read committed). Now it is visible; release it like any prepared row.
        if (await TransitionAsync(tx, transactionId, LedgerState.Aborted, CancellationToken.None) is { } late)
        {
            await resources.ReleaseAsync(tx, transactionId, late.Holding, CancellationToken.None);
            return new DecisionResult(LedgerState.Aborted, false, null);
        }

        var row = await LedgerSql.FindAsync(tx, transactionId, CancellationToken.None);
        return ParticipantRules.OnAbort(row?.State) == ParticipantAction.AnswerFromLedger
            ? new DecisionResult(row!.State, false, null)
            : new DecisionResult(row?.State, true, "abort for a transaction already committed here");
    }

    /// <summary>
    /// prepared -> <paramref name="final"/> in one conditional UPDATE, returning what was held; null when the row
    /// is not prepared (absent, or already final). The row lock it takes serialises concurrent decisions.
    /// </summary>
    private async Task<LedgerEntry?> TransitionAsync(LocalTransaction tx, string transactionId, LedgerState final, CancellationToken cancellationToken)
    {
        var row = await tx.Connection.QuerySingleOrDefaultAsync<LedgerSql.Row>(new CommandDefinition(
            $"UPDATE tp_ledger SET state = @State, updated_ms = @Now, next_check_ms = NULL WHERE tx_id = @Id AND state = 'prepared' RETURNING {LedgerSql.Columns}",
            new { Id = transactionId, State = final.ToWire(), Now = UnixMs.From(time.GetUtcNow()) },
            tx.Transaction,
            cancellationToken: cancellationToken));
        return row?.ToEntry();
    }

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

    private Task<IReadOnlyList<LedgerEntry>> QueryAsync(string sql, object args, CancellationToken cancellationToken) =>
        db.ReadAsync<IReadOnlyList<LedgerEntry>>(
            async connection => (await connection.QueryAsync<LedgerSql.Row>(new CommandDefinition(sql, args, cancellationToken: cancellationToken))).Select(r => r.ToEntry()).ToList(),
            cancellationToken);
}
