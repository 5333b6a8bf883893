namespace TwoPhase.Protocol;

/// <summary>The coordinator's durable decision log.</summary>
public interface IDecisionLog
{
    /// <summary>
    /// Record a new transaction as preparing. When the idempotency key is already taken, nothing is
    /// written and the existing record is returned instead.
    /// </summary>
    Task<(TransactionRecord Record, bool Created)> BeginAsync(TransactionRequest request, DateTimeOffset deadline, CancellationToken cancellationToken);

    /// <summary>
    /// Write the decision if the transaction is still preparing; returns the record as it stands
    /// (another writer, e.g. recovery aborting it past its deadline, may have won). A commit is forced
    /// to disk before this returns; an abort need not be (presumed abort makes a lost abort harmless).
    /// <paramref name="nextAttemptAt"/> is when recovery may re-drive phase 2 if nobody completes it first.
    /// </summary>
    Task<TransactionRecord> DecideAsync(string id, Decision decision, string? reason, IReadOnlyList<Vote> votes, DateTimeOffset nextAttemptAt, CancellationToken cancellationToken);

    /// <summary>Record acknowledgements; when <paramref name="complete"/>, mark the transaction completed.</summary>
    Task AcknowledgeAsync(string id, IReadOnlyCollection<string> acknowledged, bool complete, CancellationToken cancellationToken);

    /// <summary>Count a failed phase-2 round and when to try next.</summary>
    Task ScheduleRetryAsync(string id, DateTimeOffset nextAttemptAt, CancellationToken cancellationToken);

    Task<TransactionRecord?> FindAsync(string id, CancellationToken cancellationToken);

    Task<TransactionRecord?> FindByIdempotencyKeyAsync(string key, CancellationToken cancellationToken);

    /// <summary>Preparing past their deadline, at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<TransactionRecord>> FindAbandonedAsync(DateTimeOffset now, int limit, CancellationToken cancellationToken);

    /// <summary>Decided, not completed, due for another phase-2 round, at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<TransactionRecord>> FindUnfinishedDueAsync(DateTimeOffset now, int limit, CancellationToken cancellationToken);

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
public enum ProtocolPoint
{
    CoordinatorAfterPreparingWritten,
    CoordinatorAfterPreparesSent,
    CoordinatorBeforeDecisionWritten,
    CoordinatorAfterDecisionWritten,
    CoordinatorBetweenPhaseTwoSends,
    CoordinatorBeforeCompletedWritten,
    ParticipantBeforePrepareWritten,
    ParticipantAfterPrepareWritten,
    ParticipantBeforePrepareAnswered,
    ParticipantBeforeCommitWritten,
    ParticipantAfterCommitWritten,
    ParticipantBeforeAbortWritten,
    ParticipantAfterAbortWritten,
}

/// <summary>Called at every <see cref="ProtocolPoint"/>; production uses a no-op.</summary>
public interface IProtocolHooks
{
    ValueTask AtAsync(ProtocolPoint point, string transactionId, CancellationToken cancellationToken);
}

public sealed class NoProtocolHooks : IProtocolHooks
{
    public static readonly NoProtocolHooks Instance = new();

    public ValueTask AtAsync(ProtocolPoint point, string transactionId, CancellationToken cancellationToken) => ValueTask.CompletedTask;
}
