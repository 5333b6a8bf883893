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
