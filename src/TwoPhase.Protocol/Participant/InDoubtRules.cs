namespace TwoPhase.Protocol;

/// <summary>What an in-doubt participant does with the coordinator's answer to "what happened to X?".</summary>
public enum InDoubtAction
{
    /// <summary>Decided commit: apply it as a COMMIT (<see cref="ParticipantRules.OnCommit"/>).</summary>
    Commit,

    /// <summary>Decided abort, or unknown to the coordinator (presumed abort): apply it as an ABORT (<see cref="ParticipantRules.OnAbort"/>).</summary>
    Abort,

    /// <summary>Pending, or no usable answer: stay prepared, holding, and ask again after a backoff.</summary>
    AskAgain,
}

/// <summary>
/// The participant's in-doubt rules (docs/design.md §2): a prepared row past its in-doubt timeout asks the coordinator
/// and applies the decision; it never decides alone, since only the coordinator knows whether the commit point
/// was passed.
/// </summary>
public static class InDoubtRules
{
    /// <summary>
    /// A row is due for a question when it is still prepared, was claimed at least <paramref name="inDoubtAfter"/>
    /// ago, and its next check (after an undecided answer) has come.
    /// </summary>
    public static bool IsDue(LedgerEntry row, DateTimeOffset now, TimeSpan inDoubtAfter) =>
        row.State == LedgerState.Prepared && row.CreatedAt <= now - inDoubtAfter && (row.NextCheckAt is null || row.NextCheckAt <= now);

    /// <summary>
    /// Whom a row asks (docs/protocol.md, "Coordinator groups"): the coordinator group its PREPARE named, at the URL it
    /// named, else at <paramref name="configuredUrl"/>. A row whose PREPARE named no group (an older coordinator, the old
    /// protocol) asks the configured coordinator without naming a group, as before groups existed: that coordinator then
    /// presumes abort for an id it does not know, which is right only because such a row can only have come from it.
    /// </summary>
    public static (string Url, string? Group) QueryTarget(LedgerEntry row, string configuredUrl)
    {
        ArgumentNullException.ThrowIfNull(row);
        return (row.CoordinatorUrl ?? configuredUrl, row.CoordinatorGroup);
    }

    /// <summary>What to do with the coordinator's answer; null means it could not be asked or gave no readable answer.</summary>
    public static InDoubtAction OnAnswer(DecisionQueryAnswer? answer) => answer switch
    {
        DecisionQueryAnswer.Committed => InDoubtAction.Commit,
        DecisionQueryAnswer.Aborted => InDoubtAction.Abort,
        // Another group's coordinator was asked: it never issued the id, so its silence says nothing about the decision.
        DecisionQueryAnswer.NotThisGroup => InDoubtAction.AskAgain,
        // Pending: the coordinator may still commit. Unreachable: it may have committed. Either way, hold on.
        _ => InDoubtAction.AskAgain,
    };

    /// <summary>When to ask again after <see cref="InDoubtAction.AskAgain"/>: capped backoff on the row's count of checks.</summary>
    public static DateTimeOffset NextCheck(LedgerEntry row, DateTimeOffset now, TimeSpan initialDelay, TimeSpan maxDelay, double jitter01) =>
        now + Backoff.Delay(row.Checks + 1, initialDelay, maxDelay, jitter01);
}
