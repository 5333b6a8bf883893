using TwoPhase.Protocol;
using TwoPhase.Tests.Protocol.Fakes;
using static TwoPhase.Tests.Protocol.CoordinatorHarness;

namespace TwoPhase.Tests.Protocol;

public sealed class TwoPhaseCoordinatorTests
{

    [Fact]
    public async Task AllParticipantsVoteYes_Commits_AllAcknowledge_Completed()
    {
        var h = new CoordinatorHarness();

        var (outcome, created) = await h.ExecuteAsync("tx-1");

        Assert.True(created);
        Assert.Equal(TransactionState.Committed, outcome.State);
        Assert.Null(outcome.Reason);
        Assert.Equal(["delivery", "storage"], outcome.Acknowledged.Order());
        Assert.All(outcome.Votes, v => Assert.Equal(VoteKind.Yes, v.Kind));
        var record = await h.Log.FindAsync("tx-1", CancellationToken.None);
        Assert.NotNull(record);
        Assert.True(record.IsCompleted);
        Assert.Equal(0, h.Journal.Count("abort:"));
    }

    [Fact]
    public async Task CommitDecision_IsWrittenBeforeAnyCommitIsSent()
    {
        var h = new CoordinatorHarness();

        await h.ExecuteAsync("tx-1");

        var decided = h.Journal.IndexOf("decide:tx-1:commit");
        var firstCommit = h.Journal.FirstIndexStartingWith("commit:");
        var lastPrepare = h.Journal.Entries.ToList().FindLastIndex(e => e.StartsWith("prepare:", StringComparison.Ordinal));
        Assert.True(h.Journal.IndexOf("begin:tx-1") < h.Journal.FirstIndexStartingWith("prepare:"), string.Join(" | ", h.Journal.Entries));
        Assert.True(lastPrepare < decided, string.Join(" | ", h.Journal.Entries));
        Assert.True(decided >= 0 && decided < firstCommit, string.Join(" | ", h.Journal.Entries));
        Assert.Equal(2, h.Journal.Count("commit:"));
        Assert.True(h.Journal.IndexOf("completed:tx-1") > h.Journal.Entries.ToList().FindLastIndex(e => e.StartsWith("commit:", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task DeliveryVotesNo_Aborts_NamingDeliveryAndItsReason_NoCommitSent()
    {
        var h = new CoordinatorHarness();
        h.Transport.OnPrepare("delivery", _ => Task.FromResult(new Vote("delivery", VoteKind.No, "no free courier")));

        var (outcome, _) = await h.ExecuteAsync("tx-1");

        Assert.Equal(TransactionState.Aborted, outcome.State);
        Assert.Equal("delivery voted no: no free courier", outcome.Reason);
        Assert.Equal(0, h.Journal.Count("commit:"));
        // Storage voted yes and holds stock: it must hear the abort too.
        Assert.Equal(1, h.Journal.Count("abort:storage"));
        Assert.Equal(1, h.Journal.Count("abort:delivery"));
        Assert.Contains(outcome.Votes, v => v is { Participant: "delivery", Kind: VoteKind.No, Reason: "no free courier" });
    }

    [Fact]
    public async Task ParticipantNeverAnswers_PrepareDeadlinePasses_AbortsNamingTheDeadline()
    {
        // Real clock: the prepare deadline is a timer, and a silent participant is only ended by it.
        var h = new CoordinatorHarness(new CoordinatorSettings { PrepareDeadline = TimeSpan.FromMilliseconds(200) }, TimeProvider.System);
        h.Transport.OnPrepare("storage", async ct =>
        {
            await Task.Delay(Timeout.Infinite, ct);
            throw new InvalidOperationException("unreachable");
        });

        var (outcome, _) = await h.ExecuteAsync("tx-1").WaitAsync(EventTimeout);

        Assert.Equal(TransactionState.Aborted, outcome.State);
        Assert.Equal("storage gave no vote: prepare deadline of 200 ms passed", outcome.Reason);
        Assert.Contains(outcome.Votes, v => v is { Participant: "storage", Kind: VoteKind.None });
        Assert.Equal(0, h.Journal.Count("commit:"));
    }

    [Fact]
    public async Task ParticipantNeverAnswers_FakeClockPassesDeadline_Aborts()
    {
        var h = new CoordinatorHarness(new CoordinatorSettings { PrepareDeadline = TimeSpan.FromMinutes(10) });
        var inFlight = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        h.Transport.OnPrepare("storage", async ct =>
        {
            inFlight.TrySetResult();
            await Task.Delay(Timeout.Infinite, ct);
            throw new InvalidOperationException("unreachable");
        });

        var running = h.ExecuteAsync("tx-1");
        await inFlight.Task.WaitAsync(EventTimeout);
        h.Clock.Advance(TimeSpan.FromMinutes(10));
        var (outcome, _) = await running.WaitAsync(EventTimeout);

        Assert.Equal(TransactionState.Aborted, outcome.State);
        Assert.Contains("prepare deadline", outcome.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PreparingWriteSlowerThanDeadline_AbortsNamingTheDeadline_DoesNotThrow()
    {
        var h = new CoordinatorHarness();
        // The preparing write took 3 s (a busy database) against a 2 s deadline.
        h.Hooks.At(ProtocolPoint.CoordinatorAfterPreparingWritten, (_, _) =>
        {
            h.Clock.Advance(h.Settings.PrepareDeadline + TimeSpan.FromSeconds(1));
            return ValueTask.CompletedTask;
        });
        h.Transport.OnPrepare("storage", async ct =>
        {
            await Task.Delay(Timeout.Infinite, ct);
            throw new InvalidOperationException("unreachable");
        });

        var (outcome, _) = await h.ExecuteAsync("tx-1").WaitAsync(EventTimeout);

        Assert.Equal(TransactionState.Aborted, outcome.State);
        Assert.Contains("deadline", outcome.Reason, StringComparison.Ordinal);
        Assert.Equal(0, h.Journal.Count("commit:"));
    }

    [Fact]
    public async Task Prepares_AreSentInParallel_BothInFlightAtOnce()
    {
        var h = new CoordinatorHarness(new CoordinatorSettings { PrepareDeadline = TimeSpan.FromMinutes(1) });
        var bothIn = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var arrived = 0;
        foreach (var name in new[] { "storage", "delivery" })
        {
            h.Transport.OnPrepare(name, async ct =>
            {
                if (Interlocked.Increment(ref arrived) == 2)
                {
                    bothIn.TrySetResult();
                }

                // Neither answers until both are in flight: a sequential coordinator never gets here twice.
                await bothIn.Task.WaitAsync(ct);
                return new Vote(name, VoteKind.Yes);
            });
        }

        var running = h.ExecuteAsync("tx-1");
        await bothIn.Task.WaitAsync(EventTimeout);
        var (outcome, _) = await running.WaitAsync(EventTimeout);

        Assert.Equal(2, h.Transport.MaxPreparesInFlight);
        Assert.Equal(TransactionState.Committed, outcome.State);
    }

    [Fact]
    public async Task DuplicateIdempotencyKey_RunsNothingNew_ReturnsFirstOutcome()
    {
        var h = new CoordinatorHarness();
        var (first, firstCreated) = await h.ExecuteAsync("tx-1", idempotencyKey: "client-key-1");
        var messagesAfterFirst = h.Journal.Entries.Count(e => e.StartsWith("prepare:", StringComparison.Ordinal) || e.StartsWith("commit:", StringComparison.Ordinal));

        var (second, secondCreated) = await h.ExecuteAsync("tx-2", idempotencyKey: "client-key-1");

        Assert.True(firstCreated);
        Assert.False(secondCreated);
        Assert.Equal("tx-1", second.Id);
        Assert.Equal(first.State, second.State);
        Assert.Equal(messagesAfterFirst, h.Journal.Entries.Count(e => e.StartsWith("prepare:", StringComparison.Ordinal) || e.StartsWith("commit:", StringComparison.Ordinal)));
        Assert.Null(await h.Log.FindAsync("tx-2", CancellationToken.None));
    }

    [Fact]
    public async Task DuplicateWhileFirstStillPreparing_WaitsForTheFirstDecision_SendsNoPrepare()
    {
        var h = new CoordinatorHarness(new CoordinatorSettings { PrepareDeadline = TimeSpan.FromMinutes(1) });
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var inFlight = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        h.Transport.OnPrepare("storage", async ct =>
        {
            inFlight.TrySetResult();
            await release.Task.WaitAsync(ct);
            return new Vote("storage", VoteKind.Yes);
        });
        var first = h.ExecuteAsync("tx-1", idempotencyKey: "k");
        await inFlight.Task.WaitAsync(EventTimeout);

        var second = h.ExecuteAsync("tx-2", idempotencyKey: "k");
        release.SetResult();
        await first.WaitAsync(EventTimeout);
        // The duplicate polls the log on the fake clock; move the clock until it has seen the decision.
        for (var i = 0; i < 500 && !second.IsCompleted; i++)
        {
            h.Clock.Advance(TimeSpan.FromMilliseconds(20));
            await Task.Yield();
        }

        var (outcome, created) = await second.WaitAsync(EventTimeout);
        Assert.False(created);
        Assert.Equal("tx-1", outcome.Id);
        Assert.Equal(TransactionState.Committed, outcome.State);
        Assert.Equal(2, h.Journal.Count("prepare:"));
    }

    [Fact]
    public async Task ParticipantNotInDirectory_IsRejected_BeforeAnythingIsWritten()
    {
        var h = new CoordinatorHarness();
        ParticipantRef[] members = [CoordinatorHarness.Storage, new ParticipantRef("billing", new Uri("http://127.0.0.1:9"))];
        var request = new TransactionRequest("tx-1", members, TransactionRequest.SamePayload(members, "{}"));

        await Assert.ThrowsAsync<ArgumentException>(() => h.Coordinator.ExecuteAsync(request, CancellationToken.None));
        Assert.Empty(h.Journal.Entries);
    }

    [Fact]
    public async Task CommitNotAcknowledged_ScheduledWithBackoff_RecoveryRedrivesToCompletion()
    {
        var h = new CoordinatorHarness();
        var deliveryUp = false;
        h.Transport.OnDecision("delivery", (_, _) => Task.FromResult(Volatile.Read(ref deliveryUp)
            ? new Ack("delivery", AckKind.Acknowledged)
            : new Ack("delivery", AckKind.Failed, "connection refused")));

        var (outcome, _) = await h.ExecuteAsync("tx-1");

        // The client hears committed (the decision is durable), with storage's acknowledgement only.
        Assert.Equal(TransactionState.Committed, outcome.State);
        Assert.Equal(["storage"], outcome.Acknowledged);
        var retry = Assert.Single(h.Log.Retries);
        var delay = retry.NextAttemptAt - retry.At;
        Assert.InRange(delay, h.Settings.RetryInitialDelay / 2, h.Settings.RetryInitialDelay);
        var record = await h.Log.FindAsync("tx-1", CancellationToken.None);
        Assert.Equal(["storage"], record!.Acknowledged);
        Assert.False(record.IsCompleted);

        // Not due yet: recovery leaves it alone.
        Assert.Equal(0, await h.Coordinator.RecoverOnceAsync(CancellationToken.None));
        Assert.Equal(1, h.Journal.Count("commit:delivery"));

        Volatile.Write(ref deliveryUp, true);
        h.Clock.Advance(delay);
        Assert.Equal(1, await h.Coordinator.RecoverOnceAsync(CancellationToken.None));

        record = await h.Log.FindAsync("tx-1", CancellationToken.None);
        Assert.True(record!.IsCompleted);
        Assert.Equal(2, h.Journal.Count("commit:delivery"));
        // Storage already acknowledged: it is not sent the commit again.
        Assert.Equal(1, h.Journal.Count("commit:storage"));
        Assert.Equal(0, h.Journal.Count("abort:"));
    }

    [Fact]
    public async Task DecisionNeverAcknowledged_RetriesBackOffFurtherEachRound_UpToTheCap()
    {
        var h = new CoordinatorHarness();
        h.Transport.OnDecision("delivery", (_, _) => Task.FromResult(new Ack("delivery", AckKind.Failed, "down")));
        await h.ExecuteAsync("tx-1");

        for (var round = 0; round < 10; round++)
        {
            var last = h.Log.Retries[^1];
            h.Clock.Advance(last.NextAttemptAt - h.Clock.GetUtcNow());
            Assert.Equal(1, await h.Coordinator.RecoverOnceAsync(CancellationToken.None));
        }

        var delays = h.Log.Retries.Select(r => r.NextAttemptAt - r.At).ToList();
        Assert.Equal(11, delays.Count);
        for (var i = 1; i < delays.Count; i++)
        {
            // Attempt n waits between half and all of min(initial * 2^(n-1), max).
            var capped = TimeSpan.FromMilliseconds(Math.Min(h.Settings.RetryInitialDelay.TotalMilliseconds * Math.Pow(2, i), h.Settings.RetryMaxDelay.TotalMilliseconds));
            Assert.InRange(delays[i], capped / 2, capped);
            Assert.True(delays[i] >= delays[i - 1] || capped == h.Settings.RetryMaxDelay, $"round {i}: {delays[i]} < {delays[i - 1]}");
        }

        Assert.Equal(h.Settings.RetryMaxDelay, TimeSpan.FromMilliseconds(Math.Min(h.Settings.RetryInitialDelay.TotalMilliseconds * Math.Pow(2, 10), h.Settings.RetryMaxDelay.TotalMilliseconds)));
        var record = await h.Log.FindAsync("tx-1", CancellationToken.None);
        Assert.Equal(11, record!.Attempts);
        Assert.False(record.IsCompleted);
    }

    [Fact]
    public async Task PreparingJustPastDeadline_RecoveryLeavesItToTheLiveCoordinatorDuringTheGrace()
    {
        var h = new CoordinatorHarness();
        await h.BeginAsync("tx-1");

        h.Clock.Advance(h.Settings.PrepareDeadline + (h.Settings.AbandonGrace / 2));
        Assert.Equal(0, await h.Coordinator.RecoverOnceAsync(CancellationToken.None));
        Assert.Equal(TransactionState.Preparing, (await h.Log.FindAsync("tx-1", CancellationToken.None))!.State);

        h.Clock.Advance(h.Settings.AbandonGrace);
        await h.Coordinator.RecoverOnceAsync(CancellationToken.None);
        Assert.Equal(TransactionState.Aborted, (await h.Log.FindAsync("tx-1", CancellationToken.None))!.State);
    }

    [Fact]
    public async Task CoordinatorStoppedAfterPreparing_RecoveryAbortsPastDeadline_AndSendsAbortToAll()
    {
        var h = new CoordinatorHarness();
        // The coordinator wrote preparing and died before sending anything.
        await h.BeginAsync("tx-1");

        Assert.Equal(0, await h.Coordinator.RecoverOnceAsync(CancellationToken.None));
        h.Clock.Advance(h.Settings.PrepareDeadline + h.Settings.AbandonGrace);
        await h.Coordinator.RecoverOnceAsync(CancellationToken.None);

        var record = await h.Log.FindAsync("tx-1", CancellationToken.None);
        Assert.True(record!.State == TransactionState.Aborted, string.Join(" | ", h.Journal.Entries));
        Assert.Contains("prepare deadline", record.Reason, StringComparison.Ordinal);
        Assert.True(record.IsCompleted);
        Assert.Equal(1, h.Journal.Count("abort:storage"));
        Assert.Equal(1, h.Journal.Count("abort:delivery"));
        Assert.Equal(0, h.Journal.Count("commit:"));
    }

    [Fact]
    public async Task CoordinatorWithMetricsStoppedAfterPreparing_RecoveryAbortsPastDeadline()
    {
        using var metrics = new TwoPhaseMetrics();
        var h = new CoordinatorHarness(metrics: metrics);
        await h.BeginAsync("tx-1");

        h.Clock.Advance(h.Settings.PrepareDeadline + h.Settings.AbandonGrace);
        await h.Coordinator.RecoverOnceAsync(CancellationToken.None);

        var record = await h.Log.FindAsync("tx-1", CancellationToken.None);
        Assert.Equal(TransactionState.Aborted, record!.State);
        Assert.True(record.IsCompleted);
    }

    [Fact]
    public async Task RecoveryAbortsWhilePreparesInFlight_LateAllYes_CannotTurnItIntoCommit()
    {
        var h = new CoordinatorHarness(new CoordinatorSettings { PrepareDeadline = TimeSpan.FromMinutes(1) });
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var inFlight = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // The yes arrives just as the deadline passes (the transport does not observe the cancellation):
        // the live coordinator then tries to commit after recovery has already aborted.
        h.Transport.OnPrepare("storage", async _ =>
        {
            inFlight.TrySetResult();
            await release.Task;
            return new Vote("storage", VoteKind.Yes);
        });

        var live = h.ExecuteAsync("tx-1");
        await inFlight.Task.WaitAsync(EventTimeout);
        h.Clock.Advance(TimeSpan.FromMinutes(1) + h.Settings.AbandonGrace);
        await h.Coordinator.RecoverOnceAsync(CancellationToken.None);
        Assert.Equal(TransactionState.Aborted, (await h.Log.FindAsync("tx-1", CancellationToken.None))!.State);

        release.SetResult();
        var (outcome, _) = await live.WaitAsync(EventTimeout);

        Assert.Equal(TransactionState.Aborted, outcome.State);
        Assert.Equal(1, h.Journal.Count("decide-lost:tx-1:commit"));
        Assert.Equal(0, h.Journal.Count("commit:"));
        Assert.Equal(TransactionState.Aborted, (await h.Log.FindAsync("tx-1", CancellationToken.None))!.State);
    }

    [Fact]
    public async Task DecisionQuery_AfterRecoveryAbort_AnswersAborted()
    {
        var h = new CoordinatorHarness();
        await h.BeginAsync("tx-1");
        Assert.Equal(DecisionQueryAnswer.Pending, CoordinatorRules.Answer(await h.Log.FindAsync("tx-1", CancellationToken.None), h.Clock.GetUtcNow()));

        h.Clock.Advance(h.Settings.PrepareDeadline + h.Settings.AbandonGrace);
        await h.Coordinator.RecoverOnceAsync(CancellationToken.None);

        Assert.Equal(DecisionQueryAnswer.Aborted, CoordinatorRules.Answer(await h.Log.FindAsync("tx-1", CancellationToken.None), h.Clock.GetUtcNow()));
    }

    [Fact]
    public async Task RetryNow_RedrivesUnfinishedDecision_IgnoringBackoff()
    {
        var h = new CoordinatorHarness();
        var up = false;
        h.Transport.OnDecision("storage", (_, _) => Task.FromResult(new Ack("storage", Volatile.Read(ref up) ? AckKind.Acknowledged : AckKind.Failed)));
        await h.ExecuteAsync("tx-1");
        Volatile.Write(ref up, true);

        var record = await h.Coordinator.RetryNowAsync("tx-1", CancellationToken.None);

        Assert.True(record!.IsCompleted);
        Assert.Equal(2, h.Journal.Count("commit:storage"));
        Assert.Null(await h.Coordinator.RetryNowAsync("unknown", CancellationToken.None));
    }

    [Fact]
    public async Task ParticipantConflictsOnCommit_NotRedriven_ConflictRecordedVisibleAndCounted()
    {
        using var metrics = new TwoPhaseMetrics();
        using var conflicts = new CounterProbe(metrics, "twophase.coordinator.conflicts");
        var h = new CoordinatorHarness(metrics: metrics);
        h.Transport.OnDecision("delivery", (_, _) => Task.FromResult(new Ack("delivery", AckKind.Conflict, "commit for a transaction that is aborted here")));

        var (outcome, _) = await h.ExecuteAsync("tx-1");

        Assert.Equal(TransactionState.Committed, outcome.State);
        Assert.Equal(["storage"], outcome.Acknowledged);
        var record = await h.Log.FindAsync("tx-1", CancellationToken.None);
        Assert.Equal(["delivery"], record!.Conflicts);
        Assert.Equal(["storage"], record.Acknowledged);
        Assert.NotNull(record.SettledAt);
        // Terminal for the coordinator, but not completed: it stays among the unfinished, for a person.
        Assert.False(record.IsCompleted);
        Assert.Equal(["tx-1"], (await h.Log.ListUnfinishedAsync(10, CancellationToken.None)).Select(r => r.Id));
        Assert.Contains(h.Log.Writes, w => w == ("conflicts:tx-1:delivery:settled", true));
        Assert.Equal(1, conflicts.Total);

        // Nothing is re-sent, however long recovery runs, and nothing more is counted.
        Assert.Empty(h.Log.Retries);
        for (var round = 0; round < 5; round++)
        {
            h.Clock.Advance(h.Settings.RetryMaxDelay);
            Assert.Equal(0, await h.Coordinator.RecoverOnceAsync(CancellationToken.None));
        }

        Assert.Null(await h.Coordinator.RetryNowAsync("nope", CancellationToken.None));
        await h.Coordinator.RetryNowAsync("tx-1", CancellationToken.None);
        Assert.Equal(1, h.Journal.Count("commit:delivery"));
        Assert.Equal(1, h.Journal.Count("commit:storage"));
        Assert.Equal(1, conflicts.Total);
    }

    [Fact]
    public async Task OneParticipantConflicts_OtherDown_OnlyTheOtherIsRedriven_ThenSettled()
    {
        var h = new CoordinatorHarness();
        var storageUp = false;
        h.Transport.OnDecision("delivery", (_, _) => Task.FromResult(new Ack("delivery", AckKind.Conflict, "not prepared here")));
        h.Transport.OnDecision("storage", (_, _) => Task.FromResult(Volatile.Read(ref storageUp)
            ? new Ack("storage", AckKind.Acknowledged)
            : new Ack("storage", AckKind.Failed, "connection refused")));

        await h.ExecuteAsync("tx-1");

        var record = await h.Log.FindAsync("tx-1", CancellationToken.None);
        Assert.Equal(["delivery"], record!.Conflicts);
        Assert.Null(record.SettledAt);
        var retry = Assert.Single(h.Log.Retries);

        Volatile.Write(ref storageUp, true);
        h.Clock.Advance(retry.NextAttemptAt - h.Clock.GetUtcNow());
        Assert.Equal(1, await h.Coordinator.RecoverOnceAsync(CancellationToken.None));

        record = await h.Log.FindAsync("tx-1", CancellationToken.None);
        Assert.Equal(["storage"], record!.Acknowledged);
        Assert.Equal(["delivery"], record.Conflicts);
        Assert.NotNull(record.SettledAt);
        Assert.False(record.IsCompleted);
        Assert.Equal(2, h.Journal.Count("commit:storage"));
        Assert.Equal(1, h.Journal.Count("commit:delivery"));
        h.Clock.Advance(h.Settings.RetryMaxDelay);
        Assert.Equal(0, await h.Coordinator.RecoverOnceAsync(CancellationToken.None));
    }

    /// <summary>
    /// The lost abort overtaken by a late commit (issue 10, defect 1): the coordinator holds all yes votes but stalls
    /// before its commit write; recovery aborts past deadline + grace and sends ABORTs; the log's database crashes
    /// before that abort is flushed; the stalled coordinator resumes. It must not commit what the participants aborted.
    /// </summary>
    [Fact]
    public async Task StalledBeforeCommitWrite_RecoveryAbortsThenLogCrashes_ClientNotToldCommitted_NoCommitAfterAborts()
    {
        var h = new CoordinatorHarness();
        var stalled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var resume = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // Other orders' forced commits flush the log meanwhile: the preparing row itself survives the crash.
        h.Hooks.At(ProtocolPoint.CoordinatorAfterPreparingWritten, (_, _) =>
        {
            h.Log.Flush();
            return ValueTask.CompletedTask;
        });
        h.Hooks.At(ProtocolPoint.CoordinatorBeforeDecisionWritten, async (_, _) =>
        {
            stalled.TrySetResult();
            await resume.Task;
        });

        var live = h.ExecuteAsync("tx-1");
        await stalled.Task.WaitAsync(EventTimeout);
        h.Clock.Advance(h.Settings.PrepareDeadline + h.Settings.AbandonGrace);
        await h.Coordinator.RecoverOnceAsync(CancellationToken.None);
        Assert.Equal(1, h.Journal.Count("abort:storage"));
        Assert.Equal(1, h.Journal.Count("abort:delivery"));
        h.Log.Crash();
        resume.SetResult();
        var (outcome, _) = await live.WaitAsync(EventTimeout);

        Assert.True(outcome.State == TransactionState.Aborted, string.Join(" | ", h.Journal.Entries));
        var firstAbort = h.Journal.FirstIndexStartingWith("abort:");
        Assert.DoesNotContain(h.Journal.Entries.Skip(firstAbort), e => e.StartsWith("commit:", StringComparison.Ordinal));
        Assert.Equal(0, h.Journal.Count("commit:"));
        Assert.Equal(TransactionState.Aborted, (await h.Log.FindAsync("tx-1", CancellationToken.None))!.State);
        // Recovery's abort was forced, and written before its ABORTs went out.
        Assert.Contains(h.Log.Writes, w => w == ("decide:tx-1:abort", true));
        Assert.True(h.Journal.IndexOf("decide:tx-1:abort") < firstAbort, string.Join(" | ", h.Journal.Entries));
    }

    [Fact]
    public async Task CommitWrittenPastDeadlineAndGrace_LogRefusesIt_AbortedForcedAndClientToldAborted()
    {
        var h = new CoordinatorHarness();
        h.Hooks.At(ProtocolPoint.CoordinatorBeforeDecisionWritten, (_, _) =>
        {
            // A pause longer than the deadline and its grace, and no recovery ran meanwhile.
            h.Clock.Advance(h.Settings.PrepareDeadline + h.Settings.AbandonGrace);
            return ValueTask.CompletedTask;
        });

        var (outcome, _) = await h.ExecuteAsync("tx-1").WaitAsync(EventTimeout);

        Assert.Equal(TransactionState.Aborted, outcome.State);
        Assert.Contains("grace passed before the commit was written", outcome.Reason, StringComparison.Ordinal);
        Assert.Equal(1, h.Journal.Count("decide-refused:tx-1:commit"));
        Assert.Equal(0, h.Journal.Count("commit:"));
        Assert.Equal(1, h.Journal.Count("abort:storage"));
        Assert.Equal(1, h.Journal.Count("abort:delivery"));
        Assert.Contains(h.Log.Writes, w => w == ("decide:tx-1:abort", true));
        h.Log.Crash();
        Assert.Equal(TransactionState.Aborted, (await h.Log.FindAsync("tx-1", CancellationToken.None))!.State);
    }

    /// <summary>Issue 10, defect 3: what a client was told under an idempotency key survives a crash of the log's database.</summary>
    [Fact]
    public async Task KeyedTransactionAborted_LogCrashes_RetryWithSameKey_ReturnsAborted_RunsNothingNew()
    {
        var h = new CoordinatorHarness();
        h.Transport.OnPrepare("delivery", _ => Task.FromResult(new Vote("delivery", VoteKind.No, "no free courier")));
        var (first, _) = await h.ExecuteAsync("tx-1", idempotencyKey: "client-key");
        Assert.Equal(TransactionState.Aborted, first.State);

        h.Log.Crash();
        // Were the retry to run anew, it would commit now.
        h.Transport.OnPrepare("delivery", _ => Task.FromResult(new Vote("delivery", VoteKind.Yes)));
        var (second, created) = await h.ExecuteAsync("tx-2", idempotencyKey: "client-key");

        Assert.False(created);
        Assert.Equal(("tx-1", TransactionState.Aborted), (second.Id, second.State));
        Assert.Null(await h.Log.FindAsync("tx-2", CancellationToken.None));
        Assert.Equal(0, h.Journal.Count("commit:"));
        Assert.Equal(2, h.Journal.Count("prepare:"));
    }

    [Fact]
    public async Task UnkeyedAbortByTheLiveCoordinator_IsNotForced()
    {
        var h = new CoordinatorHarness();
        h.Transport.OnPrepare("delivery", _ => Task.FromResult(new Vote("delivery", VoteKind.No, "no free courier")));

        await h.ExecuteAsync("tx-1");

        // Presumed abort: nobody would commit it if it were lost, so it costs no fsync.
        Assert.Contains(h.Log.Writes, w => w == ("decide:tx-1:abort", false));
    }

    [Fact]
    public async Task RetryNowOfAbandonedTransaction_AbortsForced_BeforeSendingAborts()
    {
        var h = new CoordinatorHarness();
        await h.BeginAsync("tx-1");
        h.Clock.Advance(h.Settings.PrepareDeadline + h.Settings.AbandonGrace);

        var record = await h.Coordinator.RetryNowAsync("tx-1", CancellationToken.None);

        Assert.Equal(TransactionState.Aborted, record!.State);
        var decided = h.Log.Writes.FindIndex(w => w == ("decide:tx-1:abort", true));
        Assert.True(decided >= 0, string.Join(" | ", h.Log.Writes));
        Assert.True(h.Journal.IndexOf("decide:tx-1:abort") < h.Journal.FirstIndexStartingWith("abort:"), string.Join(" | ", h.Journal.Entries));
    }

    [Fact]
    public async Task RetryNowWithinTheGrace_LeavesPreparingToTheLiveCoordinator()
    {
        var h = new CoordinatorHarness();
        await h.BeginAsync("tx-1");
        h.Clock.Advance(h.Settings.PrepareDeadline);

        var record = await h.Coordinator.RetryNowAsync("tx-1", CancellationToken.None);

        Assert.Equal(TransactionState.Preparing, record!.State);
        Assert.Equal(0, h.Journal.Count("abort:"));
    }
}
