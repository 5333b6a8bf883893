using TwoPhase.Protocol;

namespace TwoPhase.Tests.Protocol;

/// <summary>Every ledger state (and none) against every message, as <see cref="ParticipantRules"/> states them.</summary>
public sealed class ParticipantRulesTests
{
    private static readonly DateTimeOffset Now = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

    private static LedgerEntry Row(LedgerState state, string? reason = null) => new("tx-1", state, reason, null, Now, Now, 0, null);

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
    [InlineData(LedgerState.Prepared, null, VoteKind.Yes)]
    [InlineData(LedgerState.Committed, null, VoteKind.Yes)]
    [InlineData(LedgerState.Refused, "out of stock: widget", VoteKind.No)]
    [InlineData(LedgerState.Aborted, ParticipantRules.TombstoneReason, VoteKind.No)]
    public void PrepareAnsweredFromRow_RepeatsItsVoteAndReason(LedgerState state, string? reason, VoteKind vote) =>
        Assert.Equal((vote, reason), ParticipantRules.Answer(Row(state, reason)));

    [Fact]
    public void NewPrepareReserved_ClaimsPreparedRow_HoldingKept_VotesYes()
    {
        var claim = ParticipantRules.Claim("tx-1", reserved: true, holding: """{"widget":3}""", refusal: null, Now);

        Assert.Equal(new LedgerEntry("tx-1", LedgerState.Prepared, null, """{"widget":3}""", Now, Now, 0, null), claim);
        Assert.Equal((VoteKind.Yes, (string?)null), ParticipantRules.Answer(claim));
    }

    [Theory]
    [InlineData("out of stock: widget", "out of stock: widget")]
    [InlineData(null, ParticipantRules.DefaultRefusal)]
    public void NewPrepareRefused_ClaimsRefusedRow_WithReason_VotesNo(string? refusal, string recorded)
    {
        var claim = ParticipantRules.Claim("tx-1", reserved: false, holding: null, refusal, Now);

        Assert.Equal(new LedgerEntry("tx-1", LedgerState.Refused, recorded, null, Now, Now, 0, null), claim);
        Assert.Equal((VoteKind.No, (string?)recorded), ParticipantRules.Answer(claim));
    }

    [Theory]
    [InlineData(true, ParticipantAction.Release)]
    [InlineData(false, ParticipantAction.AnswerFromLedger)]
    public void PrepareLosingTheClaimRace_GivesBackWhatItReserved_ThenAnswersFromTheWinner(bool reserved, ParticipantAction expected) =>
        Assert.Equal(expected, ParticipantRules.OnClaimLost(reserved));

    [Theory]
    [InlineData(LedgerState.Prepared, ParticipantAction.ApplyCommit)]
    [InlineData(LedgerState.Committed, ParticipantAction.AnswerFromLedger)]
    [InlineData(LedgerState.Refused, ParticipantAction.Conflict)]
    [InlineData(LedgerState.Aborted, ParticipantAction.Conflict)]
    [InlineData(null, ParticipantAction.Conflict)]
    public void Commit_AppliesOnlyWhenPrepared_RepeatIsNoOp_ElseConflict(LedgerState? state, ParticipantAction expected) =>
        Assert.Equal(expected, ParticipantRules.OnCommit(state).Action);

    [Theory]
    [InlineData(LedgerState.Prepared, LedgerState.Committed, false)]
    [InlineData(LedgerState.Committed, LedgerState.Committed, false)]
    [InlineData(LedgerState.Refused, LedgerState.Refused, true)]
    [InlineData(LedgerState.Aborted, LedgerState.Aborted, true)]
    [InlineData(null, null, true)]
    public void Commit_AnswersTheStateAfter_ConflictLeavesTheRowAsItIs(LedgerState? state, LedgerState? after, bool conflict)
    {
        var answer = ParticipantRules.OnCommit(state).Answer;

        Assert.Equal((after, conflict), (answer.State, answer.Conflict));
        // A conflict says what it contradicts (logged loudly, sent as the 409's detail); an acknowledgement says nothing.
        Assert.Equal(conflict, answer.Detail is not null);
    }

    [Theory]
    [InlineData(null, ParticipantAction.WriteTombstone)]
    [InlineData(LedgerState.Prepared, ParticipantAction.Release)]
    [InlineData(LedgerState.Refused, ParticipantAction.AnswerFromLedger)]
    [InlineData(LedgerState.Aborted, ParticipantAction.AnswerFromLedger)]
    [InlineData(LedgerState.Committed, ParticipantAction.Conflict)]
    public void Abort_ReleasesPrepared_TombstonesUnknown_ConflictsWithCommitted(LedgerState? state, ParticipantAction expected) =>
        Assert.Equal(expected, ParticipantRules.OnAbort(state).Action);

    [Theory]
    [InlineData(null, LedgerState.Aborted, false)]
    [InlineData(LedgerState.Prepared, LedgerState.Aborted, false)]
    [InlineData(LedgerState.Refused, LedgerState.Refused, false)]
    [InlineData(LedgerState.Aborted, LedgerState.Aborted, false)]
    [InlineData(LedgerState.Committed, LedgerState.Committed, true)]
    public void Abort_AnswersTheStateAfter_ConflictLeavesTheRowAsItIs(LedgerState? state, LedgerState after, bool conflict)
    {
        var answer = ParticipantRules.OnAbort(state).Answer;

        Assert.Equal((after, conflict), (answer.State, answer.Conflict));
        Assert.Equal(conflict, answer.Detail is not null);
    }

    [Theory]
    [InlineData(null)]
    [InlineData(LedgerState.Prepared)]
    [InlineData(LedgerState.Refused)]
    [InlineData(LedgerState.Committed)]
    [InlineData(LedgerState.Aborted)]
    public void OnDecision_IsOnCommitForCommit_OnAbortForAbort(LedgerState? state)
    {
        Assert.Equal(ParticipantRules.OnCommit(state), ParticipantRules.OnDecision(Decision.Commit, state));
        Assert.Equal(ParticipantRules.OnAbort(state), ParticipantRules.OnDecision(Decision.Abort, state));
    }

    [Fact]
    public void AbortBeforePrepare_TombstoneMakesLatePrepareVoteNo()
    {
        // Walk the state machine: abort first (tombstone), then the late prepare answers from that row.
        Assert.Equal(ParticipantAction.WriteTombstone, ParticipantRules.OnAbort(null).Action);
        var tombstone = ParticipantRules.Tombstone("tx-1", Now);
        Assert.Equal(new LedgerEntry("tx-1", LedgerState.Aborted, ParticipantRules.TombstoneReason, null, Now, Now, 0, null), tombstone);
        Assert.Equal(ParticipantAction.AnswerFromLedger, ParticipantRules.OnPrepare(tombstone.State));
        Assert.Equal(VoteKind.No, ParticipantRules.VoteOf(LedgerState.Aborted));
        Assert.Equal((VoteKind.No, (string?)ParticipantRules.TombstoneReason), ParticipantRules.Answer(tombstone));
    }
}
