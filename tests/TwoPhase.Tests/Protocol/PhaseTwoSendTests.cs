using TwoPhase.Protocol;
using static TwoPhase.Tests.Protocol.CoordinatorHarness;

namespace TwoPhase.Tests.Protocol;

/// <summary>
/// One phase-2 send and one round as the coordinator bounds them: a send that hangs, a participant no longer
/// configured, a host that stops, a round that learns nothing new, and the fault point between two answers.
/// </summary>
public sealed class PhaseTwoSendTests
{
    [Fact]
    public async Task DecisionSendHangs_TimesOutAfterTheDecisionTimeout_CountsAsUnacknowledged_AndIsRetried()
    {
        var h = new CoordinatorHarness();
        var hanging = DeliveryNeverAnswersTheDecision(h);

        var live = h.ExecuteAsync("tx-1");
        await hanging.WaitAsync(EventTimeout);
        Assert.False(live.IsCompleted);
        h.Clock.Advance(h.Settings.DecisionTimeout);
        var (outcome, _) = await live.WaitAsync(EventTimeout);

        // The decision is durable, so the client hears it; the silent participant is left to the next round.
        Assert.Equal(TransactionState.Committed, outcome.State);
        Assert.Equal(["storage"], outcome.Acknowledged);
        var record = (await h.Log.FindAsync("tx-1", CancellationToken.None))!;
        Assert.False(record.IsCompleted);
        Assert.Equal(1, record.Attempts);
        Assert.Single(h.Log.Retries);
    }

    [Fact]
    public async Task HostStopsDuringADecisionSend_StopsWithCancellation_RecordsNoFailedRound()
    {
        var h = new CoordinatorHarness();
        var hanging = DeliveryNeverAnswersTheDecision(h);
        using var stopping = new CancellationTokenSource();

        var live = h.Coordinator.ExecuteAsync(Request("tx-1"), stopping.Token);
        await hanging.WaitAsync(EventTimeout);
        await stopping.CancelAsync();

        // A stop is not the participant's failure: nothing is recorded, recovery re-drives after the decision's own
        // re-drive time, as for a crash.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => live.WaitAsync(EventTimeout));
        var record = (await h.Log.FindAsync("tx-1", CancellationToken.None))!;
        Assert.Equal(TransactionState.Committed, record.State);
        Assert.Equal(0, record.Attempts);
        Assert.Empty(h.Log.Retries);
        Assert.Empty(record.Acknowledged);
    }

    [Fact]
    public async Task RecordNamesAParticipantNoLongerConfigured_TheOthersGetTheDecision_ItStaysUnfinished()
    {
        var h = new CoordinatorHarness();
        // Written by a coordinator whose directory still had "billing"; this one's has not.
        var billing = new ParticipantRef("billing", new Uri("http://127.0.0.1:8009"));
        ParticipantRef[] all = [CoordinatorHarness.Storage, Delivery, billing];
        var request = new TransactionRequest("tx-1", all, TransactionRequest.SamePayload(all, "{}"));
        var deadline = h.Clock.GetUtcNow() + h.Settings.PrepareDeadline;
        await h.Log.BeginAsync(request, deadline, deadline + h.Settings.AbandonGrace, CancellationToken.None);
        Vote[] yes = [new("storage", VoteKind.Yes), new("delivery", VoteKind.Yes), new("billing", VoteKind.Yes)];
        await h.Log.DecideAsync("tx-1", Decision.Commit, null, yes, h.Clock.GetUtcNow(), Durability.Forced, CancellationToken.None);

        Assert.Equal(1, await h.Coordinator.RecoverOnceAsync(CancellationToken.None));

        var record = (await h.Log.FindAsync("tx-1", CancellationToken.None))!;
        Assert.Equal(["delivery", "storage"], record.Acknowledged.Order());
        Assert.False(record.IsCompleted);
        Assert.Equal(1, record.Attempts);
        Assert.Equal(0, h.Journal.Count("commit:billing"));
    }

