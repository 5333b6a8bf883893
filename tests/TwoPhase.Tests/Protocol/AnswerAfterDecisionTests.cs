using TwoPhase.Protocol;
using static TwoPhase.Tests.Protocol.CoordinatorHarness;

namespace TwoPhase.Tests.Protocol;

/// <summary>
/// <see cref="CoordinatorSettings.AnswerAfterDecision"/>: the caller is answered once the decision is durable, phase 2 runs
/// on in the background, and what the answer says about acknowledgements is only what was received by then.
/// </summary>
public sealed class AnswerAfterDecisionTests
{
    private static CoordinatorSettings Early(int maxBackground = 1024) => new() { AnswerAfterDecision = true, MaxBackgroundPhaseTwo = maxBackground };

    /// <summary>COMMITs held at both participants: the answer comes first ("committed", nothing acknowledged), and the
    /// transaction completes once they answer.</summary>
    [Fact]
    public async Task Committed_IsAnsweredBeforeTheParticipantsAcknowledge_AndTheTransactionStillCompletes()
    {
        var h = new CoordinatorHarness(Early());
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var sent = new CountdownEvent(2);
        foreach (var name in new[] { CoordinatorHarness.Storage.Name, CoordinatorHarness.Delivery.Name })
        {
            h.Transport.OnDecision(name, async (_, _) =>
            {
                sent.Signal();
                await release.Task;
                return new Ack(name, AckKind.Acknowledged);
            });
        }

        var (outcome, created) = await h.ExecuteAsync("tx-early").WaitAsync(EventTimeout);

        Assert.True(created);
        Assert.Equal(TransactionState.Committed, outcome.State);
        Assert.Empty(outcome.Acknowledged);
        var record = (await h.Log.FindAsync("tx-early", CancellationToken.None))!;
        Assert.Equal(TransactionState.Committed, record.State);
        Assert.False(record.IsCompleted);

        // Phase 2 is under way: both COMMITs are sent without anyone waiting for the answer.
        Assert.True(sent.Wait(EventTimeout));
        Assert.Equal(1, h.Coordinator.BackgroundPhaseTwo);
        release.SetResult();
        await WaitUntilAsync(async () => (await h.Log.FindAsync("tx-early", CancellationToken.None))!.IsCompleted);
        Assert.Equal(["delivery", "storage"], (await h.Log.FindAsync("tx-early", CancellationToken.None))!.Acknowledged.Order());
        await WaitUntilAsync(() => Task.FromResult(h.Coordinator.BackgroundPhaseTwo == 0));
    }

    /// <summary>Without the option the same transaction's answer waits for phase 2 and lists both acknowledgements.</summary>
    [Fact]
    public async Task Off_TheAnswerWaitsForTheFirstRound()
    {
        var h = new CoordinatorHarness();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        h.Transport.OnDecision(CoordinatorHarness.Storage.Name, async (_, _) =>
        {
            await release.Task;
            return new Ack(CoordinatorHarness.Storage.Name, AckKind.Acknowledged);
        });

        var running = h.ExecuteAsync("tx-late");
        await Task.Delay(200);
        Assert.False(running.IsCompleted);
        release.SetResult();
        var (outcome, _) = await running.WaitAsync(EventTimeout);
        Assert.Equal(["delivery", "storage"], outcome.Acknowledged.Order());
    }

    /// <summary>
    /// The process dies right after the answer (the background round is cut by the host's stopping, its sends never
    /// answered): the decision is durable, so recovery, once the row is due, sends the COMMITs again and completes it.
    /// </summary>
    [Fact]
    public async Task BackgroundRoundCut_AfterTheAnswer_RecoveryCompletesIt()
    {
        var h = new CoordinatorHarness(Early());
        using var stopping = new CancellationTokenSource();
        var cut = true;
        foreach (var name in new[] { CoordinatorHarness.Storage.Name, CoordinatorHarness.Delivery.Name })
        {
            h.Transport.OnDecision(name, async (_, ct) =>
            {
                if (Volatile.Read(ref cut))
                {
                    await Task.Delay(Timeout.InfiniteTimeSpan, ct);
                }

                return new Ack(name, AckKind.Acknowledged);
            });
        }

        var (outcome, _) = await h.Coordinator.ExecuteAsync(Request("tx-cut"), stopping.Token).WaitAsync(EventTimeout);
        Assert.Equal(TransactionState.Committed, outcome.State);
        Assert.Empty(outcome.Acknowledged);

        await stopping.CancelAsync();
        await WaitUntilAsync(() => Task.FromResult(h.Coordinator.BackgroundPhaseTwo == 0));
        Assert.False((await h.Log.FindAsync("tx-cut", CancellationToken.None))!.IsCompleted);

        // A new process (recovery on the same log) once the row is due.
        Volatile.Write(ref cut, false);
        h.Clock.Advance(h.Settings.DecisionTimeout * 2);
        Assert.Equal(1, await h.Coordinator.RecoverOnceAsync(CancellationToken.None));
        var record = (await h.Log.FindAsync("tx-cut", CancellationToken.None))!;
        Assert.True(record.IsCompleted);
        Assert.Equal(TransactionState.Committed, record.State);
        Assert.Equal(0, h.Journal.Count("abort:"));
    }

    /// <summary>The bound: with one background round running, the next transaction's answer waits for its own round.</summary>
    [Fact]
    public async Task BackgroundRoundsAtTheLimit_TheNextAnswerWaitsForItsRound()
    {
        var h = new CoordinatorHarness(Early(maxBackground: 1));
        var releaseFirst = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        h.Transport.OnDecision(CoordinatorHarness.Storage.Name, async (_, _) =>
        {
            await releaseFirst.Task;
            return new Ack(CoordinatorHarness.Storage.Name, AckKind.Acknowledged);
        });

        var (first, _) = await h.ExecuteAsync("tx-a").WaitAsync(EventTimeout);
        Assert.DoesNotContain("storage", first.Acknowledged);

        // The limit is taken: tx-b runs its round inline, so its answer is held with its storage COMMIT.
        var second = h.ExecuteAsync("tx-b");
        await Task.Delay(200);
        Assert.False(second.IsCompleted);
        releaseFirst.SetResult();
        var (outcome, _) = await second.WaitAsync(EventTimeout);
        Assert.Equal(["delivery", "storage"], outcome.Acknowledged.Order());
        await WaitUntilAsync(async () => (await h.Log.FindAsync("tx-a", CancellationToken.None))!.IsCompleted);
    }

    /// <summary>An abort is answered early as well, and its ABORTs still reach both participants.</summary>
    [Fact]
    public async Task Aborted_IsAnsweredEarly_AndTheAbortsAreDelivered()
    {
        var h = new CoordinatorHarness(Early());
        h.Transport.OnPrepare(CoordinatorHarness.Storage.Name, _ => Task.FromResult(new Vote(CoordinatorHarness.Storage.Name, VoteKind.No, "out of stock")));

        var (outcome, _) = await h.ExecuteAsync("tx-no").WaitAsync(EventTimeout);

        Assert.Equal(TransactionState.Aborted, outcome.State);
        await WaitUntilAsync(async () => (await h.Log.FindAsync("tx-no", CancellationToken.None))!.IsCompleted);
        Assert.Equal(1, h.Journal.Count("abort:storage"));
        Assert.Equal(1, h.Journal.Count("abort:delivery"));
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var giveUp = DateTime.UtcNow + EventTimeout;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < giveUp, "the condition did not hold in time");
            await Task.Delay(10);
        }
    }
}
