namespace TwoPhase.Protocol;

/// <summary>The coordinator's decisions as plain functions of what it knows.</summary>
public static class CoordinatorRules
{
    /// <summary>Commit only on all-yes; otherwise abort, naming the first participant that did not vote yes.</summary>
    public static (Decision Decision, string? Reason) Decide(IReadOnlyCollection<string> participants, IReadOnlyList<Vote> votes)
    {
        foreach (var name in participants)
        {
            var vote = votes.FirstOrDefault(v => v.Participant == name);
            if (vote is null)
            {
                return (Decision.Abort, $"{name} did not vote");
            }

            if (vote.Kind == VoteKind.No)
            {
                return (Decision.Abort, $"{name} voted no: {vote.Reason ?? "no reason given"}");
            }

            if (vote.Kind == VoteKind.None)
            {
                return (Decision.Abort, $"{name} gave no vote: {vote.Reason ?? "no answer"}");
            }
        }

        return (Decision.Commit, null);
    }

    /// <summary>Answer a participant's (or anyone's) question about a transaction, presuming abort for the unknown.</summary>
    /// <remarks>
    /// Safe because every abort someone could act on cannot be undone by a crash: the live coordinator's own
    /// abort may be lost, but nobody would commit it then; recovery's, an operator's and a keyed one are forced.
    /// Preparing, even past its deadline, is "pending": the commit stays possible until the log's clock passes
    /// the transaction's abandon moment, which only the log judges; recovery then writes the abort, so no
    /// transaction stays pending for longer than its deadline, the grace and one recovery interval.
    /// </remarks>
    public static DecisionQueryAnswer Answer(TransactionRecord? record, DateTimeOffset now) => record switch
    {
        null => DecisionQueryAnswer.Aborted,
        { State: TransactionState.Committed } => DecisionQueryAnswer.Committed,
        { State: TransactionState.Aborted } => DecisionQueryAnswer.Aborted,
        _ => DecisionQueryAnswer.Pending,
    };

    /// <summary>
    /// A transaction still preparing at or past its deadline plus <paramref name="grace"/> is abandoned: its commit
    /// is refused and recovery aborts it. This is the caller's view on its own clock; the decision log judges the
    /// same rule by its clock when it writes (see <see cref="IDecisionLog.BeginAsync"/>).
    /// </summary>
    public static bool IsAbandoned(TransactionRecord record, DateTimeOffset now, TimeSpan grace) =>
        record.State == TransactionState.Preparing && now >= record.Deadline + grace;

    /// <summary>The decision as the participants must hear it.</summary>
    public static Decision ToDecision(TransactionState state) => state switch
    {
        TransactionState.Committed => Decision.Commit,
        TransactionState.Aborted => Decision.Abort,
        _ => throw new InvalidOperationException("A preparing transaction has no decision yet."),
    };
}

/// <summary>What a participant must do with a message, given its ledger row (if any).</summary>
public enum ParticipantAction
{
    /// <summary>Reserve and record the vote.</summary>
    Reserve,

    /// <summary>The row already answers the message: reply from it, change nothing.</summary>
    AnswerFromLedger,

    /// <summary>Apply the held reservation for good (prepared -> committed).</summary>
    ApplyCommit,

    /// <summary>Release what is held (prepared -> aborted).</summary>
    Release,

    /// <summary>No row: leave an aborted tombstone so a late PREPARE votes no.</summary>
    WriteTombstone,

    /// <summary>The message contradicts the ledger: refuse with 409 and log it loudly.</summary>
    Conflict,
}

/// <summary>The participant's state machine as plain functions.</summary>
public static class ParticipantRules
{
    public static ParticipantAction OnPrepare(LedgerState? current) =>
        current is null ? ParticipantAction.Reserve : ParticipantAction.AnswerFromLedger;

    /// <summary>The vote a ledger row stands for. Only a prepared or committed row ever voted yes.</summary>
    public static VoteKind VoteOf(LedgerState state) =>
        state is LedgerState.Prepared or LedgerState.Committed ? VoteKind.Yes : VoteKind.No;

    public static ParticipantAction OnCommit(LedgerState? current) => current switch
    {
        LedgerState.Prepared => ParticipantAction.ApplyCommit,
        LedgerState.Committed => ParticipantAction.AnswerFromLedger,
        // Not prepared here (unknown, refused, aborted): committing would invent state.
        _ => ParticipantAction.Conflict,
    };

    public static ParticipantAction OnAbort(LedgerState? current) => current switch
    {
        null => ParticipantAction.WriteTombstone,
        LedgerState.Prepared => ParticipantAction.Release,
        LedgerState.Refused or LedgerState.Aborted => ParticipantAction.AnswerFromLedger,
        // Committed is final; an abort now means the coordinator contradicts itself.
        _ => ParticipantAction.Conflict,
    };
}

/// <summary>Capped exponential backoff with full jitter.</summary>
public static class Backoff
{
    /// <summary>The delay before retry number <paramref name="attempt"/> (1-based).</summary>
    public static TimeSpan Delay(int attempt, TimeSpan initial, TimeSpan max, double jitter01)
    {
        // 2^(attempt-1) overflows quickly; clamp the exponent before it matters.
        var exponent = Math.Clamp(attempt - 1, 0, 30);
        var raw = initial.TotalMilliseconds * Math.Pow(2, exponent);
        var capped = Math.Min(raw, max.TotalMilliseconds);
        // Half fixed, half jittered: spreads retries without ever dropping to zero.
        var ms = (capped / 2) + (capped / 2 * Math.Clamp(jitter01, 0, 1));
        return TimeSpan.FromMilliseconds(ms);
    }
}