    [Fact]
    public async Task RoundThatLearnsNoNewAcknowledgement_WritesOnlyItsRetry()
    {
        var h = new CoordinatorHarness();
        h.Transport.OnDecision("delivery", (_, _) => Task.FromResult(new Ack("delivery", AckKind.Failed, "down")));
        await h.ExecuteAsync("tx-1");

        for (var round = 0; round < 3; round++)
        {
            h.Clock.Advance(h.Log.Retries[^1].NextAttemptAt - h.Clock.GetUtcNow());
            Assert.Equal(1, await h.Coordinator.RecoverOnceAsync(CancellationToken.None));
        }

        // Storage's acknowledgement was written once, in the first round; the three rounds after it each wrote their
        // retry and nothing else.
        Assert.Equal(["acknowledged:tx-1:storage"], h.Log.Writes.Select(w => w.Entry).Where(e => e.StartsWith("acknowledged:", StringComparison.Ordinal)));
        Assert.Equal(4, h.Log.Writes.Count(w => w.Entry == "retry:tx-1"));
        Assert.Equal(1, h.Journal.Count("commit:storage"));
        Assert.Equal(4, h.Journal.Count("commit:delivery"));
    }

    [Fact]
    public async Task FaultPointBetweenPhaseTwoSends_IsReachedOnce_AfterTheFirstAnswerAndBeforeTheLast()
    {
        var h = new CoordinatorHarness();
        var deliveryAnswers = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        h.Transport.OnDecision("delivery", async (_, ct) =>
        {
            await deliveryAnswers.Task.WaitAsync(ct);
            return new Ack("delivery", AckKind.Acknowledged);
        });
        var seenAtThePoint = -1;
        h.Hooks.At(ProtocolPoint.CoordinatorBetweenPhaseTwoSends, (_, _) =>
        {
            // A crash here leaves one participant told and the other not: what chaos kills the coordinator for.
            seenAtThePoint = deliveryAnswers.Task.IsCompleted ? 2 : 1;
            deliveryAnswers.TrySetResult();
            return ValueTask.CompletedTask;
        });

        var (outcome, _) = await h.ExecuteAsync("tx-1").WaitAsync(EventTimeout);

        Assert.Equal(1, seenAtThePoint);
        Assert.Equal(1, h.Journal.Count("hook:CoordinatorBetweenPhaseTwoSends"));
        Assert.Equal(["delivery", "storage"], outcome.Acknowledged.Order());
    }

    [Fact]
    public async Task DuplicateWhileTheFirstHangs_GivesUpAfterTheDuplicateWait_ReportingItStillPreparing()
    {
        var h = new CoordinatorHarness(new CoordinatorSettings { PrepareDeadline = TimeSpan.FromMinutes(1) });
        var inFlight = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        h.Transport.OnPrepare("storage", async ct =>
        {
            inFlight.TrySetResult();
            await Task.Delay(Timeout.InfiniteTimeSpan, ct);
            return new Vote("storage", VoteKind.Yes);
        });
        _ = h.ExecuteAsync("tx-1", idempotencyKey: "k");
        await inFlight.Task.WaitAsync(EventTimeout);

        var second = h.ExecuteAsync("tx-2", idempotencyKey: "k");
        var waited = TimeSpan.Zero;
        // The duplicate polls every 20 ms of the fake clock; move it a bounded number of times.
        for (var i = 0; i < 1000 && !second.IsCompleted; i++)
        {
            h.Clock.Advance(TimeSpan.FromMilliseconds(20));
            waited += TimeSpan.FromMilliseconds(20);
            await Task.Yield();
        }

        var (outcome, created) = await second.WaitAsync(EventTimeout);
        Assert.False(created);
        Assert.Equal(("tx-1", TransactionState.Preparing), (outcome.Id, outcome.State));
        // Not before the wait is over (the clock may run a little past it while the duplicate polls).
        Assert.True(waited >= h.Settings.DuplicateWait, $"gave up after {waited}");
        Assert.Equal(2, h.Journal.Count("prepare:"));
    }

    /// <summary>Delivery's decision send hangs until its token ends; the task completes once the send has started.</summary>
    private static Task DeliveryNeverAnswersTheDecision(CoordinatorHarness h)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        h.Transport.OnDecision("delivery", async (_, ct) =>
        {
            started.TrySetResult();
            await Task.Delay(Timeout.InfiniteTimeSpan, ct);
            return new Ack("delivery", AckKind.Acknowledged);
        });
        return started.Task;
    }
}
