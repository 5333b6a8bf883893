namespace TwoPhase.Protocol;

/// <summary>Bounds of the coordinator; defaults from DESIGN §2.</summary>
public sealed class CoordinatorSettings
{
    /// <summary>How long PREPAREs may take, all together, before the transaction aborts.</summary>
    public TimeSpan PrepareDeadline { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How long one COMMIT or ABORT send may take.</summary>
    public TimeSpan DecisionTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>First delay before re-sending an unacknowledged decision.</summary>
    public TimeSpan RetryInitialDelay { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Cap of the doubling delay between re-sends.</summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a duplicate request (same idempotency key) waits for the first one's decision.</summary>
    public TimeSpan DuplicateWait { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Transactions handled per recovery scan.</summary>
    public int RecoveryBatchSize { get; set; } = 256;

    /// <summary>
    /// How long past its deadline a preparing transaction is left to the coordinator running it before
    /// recovery aborts it. Without it, recovery races the live coordinator at the deadline and the client's
    /// answer loses the votes that say which participant missed it (the outcome, an abort, is the same).
    /// </summary>
    public TimeSpan AbandonGrace { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Phase-2 rounds run at once by one recovery scan.</summary>
    public int RecoveryParallelism { get; set; } = 16;

    /// <summary>
    /// How long a replica that claimed a due transaction for recovery holds it before another replica sharing the
    /// decision log may claim it (docs/recovery.md, "Replicas and leases"). Recovery claims at most
    /// <see cref="RecoveryParallelism"/> at a time, so that each claimed round runs within its lease; it should exceed
    /// <see cref="DecisionTimeout"/>, the longest one send of a round may take.
    /// </summary>
    public TimeSpan RecoveryLease { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Answer the caller as soon as the decision is durable; the first phase-2 round then runs in the background
    /// (bounded by <see cref="MaxBackgroundPhaseTwo"/>, each send by <see cref="DecisionTimeout"/>), and recovery
    /// re-drives it if this process dies first. The answer lists only the acknowledgements received by then (none for a
    /// new transaction). Off (the default): the answer waits for that first round.
    /// </summary>
    public bool AnswerAfterDecision { get; set; }

    /// <summary>
    /// With <see cref="AnswerAfterDecision"/>: phase-2 rounds run in the background at once; beyond it, a transaction's
    /// answer waits for its own round, as without the option.
    /// </summary>
    public int MaxBackgroundPhaseTwo { get; set; } = 1024;
}

/// <summary>
/// Presumed-abort two-phase commit, the coordinator's side (DESIGN §2). Knows nothing of HTTP or SQL:
/// the log, the transport, the clock and the fault hooks are given.
/// </summary>
public sealed class TwoPhaseCoordinator(
    IDecisionLog log,
    IParticipantTransport transport,
    IReadOnlyDictionary<string, ParticipantRef> directory,
    CoordinatorSettings settings,
    TimeProvider time,
    IProtocolHooks hooks,
    TwoPhaseMetrics? metrics = null,
    // The retry backoff's jitter, Random.Shared unless given: the deterministic simulator passes one seeded from
    // its history's seed, so that a seed replays step for step (docs/simulation.md).
    Random? jitter = null)
{
    /// <summary>The deadlines and limits this coordinator runs with, for callers that size their own waits by them.</summary>
    public CoordinatorSettings Settings => settings;

    /// <summary>
    /// Run one transaction to a durable decision and one round of phase 2. Returns once the decision is
    /// durable. A request whose idempotency key is taken runs nothing and reports the first one's outcome.
    /// </summary>
    /// <param name="request">What to run.</param>
    /// <param name="cancellationToken">Stops waiting; pass the host's stopping token, not a client's request
    /// token: a client that hangs up must not leave a transaction half driven.</param>
    public async Task<(TransactionOutcome Outcome, bool Created)> ExecuteAsync(TransactionRequest request, CancellationToken cancellationToken)
    {
        foreach (var participant in request.Participants)
        {
            if (!directory.ContainsKey(participant.Name))
            {
                throw new ArgumentException($"Participant '{participant.Name}' is not in the coordinator's directory.", nameof(request));
            }

            if (!request.Payloads.ContainsKey(participant.Name))
            {
                throw new ArgumentException($"Participant '{participant.Name}' has no payload.", nameof(request));
            }
        }

        // A payload for someone who takes no part would be kept and never sent: the caller's mistake, said at once.
        if (request.Payloads.Keys.FirstOrDefault(name => !request.Participants.Any(p => p.Name == name)) is { } stray)
        {
            throw new ArgumentException($"The payload for '{stray}' names no participant of the transaction.", nameof(request));
        }

        using var activity = TwoPhaseDiagnostics.StartTransaction(request.Id);
        using var inFlight = TwoPhaseMetrics.InFlight(metrics);
        var started = time.GetTimestamp();
        var deadline = time.GetUtcNow() + settings.PrepareDeadline;
        var (record, created) = await log.BeginAsync(request, deadline, deadline + settings.AbandonGrace, cancellationToken);
        if (!created)
        {
            return (await WaitForDecisionAsync(record, cancellationToken), false);
        }

        await hooks.AtAsync(ProtocolPoint.CoordinatorAfterPreparingWritten, request.Id, cancellationToken);

        var votes = await PrepareAllAsync(request, deadline, cancellationToken);
        var names = request.Participants.Select(p => p.Name).ToArray();
        var (decision, reason) = CoordinatorRules.Decide(names, votes);

        await hooks.AtAsync(ProtocolPoint.CoordinatorBeforeDecisionWritten, request.Id, cancellationToken);
        // What a client is told under an idempotency key must survive a crash: its retry would otherwise find
        // nothing and run a second transaction, which may commit after the first answer said "aborted".
        var abortDurability = request.IdempotencyKey is null ? Durability.Relaxed : Durability.Forced;
        var decided = await DecideAsync(request.Id, decision, reason, votes, abortDurability, cancellationToken);
        var refused = decision == Decision.Commit && decided.State == TransactionState.Preparing;
        if (refused)
        {
            // The log refused the commit: this coordinator stalled past deadline + grace (a pause, a slow disk), so
            // recovery may already have aborted it and sent ABORTs, and that abort may since have been lost. Abort it
            // for good ourselves, forced, and say so; never "committed".
            reason = $"prepare deadline of {settings.PrepareDeadline.TotalMilliseconds:0} ms and its grace passed before the commit was written";
            decision = Decision.Abort;
            decided = await DecideAsync(request.Id, decision, reason, votes, Durability.Forced, cancellationToken);
        }

        metrics?.RecordDecision(decided, decision, reason, abandoned: refused);
        await hooks.AtAsync(ProtocolPoint.CoordinatorAfterDecisionWritten, request.Id, cancellationToken);

        activity?.SetTag("twophase.outcome", decided.State.ToWire());
        if (settings.AnswerAfterDecision && TryDriveInBackground(decided, started, cancellationToken))
        {
            // The decision is durable and phase 2 is under way: the answer says only what is acknowledged so far.
            return (new TransactionOutcome(request.Id, decided.State, decided.Reason, decided.Votes, decided.Acknowledged), true);
        }

        var acknowledged = await DriveAsync(decided, cancellationToken);
        metrics?.RecordTransaction(decided.State, time.GetElapsedTime(started));
        return (new TransactionOutcome(request.Id, decided.State, decided.Reason, decided.Votes, acknowledged), true);
    }

    private int _backgroundRounds;

    /// <summary>Phase-2 rounds running in the background now (<see cref="CoordinatorSettings.AnswerAfterDecision"/>).</summary>
    public int BackgroundPhaseTwo => Volatile.Read(ref _backgroundRounds);

    /// <summary>
    /// Start the first phase-2 round without waiting for it, if fewer than <see cref="CoordinatorSettings.MaxBackgroundPhaseTwo"/>
    /// run. Its failure is left to recovery: the decision is durable and its row falls due (DecideAsync's recover-after).
    /// </summary>
    private bool TryDriveInBackground(TransactionRecord decided, long started, CancellationToken cancellationToken)
    {
        if (Interlocked.Increment(ref _backgroundRounds) > settings.MaxBackgroundPhaseTwo)
        {
            Interlocked.Decrement(ref _backgroundRounds);
            return false;
        }

        // Not awaited, on the caller's scheduler (the simulator's in its runs); it catches all it throws.
        _ = DriveInBackgroundAsync(decided, started, cancellationToken);
        return true;
    }

    private async Task DriveInBackgroundAsync(TransactionRecord decided, long started, CancellationToken cancellationToken)
    {
        try
        {
            // Off the caller's stack first: the answer goes back before any PHASE-2 send is made.
            await Task.Yield();
            await DriveAsync(decided, cancellationToken);
            metrics?.RecordTransaction(decided.State, time.GetElapsedTime(started));
        }
        catch (Exception)
        {
            // A host stopping, a log or transport failure, a crash point: the decision is durable, recovery re-drives it.
        }
        finally
        {
            Interlocked.Decrement(ref _backgroundRounds);
        }
    }

    private async Task<TransactionRecord> DecideAsync(string id, Decision decision, string? reason, IReadOnlyList<Vote> votes, Durability abortDurability, CancellationToken cancellationToken)
    {
        // Recovery re-drives phase 2 only if this round has not completed it by then.
        var recoverAfter = time.GetUtcNow() + (settings.DecisionTimeout * 2);
        using var phase = new PhaseScope(metrics, time, "decide", id);
        return await log.DecideAsync(id, decision, reason, votes, recoverAfter, abortDurability, cancellationToken);
    }

    private async Task<IReadOnlyList<Vote>> PrepareAllAsync(TransactionRequest request, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        using var phase = new PhaseScope(metrics, time, "prepare", request.Id);
        // On the injected clock, so tests can pass the deadline; a begin slower than the whole deadline
        // leaves no time at all (zero, not negative) and the prepares abort at once.
        var remaining = deadline - time.GetUtcNow();
        using var deadlineTimer = new CancellationTokenSource(remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero, time);
        using var deadlineCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadlineTimer.Token);
        var sends = request.Participants
            .Select(p => PrepareOneAsync(p, request, deadlineCts.Token))
            .ToArray();
        await hooks.AtAsync(ProtocolPoint.CoordinatorAfterPreparesSent, request.Id, cancellationToken);
        return await Task.WhenAll(sends);
    }

    private async Task<Vote> PrepareOneAsync(ParticipantRef participant, TransactionRequest request, CancellationToken deadline)
    {
        try
        {
            return await transport.PrepareAsync(participant, request.Id, request.Payloads[participant.Name], deadline);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            return new Vote(participant.Name, VoteKind.None, $"prepare deadline of {settings.PrepareDeadline.TotalMilliseconds:0} ms passed");
        }
    }

    /// <summary>
    /// One phase-2 round: send the decision to every participant that has not acknowledged, record who did,
    /// mark the transaction completed when all have, else schedule the next round with backoff.
    /// Returns the participants that have acknowledged so far.
    /// </summary>
    public async Task<IReadOnlyList<string>> DriveAsync(TransactionRecord record, CancellationToken cancellationToken)
    {
        if (record.IsCompleted)
        {
            return record.Participants;
        }

        var decision = CoordinatorRules.ToDecision(record.State);
        using var phase = new PhaseScope(metrics, time, decision == Decision.Commit ? "commit" : "abort", record.Id);
        // A participant that refused (409) is sent the decision no more: resending cannot change its ledger.
        var pending = record.Participants.Except(record.Acknowledged).Except(record.Conflicts).ToList();
        // Each its own payload, as at PREPARE: the old protocol's dialect builds COMMIT and ROLLBACK from it.
        var sends = pending.Select(name => SendDecisionAsync(name, record.Id, decision, record.PayloadOf(name), cancellationToken)).ToList();
        var acks = new List<Ack>(sends.Count);
        while (sends.Count > 0)
        {
            var done = await Task.WhenAny(sends);
            sends.Remove(done);
            acks.Add(await done);
            if (sends.Count > 0 && acks.Count == 1)
            {
                await hooks.AtAsync(ProtocolPoint.CoordinatorBetweenPhaseTwoSends, record.Id, cancellationToken);
            }
        }

        var acknowledged = Grow(record.Acknowledged, acks, AckKind.Acknowledged);
        var conflicts = Grow(record.Conflicts, acks, AckKind.Conflict);
        if (acknowledged.Count == record.Participants.Count)
        {
            await hooks.AtAsync(ProtocolPoint.CoordinatorBeforeCompletedWritten, record.Id, cancellationToken);
            await log.AcknowledgeAsync(record.Id, acknowledged, complete: true, cancellationToken);
            return acknowledged;
        }

        // Everyone answered, some with a refusal: nothing is left to send. Terminal, but not completed: the
        // transaction stays among the unfinished, for a person (docs/recovery.md).
        var settled = acknowledged.Count + conflicts.Count == record.Participants.Count;
        if (conflicts.Count > record.Conflicts.Count || (settled && record.SettledAt is null))
        {
            metrics?.RecordConflicts(conflicts.Count - record.Conflicts.Count);
            await log.RecordConflictsAsync(record.Id, acknowledged, conflicts, settled, cancellationToken);
        }
        else if (acknowledged.Count > record.Acknowledged.Count)
        {
            await log.AcknowledgeAsync(record.Id, acknowledged, complete: false, cancellationToken);
        }

        if (!settled)
        {
            var delay = Backoff.Delay(record.Attempts + 1, settings.RetryInitialDelay, settings.RetryMaxDelay, (jitter ?? Random.Shared).NextDouble());
            await log.ScheduleRetryAsync(record.Id, time.GetUtcNow() + delay, cancellationToken);
        }

        return acknowledged;
    }

    /// <summary>The participants already recorded plus those that answered <paramref name="kind"/> this round.</summary>
    private static List<string> Grow(IReadOnlyList<string> recorded, List<Ack> acks, AckKind kind) =>
        recorded.Concat(acks.Where(a => a.Kind == kind).Select(a => a.Participant)).Distinct().ToList();

    private async Task<Ack> SendDecisionAsync(string name, string transactionId, Decision decision, string payload, CancellationToken cancellationToken)
    {
        if (!directory.TryGetValue(name, out var participant))
        {
            return new Ack(name, AckKind.Failed, $"participant '{name}' is not configured");
        }

        using var timer = new CancellationTokenSource(settings.DecisionTimeout, time);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token);
        try
        {
            return await transport.SendDecisionAsync(participant, transactionId, decision, payload, timeout.Token);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return new Ack(name, AckKind.Failed, "decision send timed out");
        }
    }

    /// <summary>
    /// One recovery scan (DESIGN §2): abort what is preparing past its deadline, re-drive decided
    /// transactions not yet completed. Returns how many transactions it touched.
    /// </summary>
    public async Task<int> RecoverOnceAsync(CancellationToken cancellationToken)
    {
        var touched = 0;
        // Abandoned by the log's clock: the same clock and moment from which the log refuses the commit, so this
        // abort and a late commit are never both possible.
        foreach (var abandoned in await log.FindAbandonedAsync(settings.RecoveryBatchSize, cancellationToken))
        {
            await AbortAbandonedAsync(abandoned, cancellationToken);
            touched++;
        }

        // Claimed, not just found: each claim makes the due transactions this replica's for RecoveryLease on the log's
        // clock, so replicas sharing the log divide the work and re-drive a transaction one at a time. A claim takes no
        // more than one parallel pass can drive, so that a claimed round is not still waiting its turn when its lease
        // runs out and another replica claims it too.
        var redriven = 0;
        while (redriven < settings.RecoveryBatchSize && !cancellationToken.IsCancellationRequested)
        {
            var limit = Math.Min(settings.RecoveryParallelism, settings.RecoveryBatchSize - redriven);
            var due = await log.ClaimDueAsync(settings.RecoveryLease, limit, cancellationToken);
            metrics?.RecordRedrives(due.Count);
            await Parallel.ForEachAsync(
                due,
                // On the caller's scheduler (the thread pool's in a host): the simulator runs every round on its own, one seed one history.
                new ParallelOptions { MaxDegreeOfParallelism = settings.RecoveryParallelism, CancellationToken = cancellationToken, TaskScheduler = TaskScheduler.Current },
                async (record, ct) => await DriveAsync(record, ct));
            redriven += due.Count;
            if (due.Count < limit)
            {
                break;
            }
        }

        return touched + redriven;
    }

    /// <summary>
    /// Abort a transaction nobody decided in time. Forced: ABORTs follow (and the decision query answers "aborted"),
    /// so participants release what they hold; were this abort lost in a crash of the log's database, the row would
    /// be preparing again and a stalled coordinator could still commit what they had aborted.
    /// Conditional, like every decision write: if the live coordinator decided first, its decision stands.
    /// </summary>
    private async Task<TransactionRecord> AbortAbandonedAsync(TransactionRecord abandoned, CancellationToken cancellationToken)
    {
        var reason = $"prepare deadline of {settings.PrepareDeadline.TotalMilliseconds:0} ms passed before a decision";
        // Due at once: the next phase-2 pass sends the ABORTs.
        var standing = await log.DecideAsync(abandoned.Id, Decision.Abort, reason, abandoned.Votes, time.GetUtcNow(), Durability.Forced, cancellationToken);
        // Write first, then count: a null-conditional call would skip the write along with its arguments.
        metrics?.RecordDecision(standing, Decision.Abort, reason, abandoned: true);
        return standing;
    }

    /// <summary>
    /// Re-drive one transaction now, whatever its backoff says; a transaction preparing past its deadline and grace
    /// is aborted first (forced). A participant that refused the decision (409) is not sent it again: that needs a
    /// person at the participant, not another message.
    /// </summary>
    public async Task<TransactionRecord?> RetryNowAsync(string id, CancellationToken cancellationToken)
    {
        var record = await log.FindAsync(id, cancellationToken);
        if (record is null)
        {
            return null;
        }

        if (CoordinatorRules.IsAbandoned(record, time.GetUtcNow(), settings.AbandonGrace))
        {
            record = await AbortAbandonedAsync(record, cancellationToken);
        }

        if (record is { State: not TransactionState.Preparing, IsCompleted: false })
        {
            await DriveAsync(record, cancellationToken);
        }

        return await log.FindAsync(id, cancellationToken);
    }

    private async Task<TransactionOutcome> WaitForDecisionAsync(TransactionRecord record, CancellationToken cancellationToken)
    {
        var giveUp = time.GetUtcNow() + settings.DuplicateWait;
        var current = record;
        while (current.State == TransactionState.Preparing && time.GetUtcNow() < giveUp)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(20), time, cancellationToken);
            current = await log.FindAsync(record.Id, cancellationToken) ?? current;
        }

        return new TransactionOutcome(current.Id, current.State, current.Reason, current.Votes, current.Acknowledged) { Replayed = true };
    }
}
