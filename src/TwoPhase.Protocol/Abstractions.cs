namespace TwoPhase.Protocol;

/// <summary>The coordinator's durable decision log.</summary>
public interface IDecisionLog
{
    /// <summary>
    /// Record a new transaction as preparing. When the idempotency key is already taken, nothing is
    /// written and the existing record is returned instead. Not forced: a lost preparing row is a lost
    /// transaction, which presumed abort answers "aborted"; a later forced write (a commit, a forced abort)
    /// makes it durable with itself, since both stores flush their log in order.
    /// </summary>
    /// <param name="request">What to run.</param>
    /// <param name="deadline">When the prepares must have answered, on the caller's clock; kept as <see cref="TransactionRecord.Deadline"/>.</param>
    /// <param name="abandonAt">
    /// From when the transaction is abandoned: the log refuses its commit and <see cref="FindAbandonedAsync"/>
    /// returns it. Given on the caller's clock; the log judges both by one clock of its own (a database server's),
    /// recording the same distance from its own now, so commit and recovery's abort never overlap in time.
    /// </param>
    /// <param name="cancellationToken">Stops the write.</param>
    Task<(TransactionRecord Record, bool Created)> BeginAsync(TransactionRequest request, DateTimeOffset deadline, DateTimeOffset abandonAt, CancellationToken cancellationToken);

    /// <summary>
    /// Write the decision if the transaction is still preparing; returns the record as it stands: another writer
    /// (recovery aborting it, a duplicate) may have won, and then its decision stands.
    /// A commit is forced to disk before this returns, and taken only while the transaction is not abandoned
    /// (see <c>abandonAt</c> of <see cref="BeginAsync"/>, judged by the log's clock when the write runs): a commit
    /// refused for that returns the record still preparing, and the caller must abort it.
    /// An abort is forced only when <paramref name="abortDurability"/> says so: it must be whenever something
    /// follows that someone could act on (ABORTs sent by recovery or an operator, an answer under an idempotency
    /// key). The live coordinator's own abort need not be: nobody else would ever commit it (presumed abort).
    /// <paramref name="nextAttemptAt"/> is when recovery may re-drive phase 2 if nobody completes it first (given on the
    /// caller's clock; the log records the same distance from its own now): until then the transaction is the deciding
    /// replica's, which the log records as its owner.
    /// </summary>
    Task<TransactionRecord> DecideAsync(string id, Decision decision, string? reason, IReadOnlyList<Vote> votes, DateTimeOffset nextAttemptAt, Durability abortDurability, CancellationToken cancellationToken);

    /// <summary>
    /// Record acknowledgements; when <paramref name="complete"/>, mark the transaction completed. The recorded list only
    /// grows (two rounds racing each add theirs) and a completed transaction is left as it is. Not forced: a lost
    /// acknowledgement costs one more, idempotent, phase-2 round.
    /// </summary>
    Task AcknowledgeAsync(string id, IReadOnlyCollection<string> acknowledged, bool complete, CancellationToken cancellationToken);

    /// <summary>
    /// Record participants that refused the decision (409: their ledger contradicts a durable decision, a protocol
    /// violation only a person can resolve), with the acknowledgements so far; both lists only grow. Forced. The
    /// coordinator sends those participants the decision no more; when <paramref name="settled"/> (every participant
    /// acknowledged or refused) recovery stops re-driving the transaction. It is never marked completed: it stays
    /// among the unfinished, visible, until a person resolves it.
    /// </summary>
    Task RecordConflictsAsync(string id, IReadOnlyCollection<string> acknowledged, IReadOnlyCollection<string> conflicts, bool settled, CancellationToken cancellationToken);

    /// <summary>
    /// Count a failed phase-2 round and when to try next (given on the caller's clock; the log records the same distance
    /// from its own now). Only while the transaction is still this replica's, or nobody's: a replica whose lease ran out
    /// and was taken over must not shorten the new owner's lease.
    /// </summary>
    Task ScheduleRetryAsync(string id, DateTimeOffset nextAttemptAt, CancellationToken cancellationToken);

    /// <summary>The transaction's record as it stands; null when this log never began it (presumed abort answers "aborted").</summary>
    Task<TransactionRecord?> FindAsync(string id, CancellationToken cancellationToken);

    /// <summary>The transaction begun under the client's idempotency key <paramref name="key"/>; null when none was.</summary>
    Task<TransactionRecord?> FindByIdempotencyKeyAsync(string key, CancellationToken cancellationToken);

    /// <summary>
    /// Preparing and abandoned (their <c>abandonAt</c> reached, judged by the log's clock, the same clock that refuses
    /// their commit), oldest first, at most <paramref name="limit"/>.
    /// </summary>
    Task<IReadOnlyList<TransactionRecord>> FindAbandonedAsync(int limit, CancellationToken cancellationToken);

