using Dapper;
using TwoPhase.Protocol;

namespace TwoPhase.Persistence;

/// <summary>
/// Presumed-abort 2PC, the participant's side (DESIGN §2), on a SQL ledger. The rules are
/// <see cref="ParticipantRules"/> and <see cref="InDoubtRules"/> (src/TwoPhase.Protocol/Participant/); this class
/// carries them out, and each statement below says which rule it implements and how its WHERE clause is exactly
/// that rule's cases. Every message is handled in one local transaction that reads the ledger row, changes the
/// domain and writes the row; repeats and reorderings are answered from the row.
/// </summary>
public sealed class LedgerParticipant(Database db, IResourceManager resources, TimeProvider time, IProtocolHooks hooks, TwoPhaseMetrics? metrics = null)
{
    // Rows only move forward through three stages (none; prepared, refused or a tombstone; committed or aborted), and a
    // COMMIT or ABORT looks at its row again only when a concurrent writer moved it to a later stage: three looks at most.
    private const int MaxLooks = 3;

    // The kinds of set write this participant joins its group commit with (created on first use; two racing
    // first uses only make two kinds, which run as two groups).
    private SetWrite<PrepareItem, Prepared>? _prepares;
    private SetWrite<string, DecisionResult>? _commits;
    private SetWrite<string, DecisionResult>? _aborts;

    /// <summary>The store the ledger and the resource manager's tables share, so both change in one local transaction.</summary>
    public Database Database => db;

