using TwoPhase.Protocol;
using static TwoPhase.Tests.Protocol.CoordinatorHarness;

namespace TwoPhase.Tests.Protocol;

/// <summary>
/// When recovery takes over phase 2 from a live coordinator, and when it does not (docs/verification.md: these were
/// surviving mutants of the coordinator before they were written).
/// </summary>
public sealed class PhaseTwoRedriveTests
{
    /// <summary>
    /// The decision write names when recovery may re-drive it: two decision timeouts later, so that the live round,
    /// whose every send is bounded by one timeout, is not raced by a second round sending the same decision. Until
    /// then a coordinator that stalls (or dies) after its decision is left alone; from then on recovery finishes it.
    /// </summary>
    [Fact]
    public async Task CoordinatorStallsAfterCommitWritten_RecoveryWaitsTwoDecisionTimeouts_ThenCompletesIt()
    {
        var h = new CoordinatorHarness();
        var stalled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var resume = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        h.Hooks.At(ProtocolPoint.CoordinatorAfterDecisionWritten, async (_, _) =>
        {
            stalled.TrySetResult();
            await resume.Task;
        });

        var live = h.ExecuteAsync("tx-1");
        await stalled.Task.WaitAsync(EventTimeout);
        var decided = (await h.Log.FindAsync("tx-1", CancellationToken.None))!;
        Assert.Equal(TransactionState.Committed, decided.State);
        Assert.Equal(decided.DecidedAt + (h.Settings.DecisionTimeout * 2), decided.NextAttemptAt);

        h.Clock.Advance((h.Settings.DecisionTimeout * 2) - TimeSpan.FromMilliseconds(1));
        Assert.Equal(0, await h.Coordinator.RecoverOnceAsync(CancellationToken.None));
        Assert.Equal(0, h.Journal.Count("commit:"));

        h.Clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, await h.Coordinator.RecoverOnceAsync(CancellationToken.None));
        Assert.Equal(1, h.Journal.Count("commit:storage"));
        Assert.Equal(1, h.Journal.Count("commit:delivery"));
        Assert.True((await h.Log.FindAsync("tx-1", CancellationToken.None))!.IsCompleted);

        // The live coordinator resumes and finishes its own round: a repeat, which changes nothing.
        resume.SetResult();
        var (outcome, _) = await live.WaitAsync(EventTimeout);
        Assert.Equal(TransactionState.Committed, outcome.State);
        Assert.Equal(0, h.Journal.Count("abort:"));
    }
}
