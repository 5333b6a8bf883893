using TwoPhase.Protocol;

namespace TwoPhase.Tests.Protocol;

public sealed class CoordinatorRulesTests
{
    private static readonly string[] Both = ["storage", "delivery"];
    private static readonly DateTimeOffset Now = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void AllVotedYes_DecidesCommit_WithNoReason()
    {
        var (decision, reason) = CoordinatorRules.Decide(Both, [new Vote("delivery", VoteKind.Yes), new Vote("storage", VoteKind.Yes)]);

        Assert.Equal(Decision.Commit, decision);
        Assert.Null(reason);
    }

    [Fact]
    public void OneVotedNo_DecidesAbort_NamingParticipantAndReason()
    {
        var (decision, reason) = CoordinatorRules.Decide(Both, [new Vote("storage", VoteKind.Yes), new Vote("delivery", VoteKind.No, "no free courier")]);

        Assert.Equal(Decision.Abort, decision);
        Assert.Equal("delivery voted no: no free courier", reason);
    }

    [Fact]
    public void NoVoteWithoutReason_DecidesAbort_SayingNoReasonGiven()
    {
        var (decision, reason) = CoordinatorRules.Decide(Both, [new Vote("storage", VoteKind.No), new Vote("delivery", VoteKind.Yes)]);

        Assert.Equal(Decision.Abort, decision);
        Assert.Equal("storage voted no: no reason given", reason);
    }

    [Fact]
    public void ParticipantGaveNoUsableAnswer_DecidesAbort_NamingIt()
    {
        var (decision, reason) = CoordinatorRules.Decide(Both, [new Vote("storage", VoteKind.None, "prepare deadline of 2000 ms passed"), new Vote("delivery", VoteKind.Yes)]);

        Assert.Equal(Decision.Abort, decision);
        Assert.Equal("storage gave no vote: prepare deadline of 2000 ms passed", reason);
    }

    [Fact]
    public void ParticipantMissingFromVotes_DecidesAbort_SayingItDidNotVote()
    {
        var (decision, reason) = CoordinatorRules.Decide(Both, [new Vote("storage", VoteKind.Yes)]);

        Assert.Equal(Decision.Abort, decision);
        Assert.Equal("delivery did not vote", reason);
    }

    [Fact]
    public void YesFromAStranger_DoesNotStandInForAMissingVote()
    {
        var (decision, reason) = CoordinatorRules.Decide(Both, [new Vote("storage", VoteKind.Yes), new Vote("intruder", VoteKind.Yes)]);

        Assert.Equal(Decision.Abort, decision);
        Assert.Equal("delivery did not vote", reason);
    }

    [Fact]
    public void UnknownTransaction_IsAnsweredAborted_PresumedAbort() =>
        Assert.Equal(DecisionQueryAnswer.Aborted, CoordinatorRules.Answer(null, Now));

    [Theory]
    [InlineData(TransactionState.Committed, DecisionQueryAnswer.Committed)]
    [InlineData(TransactionState.Aborted, DecisionQueryAnswer.Aborted)]
    [InlineData(TransactionState.Preparing, DecisionQueryAnswer.Pending)]
    public void DecisionQuery_AnswersFromTheRecordedState(TransactionState state, DecisionQueryAnswer expected) =>
        Assert.Equal(expected, CoordinatorRules.Answer(Record(state, deadline: Now.AddSeconds(2)), Now));

    [Fact]
    public void PreparingPastDeadline_IsStillPending_UntilRecoveryWritesTheAbort() =>
        // The live coordinator may still win the conditional decide; only the log's state is safe to report.
        Assert.Equal(DecisionQueryAnswer.Pending, CoordinatorRules.Answer(Record(TransactionState.Preparing, deadline: Now.AddSeconds(-1)), Now));

    [Theory]
    [InlineData(-1001, true)]
    [InlineData(-1000, true)]
    [InlineData(-999, false)]
    [InlineData(0, false)]
    public void PreparingAtOrPastDeadlineAndGrace_IsAbandoned(int deadlineOffsetMs, bool abandoned) =>
        Assert.Equal(abandoned, CoordinatorRules.IsAbandoned(Record(TransactionState.Preparing, Now.AddMilliseconds(deadlineOffsetMs)), Now, TimeSpan.FromSeconds(1)));

    [Theory]
    [InlineData(TransactionState.Committed)]
    [InlineData(TransactionState.Aborted)]
    public void DecidedPastDeadline_IsNeverAbandoned(TransactionState state) =>
        Assert.False(CoordinatorRules.IsAbandoned(Record(state, Now.AddSeconds(-10)), Now, TimeSpan.FromSeconds(1)));

    [Theory]
    [InlineData(TransactionState.Committed, Decision.Commit)]
    [InlineData(TransactionState.Aborted, Decision.Abort)]
    public void DecidedState_MapsToTheDecisionParticipantsHear(TransactionState state, Decision expected) =>
        Assert.Equal(expected, CoordinatorRules.ToDecision(state));

    [Fact]
    public void PreparingState_HasNoDecisionToSend() =>
        Assert.Throws<InvalidOperationException>(() => CoordinatorRules.ToDecision(TransactionState.Preparing));

    private static TransactionRecord Record(TransactionState state, DateTimeOffset deadline) =>
        new("tx-1", state, Both, [], [], null, new Dictionary<string, string>(), null, null, Now.AddSeconds(-5), deadline, null, null, 0, null);
}