    /// <summary>Creates the ledger table and the resource manager's own schema if missing; idempotent, run at start.</summary>
    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        await db.ExecuteScriptAsync(LedgerSql.Schema, cancellationToken);
        await LedgerSql.MigrateAsync(db, cancellationToken);
        await db.ExecuteScriptAsync(resources.Schema(db.Dialect), cancellationToken);
    }

    /// <summary>
    /// PREPARE: reserve and vote, durably, once; every repeat gets the same vote. A payload the resource manager cannot
    /// read (it threw <see cref="InvalidPayloadException"/>) throws that here, for this PREPARE alone: nothing was written
    /// for it, and the others of its group commit went on without it.
    /// </summary>
    public Task<(VoteKind Vote, string? Reason)> PrepareAsync(string transactionId, string payload, CancellationToken cancellationToken) =>
        PrepareAsync(transactionId, payload, null, null, cancellationToken);

    /// <summary>
    /// PREPARE from a coordinator that named its group (docs/protocol.md, "Coordinator groups"): as
    /// <see cref="PrepareAsync(string, string, CancellationToken)"/>, and the row it claims keeps
    /// <paramref name="coordinatorGroup"/> and <paramref name="coordinatorUrl"/> (checked by the caller), so that an
    /// in-doubt question goes to that group. A repeat is answered from the row and changes neither.
    /// </summary>
    public async Task<(VoteKind Vote, string? Reason)> PrepareAsync(string transactionId, string payload, string? coordinatorGroup, string? coordinatorUrl, CancellationToken cancellationToken)
    {
        using var activity = TwoPhaseDiagnostics.StartParticipant("prepare", transactionId);
        await hooks.AtAsync(ProtocolPoint.ParticipantBeforePrepareWritten, transactionId, cancellationToken);
        // Group commit: this PREPARE shares its local transaction and fsync with the others arriving now, and
        // their ledger rows are claimed in one INSERT.
        var (vote, reason, invalid) = await db.WriteBatchedAsync(
            _prepares ??= new SetWrite<PrepareItem, Prepared>((tx, item) => PrepareOneAsync(tx, item), PrepareAllAsync),
            new PrepareItem(transactionId, payload, time.GetUtcNow(), coordinatorGroup, coordinatorUrl),
            cancellationToken);
        if (invalid is not null)
        {
            metrics?.RecordVote(VoteKind.No);
            // A new exception per caller: a repeat of the id in the same group shares the first one's.
            throw new InvalidPayloadException(invalid.Field, invalid.Reason);
        }

        await hooks.AtAsync(ProtocolPoint.ParticipantAfterPrepareWritten, transactionId, cancellationToken);
        await hooks.AtAsync(ProtocolPoint.ParticipantBeforePrepareAnswered, transactionId, cancellationToken);
        metrics?.RecordVote(vote);
        activity?.SetTag("twophase.vote", vote.ToWire());
        return (vote, reason);
    }

    private sealed record PrepareItem(string TransactionId, string Payload, DateTimeOffset Now, string? CoordinatorGroup, string? CoordinatorUrl)
    {
        /// <summary>The row this PREPARE claims (<see cref="ParticipantRules.Claim"/>), naming the coordinator group it came from.</summary>
        public LedgerEntry Claim(Reservation reservation) =>
            ParticipantRules.Claim(TransactionId, reservation.Reserved, reservation.Holding, reservation.Reason, Now) with
            {
                CoordinatorGroup = CoordinatorGroup,
                CoordinatorUrl = CoordinatorUrl,
            };
    }

    /// <summary>One PREPARE's answer: the vote, or the resource manager's verdict that its payload is invalid (nothing written).</summary>
    private readonly record struct Prepared(VoteKind Vote, string? Reason, InvalidPayloadException? Invalid = null)
    {
        public static implicit operator Prepared((VoteKind Vote, string? Reason) answer) => new(answer.Vote, answer.Reason);

        public static Prepared Refused(InvalidPayloadException invalid) => new(VoteKind.No, invalid.Message, invalid);
    }

    /// <summary>The resource manager's reservation, or its refusal of the payload (<see cref="InvalidPayloadException"/>), which holds nothing.</summary>
    private async Task<(Reservation? Reservation, InvalidPayloadException? Invalid)> TryReserveAsync(LocalTransaction tx, PrepareItem item)
    {
        try
        {
            return (await resources.ReserveAsync(tx, item.TransactionId, item.Payload, CancellationToken.None), null);
        }
        catch (InvalidPayloadException e)
        {
            return (null, e);
        }
    }

    /// <summary>
    /// One PREPARE (SQLite, where the items of a batch run one after the other), by <see cref="ParticipantRules.OnPrepare"/>:
    /// a row answers; no row reserves and claims the id with the row that records the vote.
    /// </summary>
    private async Task<Prepared> PrepareOneAsync(LocalTransaction tx, PrepareItem item)
    {
        // Read first, as the set-oriented path does: a repeat or a tombstone is answered without reserving, so the
        // two paths act alike. The claim's ON CONFLICT DO NOTHING, not the read, is what keeps the rules under
        // concurrency (PostgreSQL, read committed): a concurrent ABORT whose tombstone INSERT is not yet committed is
        // invisible to the read, but our claim waits on its key and then conflicts (OnClaimLost: we give back and
        // answer from the tombstone, no). The other way round, the ABORT's INSERT waits on ours, conflicts, and
        // releases our prepared row. Either way the tombstone wins against a late PREPARE.
        var existing = await LedgerSql.FindAsync(tx, item.TransactionId, CancellationToken.None);
        if (ParticipantRules.OnPrepare(existing?.State) == ParticipantAction.AnswerFromLedger)
        {
            return ParticipantRules.Answer(existing!);
        }

        var (reservation, invalid) = await TryReserveAsync(tx, item);
        if (reservation is null)
        {
            return Prepared.Refused(invalid!);
        }

        var claim = item.Claim(reservation);
        if (await InsertIfAbsentAsync(tx, claim))
        {
            return ParticipantRules.Answer(claim);
        }

        await GiveBackAsync(tx, item.TransactionId, reservation);
        return ParticipantRules.Answer((await LedgerSql.FindAsync(tx, item.TransactionId, CancellationToken.None))!);
    }

    /// <summary>
    /// The PREPAREs of one batch, on PostgreSQL, by <see cref="ParticipantRules.OnPrepare"/> for each. The ledger answers
    /// first: one SELECT finds the ids that already have a row (a repeat from an earlier batch, an abort tombstone) and
    /// they are answered from it without touching the domain, so a doomed id never holds what a new order of the same
    /// batch needs (reserving first and giving back at the end refused that order, durably). Only the new ids reserve (a
    /// repeat within the batch reserves once and gets the first one's answer); then one INSERT claims their rows.
    /// </summary>
    private async Task<IReadOnlyList<Prepared>> PrepareAllAsync(LocalTransaction tx, IReadOnlyList<PrepareItem> items)
    {
        var known = (await LedgerSql.QueryAsync(tx.Connection, new CommandDefinition(
            $"SELECT {LedgerSql.Columns} FROM tp_ledger WHERE tx_id = ANY(@Ids)",
            new { Ids = items.Select(i => i.TransactionId).Distinct(StringComparer.Ordinal).ToArray() },
            tx.Transaction))).ToDictionary(r => r.TransactionId, StringComparer.Ordinal);

        var claims = new List<(int Index, Reservation Reservation, LedgerEntry Row)>(items.Count);
        var claiming = new HashSet<string>(StringComparer.Ordinal);
        // Ids whose payload the resource manager refused: they claim nothing, and a repeat in the batch shares the verdict.
        var invalid = new Dictionary<string, InvalidPayloadException>(StringComparer.Ordinal);
        for (var i = 0; i < items.Count; i++)
        {
            var item = items[i];
            if (ParticipantRules.OnPrepare(known.GetValueOrDefault(item.TransactionId)?.State) == ParticipantAction.Reserve && claiming.Add(item.TransactionId))
            {
                var (reservation, refused) = await TryReserveAsync(tx, item);
                if (reservation is null)
                {
                    invalid[item.TransactionId] = refused!;
                    continue;
                }

                claims.Add((i, reservation, item.Claim(reservation)));
            }
        }

        // The claims, as InsertIfAbsentAsync for all at once: ON CONFLICT DO NOTHING keeps OnPrepare's "no row" case
        // under the key's lock, and RETURNING says which ids this batch claimed.
        HashSet<string> claimed = claims.Count == 0 ? [] : (await tx.Connection.QueryAsync<string>(new CommandDefinition(
            """
            INSERT INTO tp_ledger (tx_id, state, reason, holding, created_ms, updated_ms, coordinator_group, coordinator_url)
            SELECT u.id, u.state, u.reason, u.holding, u.now, u.now, u.cgroup, u.curl
            FROM unnest(@Ids, @States, @Reasons, @Holdings, @Nows, @Groups, @Urls) AS u(id, state, reason, holding, now, cgroup, curl)
            ON CONFLICT DO NOTHING RETURNING tx_id
            """,
            new
            {
                Ids = claims.Select(c => c.Row.TransactionId).ToArray(),
                States = claims.Select(c => c.Row.State.ToWire()).ToArray(),
                Reasons = claims.Select(c => c.Row.Reason).ToArray(),
                Holdings = claims.Select(c => c.Row.Holding).ToArray(),
                Nows = claims.Select(c => UnixMs.From(c.Row.CreatedAt)).ToArray(),
                Groups = claims.Select(c => c.Row.CoordinatorGroup).ToArray(),
                Urls = claims.Select(c => c.Row.CoordinatorUrl).ToArray(),
            },
            tx.Transaction))).ToHashSet(StringComparer.Ordinal);

        var results = new Prepared?[items.Count];
        foreach (var (index, reservation, row) in claims)
        {
            if (claimed.Contains(row.TransactionId))
            {
                results[index] = ParticipantRules.Answer(row);
            }
            else
            {
                // Lost a race the SELECT could not see: another local transaction (another replica of this participant,
                // or a write outside this group commit) inserted the row after our SELECT and committed while our INSERT
                // waited on it. Only in this race can a doomed id still have held, within the batch, what another item needed.
                await GiveBackAsync(tx, row.TransactionId, reservation);
            }
        }

        for (var i = 0; i < items.Count; i++)
        {
            var id = items[i].TransactionId;
            results[i] ??= invalid.TryGetValue(id, out var refused)
                ? Prepared.Refused(refused)
                : ParticipantRules.Answer(known.GetValueOrDefault(id) ?? (await LedgerSql.FindAsync(tx, id, CancellationToken.None))!);
        }

        return results.Select(r => r!.Value).ToList();
    }

    /// <summary><see cref="ParticipantRules.OnClaimLost"/>: what this PREPARE reserved for an id it did not claim is given back.</summary>
    private Task GiveBackAsync(LocalTransaction tx, string transactionId, Reservation reservation) =>
        ParticipantRules.OnClaimLost(reservation.Reserved) == ParticipantAction.Release
            ? resources.ReleaseAsync(tx, transactionId, reservation.Holding, CancellationToken.None)
            : Task.CompletedTask;

    /// <summary>
    /// Write a new row (a PREPARE's claim, an ABORT's tombstone) only if the id has none: <c>ON CONFLICT DO NOTHING</c>
    /// is the rules' "no row" case, checked under the key's lock. False when another writer's row was there first.
    /// </summary>
    private static async Task<bool> InsertIfAbsentAsync(LocalTransaction tx, LedgerEntry row) =>
        await tx.Connection.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO tp_ledger (tx_id, state, reason, holding, created_ms, updated_ms, coordinator_group, coordinator_url)
            VALUES (@Id, @State, @Reason, @Holding, @Now, @Now, @Group, @Url) ON CONFLICT DO NOTHING
            """,
            new { Id = row.TransactionId, State = row.State.ToWire(), row.Reason, row.Holding, Now = UnixMs.From(row.CreatedAt), Group = row.CoordinatorGroup, Url = row.CoordinatorUrl },
            tx.Transaction)) == 1;

    /// <summary>COMMIT, by <see cref="ParticipantRules.OnCommit"/>: prepared becomes committed; repeats are no-ops; anything else is a conflict.</summary>
    public Task<DecisionResult> CommitAsync(string transactionId, CancellationToken cancellationToken) =>
        DecideAsync(transactionId, Decision.Commit, cancellationToken);

    /// <summary>ABORT, by <see cref="ParticipantRules.OnAbort"/>: prepared is released; unknown leaves a tombstone; repeats are no-ops; committed is a conflict.</summary>
    public Task<DecisionResult> AbortAsync(string transactionId, CancellationToken cancellationToken) =>
        DecideAsync(transactionId, Decision.Abort, cancellationToken);

    /// <summary><see cref="CommitAsync"/> or <see cref="AbortAsync"/>, by the decision (<see cref="ParticipantRules.OnDecision"/>).</summary>
    public async Task<DecisionResult> DecideAsync(string transactionId, Decision decision, CancellationToken cancellationToken)
    {
        var commit = decision == Decision.Commit;
        using var activity = TwoPhaseDiagnostics.StartParticipant(commit ? "commit" : "abort", transactionId);
        await hooks.AtAsync(commit ? ProtocolPoint.ParticipantBeforeCommitWritten : ProtocolPoint.ParticipantBeforeAbortWritten, transactionId, cancellationToken);
        // Group commit, and the decisions of the moment together: one UPDATE moves every prepared row at once.
        var kind = commit
            ? _commits ??= new SetWrite<string, DecisionResult>((tx, id) => DecideOneAsync(tx, id, Decision.Commit), (tx, ids) => DecideAllAsync(tx, ids, Decision.Commit))
            : _aborts ??= new SetWrite<string, DecisionResult>((tx, id) => DecideOneAsync(tx, id, Decision.Abort), (tx, ids) => DecideAllAsync(tx, ids, Decision.Abort));
        var result = await db.WriteBatchedAsync(kind, transactionId, cancellationToken);
        await hooks.AtAsync(commit ? ProtocolPoint.ParticipantAfterCommitWritten : ProtocolPoint.ParticipantAfterAbortWritten, transactionId, cancellationToken);
        metrics?.RecordParticipantDecision(decision, result.Conflict);
        return result;
    }

    /// <summary>
    /// One COMMIT (or ABORT): the usual case, the rule's prepared case, in one conditional UPDATE that checks it, moves
    /// the row and learns what it holds, then the domain's commit or release; any other case is decided from the row.
    /// </summary>
    private async Task<DecisionResult> DecideOneAsync(LocalTransaction tx, string transactionId, Decision decision)
    {
        var prepared = ParticipantRules.OnDecision(decision, LedgerState.Prepared);
        if (await MovePreparedAsync(tx, transactionId, prepared) is { } held)
        {
            await ApplyAsync(tx, prepared.Action, held);
            return prepared.Answer;
        }

        return await DecideFromRowAsync(tx, transactionId, decision);
    }

    /// <summary>
    /// The COMMITs (or ABORTs) of one batch, on PostgreSQL: the rule's prepared case for all of them in two statements,
    /// the UPDATE whose <c>WHERE tx_id = ANY(@Ids) AND state = 'prepared'</c> is exactly that case (and moves the rows,
    /// returning what they hold), then the domain's set-oriented commit or release. Every id it does not return is in
    /// another case of the rule (a repeat, an unknown id, a contradiction) and is decided from its row, as alone.
    /// </summary>
    private async Task<IReadOnlyList<DecisionResult>> DecideAllAsync(LocalTransaction tx, IReadOnlyList<string> ids, Decision decision)
    {
        var prepared = ParticipantRules.OnDecision(decision, LedgerState.Prepared);
        var moved = (await LedgerSql.QueryAsync(tx.Connection, new CommandDefinition(
            $"UPDATE tp_ledger SET state = @State, updated_ms = @Now, next_check_ms = NULL WHERE tx_id = ANY(@Ids) AND state = 'prepared' RETURNING {LedgerSql.Columns}",
            new { Ids = ids.Distinct(StringComparer.Ordinal).ToArray(), State = prepared.Answer.State!.Value.ToWire(), Now = UnixMs.From(time.GetUtcNow()) },
            tx.Transaction))).ToDictionary(r => r.TransactionId, StringComparer.Ordinal);
        if (moved.Count > 0)
        {
            var held = moved.Values.ToList();
            await (prepared.Action == ParticipantAction.ApplyCommit
                ? resources.CommitManyAsync(tx, held, CancellationToken.None)
                : resources.ReleaseManyAsync(tx, held, CancellationToken.None));
        }

        var results = new List<DecisionResult>(ids.Count);
        foreach (var id in ids)
        {
            results.Add(moved.ContainsKey(id) ? prepared.Answer : await DecideFromRowAsync(tx, id, decision));
        }

        return results;
    }

    /// <summary>
    /// A COMMIT or ABORT decided from the row as it stands (<see cref="ParticipantRules.OnDecision"/>), once the plain
    /// prepared case missed. Another writer may move the row between our look and our write (PostgreSQL, read
    /// committed): a PREPARE that committed while our tombstone INSERT waited on its key, or a decision that took the
    /// row lock first. Then the write changes nothing and we look again; rows only move forward, so this ends.
    /// </summary>
    private async Task<DecisionResult> DecideFromRowAsync(LocalTransaction tx, string transactionId, Decision decision)
    {
        for (var look = 1; look <= MaxLooks; look++)
        {
            var row = await LedgerSql.FindAsync(tx, transactionId, CancellationToken.None);
            var step = ParticipantRules.OnDecision(decision, row?.State);
            switch (step.Action)
            {
                case ParticipantAction.ApplyCommit or ParticipantAction.Release:
                    if (await MovePreparedAsync(tx, transactionId, step) is { } held)
                    {
                        await ApplyAsync(tx, step.Action, held);
                        return step.Answer;
                    }

                    break;
                case ParticipantAction.WriteTombstone:
                    // Unknown here: a tombstone, so a PREPARE arriving late votes no.
                    if (await InsertIfAbsentAsync(tx, ParticipantRules.Tombstone(transactionId, time.GetUtcNow())))
                    {
                        return step.Answer;
                    }

                    break;
                default:
                    // AnswerFromLedger (a repeat) or Conflict (the message contradicts a final row): nothing to write.
                    return step.Answer;
            }
        }

        throw new InvalidOperationException($"The ledger row of {transactionId} kept moving under a {decision} ({MaxLooks} looks); rows only move forward, so this is a bug.");
    }

    /// <summary>
    /// The rule's prepared case of a COMMIT or ABORT (<paramref name="step"/>), carried out in one conditional UPDATE:
    /// <c>WHERE state = 'prepared'</c> is that case, <c>SET state</c> the rule's new state, and RETURNING what was held;
    /// null when the row is in any other case (absent, or final). The row lock it takes serialises concurrent decisions.
    /// </summary>
    private async Task<LedgerEntry?> MovePreparedAsync(LocalTransaction tx, string transactionId, DecisionStep step) =>
        await LedgerSql.QuerySingleAsync(tx.Connection, new CommandDefinition(
            $"UPDATE tp_ledger SET state = @State, updated_ms = @Now, next_check_ms = NULL WHERE tx_id = @Id AND state = 'prepared' RETURNING {LedgerSql.Columns}",
            new { Id = transactionId, State = step.Answer.State!.Value.ToWire(), Now = UnixMs.From(time.GetUtcNow()) },
            tx.Transaction));

    /// <summary>The domain's half of <see cref="ParticipantAction.ApplyCommit"/> or <see cref="ParticipantAction.Release"/>.</summary>
    private Task ApplyAsync(LocalTransaction tx, ParticipantAction action, LedgerEntry held) =>
        action == ParticipantAction.ApplyCommit
            ? resources.CommitAsync(tx, held.TransactionId, held.Holding, CancellationToken.None)
            : resources.ReleaseAsync(tx, held.TransactionId, held.Holding, CancellationToken.None);

    /// <summary>The ledger row of one transaction, or null if this participant never saw it.</summary>
    public Task<LedgerEntry?> FindAsync(string transactionId, CancellationToken cancellationToken) =>
        db.ReadAsync(
            connection => LedgerSql.QuerySingleAsync(connection, new CommandDefinition(
                $"SELECT {LedgerSql.Columns} FROM tp_ledger WHERE tx_id = @Id", new { Id = transactionId }, cancellationToken: cancellationToken)),
            cancellationToken);

    /// <summary>Ledger rows by transaction id after <paramref name="after"/>, at most <paramref name="limit"/>: keyset paging for the admin views.</summary>
    public Task<IReadOnlyList<LedgerEntry>> ListAsync(string? after, int limit, CancellationToken cancellationToken) =>
        QueryAsync($"SELECT {LedgerSql.Columns} FROM tp_ledger WHERE tx_id > @After ORDER BY tx_id LIMIT @Limit", new { After = after ?? string.Empty, Limit = limit }, cancellationToken);

    /// <summary>Rows still prepared, oldest first.</summary>
    public Task<IReadOnlyList<LedgerEntry>> ListPreparedAsync(int limit, CancellationToken cancellationToken) =>
        QueryAsync($"SELECT {LedgerSql.Columns} FROM tp_ledger WHERE state = 'prepared' ORDER BY created_ms LIMIT @Limit", new { Limit = limit }, cancellationToken);

    /// <summary>
    /// The rows <see cref="InDoubtRules.IsDue"/> at <paramref name="now"/> for an in-doubt timeout of
    /// <c>now - preparedBefore</c>, oldest first: the WHERE clause is the rule, term by term (still prepared; claimed
    /// at or before <paramref name="preparedBefore"/>; no next check set, or its time has come).
    /// </summary>
    public Task<IReadOnlyList<LedgerEntry>> FindInDoubtAsync(DateTimeOffset preparedBefore, DateTimeOffset now, int limit, CancellationToken cancellationToken) =>
        QueryAsync(
            $"SELECT {LedgerSql.Columns} FROM tp_ledger WHERE state = 'prepared' AND created_ms <= @Before AND (next_check_ms IS NULL OR next_check_ms <= @Now) ORDER BY created_ms LIMIT @Limit",
            new { Before = UnixMs.From(preparedBefore), Now = UnixMs.From(now), Limit = limit },
            cancellationToken);

    /// <summary>
    /// <see cref="InDoubtAction.AskAgain"/>: the row stays prepared, holding, and is asked about again at
    /// <paramref name="nextCheckAt"/> (<see cref="InDoubtRules.NextCheck"/>). <c>AND state = 'prepared'</c>: a row decided
    /// meanwhile is left as it is. Not forced: a lost schedule only means an earlier question.
    /// </summary>
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
        db.ReadAsync(connection => LedgerSql.QueryAsync(connection, new CommandDefinition(sql, args, cancellationToken: cancellationToken)), cancellationToken);
}
