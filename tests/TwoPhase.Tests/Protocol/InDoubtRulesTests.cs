using TwoPhase.Protocol;

namespace TwoPhase.Tests.Protocol;

public sealed class InDoubtRulesTests
{
    private static readonly DateTimeOffset Now = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan InDoubtAfter = TimeSpan.FromSeconds(5);

    private static LedgerEntry Row(LedgerState state, TimeSpan age, int checks = 0, DateTimeOffset? nextCheckAt = null) =>
        new("tx-1", state, null, null, Now - age, Now - age, checks, nextCheckAt);

    [Theory]
    [InlineData(DecisionQueryAnswer.Committed, InDoubtAction.Commit)]
    [InlineData(DecisionQueryAnswer.Aborted, InDoubtAction.Abort)]
    [InlineData(DecisionQueryAnswer.Pending, InDoubtAction.AskAgain)]
    [InlineData(null, InDoubtAction.AskAgain)]
    public void CoordinatorAnswer_CommittedCommits_AbortedAborts_PendingOrUnreachableAsksAgain(DecisionQueryAnswer? answer, InDoubtAction expected) =>
        Assert.Equal(expected, InDoubtRules.OnAnswer(answer));

    [Theory]
    [InlineData(5000, true)]
    [InlineData(60000, true)]
    [InlineData(4999, false)]
    [InlineData(0, false)]
    public void PreparedRow_IsInDoubtOnlyFromTheTimeout(int ageMs, bool due) =>
        Assert.Equal(due, InDoubtRules.IsDue(Row(LedgerState.Prepared, TimeSpan.FromMilliseconds(ageMs)), Now, InDoubtAfter));

    [Theory]
    [InlineData(LedgerState.Refused)]
    [InlineData(LedgerState.Committed)]
    [InlineData(LedgerState.Aborted)]
    public void FinalRow_IsNeverInDoubt_HoweverOld(LedgerState state) =>
        Assert.False(InDoubtRules.IsDue(Row(state, TimeSpan.FromHours(1)), Now, InDoubtAfter));

    [Theory]
    [InlineData(1, false)]
    [InlineData(0, true)]
    [InlineData(-1, true)]
    public void PreparedRowAskedBefore_IsDueAgainOnlyAtItsNextCheck(int nextCheckInMs, bool due) =>
        Assert.Equal(due, InDoubtRules.IsDue(Row(LedgerState.Prepared, TimeSpan.FromMinutes(1), checks: 2, Now.AddMilliseconds(nextCheckInMs)), Now, InDoubtAfter));

    [Theory]
    [InlineData(0, 100)]
    [InlineData(1, 200)]
    [InlineData(3, 800)]
    [InlineData(10, 5000)]
    [InlineData(int.MaxValue - 1, 5000)]
    public void AskAgain_BacksOffOnTheRowsChecks_Capped(int checks, int expectedMs)
    {
        var row = Row(LedgerState.Prepared, TimeSpan.FromMinutes(1), checks);

        // Full jitter at 1 is the capped delay itself; at 0 it is half of it, never less.
        Assert.Equal(Now.AddMilliseconds(expectedMs), InDoubtRules.NextCheck(row, Now, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(5), 1));
        Assert.Equal(Now.AddMilliseconds(expectedMs / 2.0), InDoubtRules.NextCheck(row, Now, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(5), 0));
    }

    [Theory]
    [InlineData(DecisionQueryAnswer.Pending)]
    [InlineData(DecisionQueryAnswer.Committed)]
    [InlineData(DecisionQueryAnswer.Aborted)]
    public void WireAnswer_RoundTrips(DecisionQueryAnswer answer) =>
        Assert.Equal(answer, StateNames.TryParseDecisionQueryAnswer(answer.ToWire()));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("Committed")]
    [InlineData("preparing")]
    public void UnknownWireAnswer_IsNoAnswer(string? value) =>
        Assert.Null(StateNames.TryParseDecisionQueryAnswer(value));
}