    /// <summary>
    /// Claim, for this log's replica, decided transactions not completed, not settled by conflicts and due for another
    /// phase-2 round, oldest first, at most <paramref name="limit"/>: one write that makes this replica their owner and
    /// moves their next attempt <paramref name="lease"/> past the log's clock, so that no other replica sharing the log
    /// claims them before that (their lease). Due is judged by the log's clock, the one every replica shares, never
    /// the caller's. Two claims at once never return the same transaction; a lease that runs out (its claimer died,
    /// stalled or was cut off) makes the transaction due again for any replica. Not forced: a lost claim is only a
    /// transaction due again.
    /// </summary>
    /// <param name="lease">How long the claimed transactions are this replica's, on the log's clock.</param>
    /// <param name="limit">At most this many.</param>
    /// <param name="cancellationToken">Stops the write.</param>
    Task<IReadOnlyList<TransactionRecord>> ClaimDueAsync(TimeSpan lease, int limit, CancellationToken cancellationToken);

    /// <summary>Every transaction not completed (preparing or decided), oldest first, at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<TransactionRecord>> ListUnfinishedAsync(int limit, CancellationToken cancellationToken);

    /// <summary>Transactions in id order after <paramref name="after"/>.</summary>
    Task<IReadOnlyList<TransactionRecord>> ListAsync(string? after, int limit, CancellationToken cancellationToken);
}

/// <summary>How the coordinator talks to participants.</summary>
public interface IParticipantTransport
{
    /// <summary>Send PREPARE; never throws for a participant's failure, answers <see cref="VoteKind.None"/> instead.</summary>
    Task<Vote> PrepareAsync(ParticipantRef participant, string transactionId, string payload, CancellationToken cancellationToken);

    /// <summary>Send COMMIT or ABORT; never throws for a participant's failure, answers <see cref="AckKind.Failed"/> instead.</summary>
    Task<Ack> SendDecisionAsync(ParticipantRef participant, string transactionId, Decision decision, string payload, CancellationToken cancellationToken);
}

/// <summary>The points of the protocol where a test may observe or inject a fault (crash, delay).</summary>
/// <remarks>
/// The values are a public list that fault-injection tests enumerate to cover every point; a new point is added at
/// the end so that the existing numbers keep their meaning.
/// </remarks>
public enum ProtocolPoint
{
    /// <summary>The coordinator has written <c>preparing</c> and sent no PREPARE yet.</summary>
    CoordinatorAfterPreparingWritten,

    /// <summary>Every PREPARE is on its way (started, in parallel); no vote is awaited yet.</summary>
    CoordinatorAfterPreparesSent,

    /// <summary>The votes are counted; the decision is not yet written (a crash here is presumed abort).</summary>
    CoordinatorBeforeDecisionWritten,

    /// <summary>The decision is durable; no participant has been told yet.</summary>
    CoordinatorAfterDecisionWritten,

    /// <summary>Between two participants' COMMIT or ABORT: some have been told the decision, others not.</summary>
    CoordinatorBetweenPhaseTwoSends,

    /// <summary>Every participant acknowledged; <c>completed</c> is not yet written (recovery re-drives phase 2).</summary>
    CoordinatorBeforeCompletedWritten,

    /// <summary>A participant has a PREPARE and has written nothing for it yet.</summary>
    ParticipantBeforePrepareWritten,

    /// <summary>The participant's reservation and its <c>prepared</c> or <c>refused</c> row are committed; the vote is not yet sent.</summary>
    ParticipantAfterPrepareWritten,

    /// <summary>After <see cref="ParticipantAfterPrepareWritten"/>, as the vote is handed back to be answered.</summary>
    ParticipantBeforePrepareAnswered,

    /// <summary>A participant has a COMMIT and has not yet applied it.</summary>
    ParticipantBeforeCommitWritten,

    /// <summary>The participant's commit is durable; the acknowledgement is not yet sent.</summary>
    ParticipantAfterCommitWritten,

    /// <summary>A participant has an ABORT and has not yet released (or tombstoned) it.</summary>
    ParticipantBeforeAbortWritten,

    /// <summary>The participant's abort (release or tombstone) is durable; the acknowledgement is not yet sent.</summary>
    ParticipantAfterAbortWritten,
}

/// <summary>Called at every <see cref="ProtocolPoint"/>; production uses a no-op.</summary>
public interface IProtocolHooks
{
    /// <summary>
    /// Runs when the protocol reaches <paramref name="point"/> for <paramref name="transactionId"/>, before it goes on.
    /// A test may wait here, throw, or end the process; whatever it does happens at exactly that point.
    /// </summary>
    /// <param name="point">Where the protocol is.</param>
    /// <param name="transactionId">The transaction it is at.</param>
    /// <param name="cancellationToken">The request's or worker's token.</param>
    ValueTask AtAsync(ProtocolPoint point, string transactionId, CancellationToken cancellationToken);
}

/// <summary>The hooks of production: every point passes at once.</summary>
public sealed class NoProtocolHooks : IProtocolHooks
{
    /// <summary>The one instance there needs to be; the class has no state.</summary>
    public static readonly NoProtocolHooks Instance = new();

    /// <inheritdoc />
    public ValueTask AtAsync(ProtocolPoint point, string transactionId, CancellationToken cancellationToken) => ValueTask.CompletedTask;
}
