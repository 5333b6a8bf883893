using TwoPhase.Protocol;

namespace TwoPhase.Tests.Protocol;

public sealed class ParticipantRulesTests
{
    [Fact]
    public void PrepareWithNoRow_Reserves() =>
        Assert.Equal(ParticipantAction.Reserve, ParticipantRules.OnPrepare(null));

    [Theory]
    [InlineData(LedgerState.Prepared)]
    [InlineData(LedgerState.Refused)]
    [InlineData(LedgerState.Committed)]
    [InlineData(LedgerState.Aborted)]
    public void RepeatedOrLatePrepare_AnswersFromLedger_ReservesNothing(LedgerState state) =>
        Assert.Equal(ParticipantAction.AnswerFromLedger, ParticipantRules.OnPrepare(state));

    [Theory]
    [InlineData(LedgerState.Prepared, VoteKind.Yes)]
    [InlineData(LedgerState.Committed, VoteKind.Yes)]
    [InlineData(LedgerState.Refused, VoteKind.No)]
    [InlineData(LedgerState.Aborted, VoteKind.No)]
    public void VoteOfLedgerRow_IsYesOnlyForPreparedOrCommitted(LedgerState state, VoteKind expected) =>
        Assert.Equal(expected, ParticipantRules.VoteOf(state));

    [Theory]
    [InlineData(LedgerState.Prepared, ParticipantAction.ApplyCommit)]
    [InlineData(LedgerState.Committed, ParticipantAction.AnswerFromLedger)]
    [InlineData(LedgerState.Refused, ParticipantAction.Conflict)]
    [InlineData(LedgerState.Aborted, ParticipantAction.Conflict)]
    [InlineData(null, ParticipantAction.Conflict)]
    public void Commit_AppliesOnlyWhenPrepared_RepeatIsNoOp_ElseConflict(LedgerState? state, ParticipantAction expected) =>
        Assert.Equal(expected, ParticipantRules.OnCommit(state));

    [Theory]
    [InlineData(null, ParticipantAction.WriteTombstone)]
    [InlineData(LedgerState.Prepared, ParticipantAction.Release)]
    [InlineData(LedgerState.Refused, ParticipantAction.AnswerFromLedger)]
    [InlineData(LedgerState.Aborted, ParticipantAction.AnswerFromLedger)]
    [InlineData(LedgerState.Committed, ParticipantAction.Conflict)]
    public void Abort_ReleasesPrepared_TombstonesUnknown_ConflictsWithCommitted(LedgerState? state, ParticipantAction expected) =>
        Assert.Equal(expected, ParticipantRules.OnAbort(state));

    [Fact]
    public void AbortBeforePrepare_TombstoneMakesLatePrepareVoteNo()
    {
        // Walk the state machine: abort first (tombstone), then the late prepare answers from that row.
        Assert.Equal(ParticipantAction.WriteTombstone, ParticipantRules.OnAbort(null));
        Assert.Equal(ParticipantAction.AnswerFromLedger, ParticipantRules.OnPrepare(LedgerState.Aborted));
        Assert.Equal(VoteKind.No, ParticipantRules.VoteOf(LedgerState.Aborted));
    }
}
