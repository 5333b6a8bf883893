using TwoPhase.Protocol;
using static TwoPhase.Tests.Protocol.CoordinatorHarness;

namespace TwoPhase.Tests.Protocol;

/// <summary>
/// What the coordinator promises beyond the outcome: the fault points in order, the grace honoured, one decision
/// write for a clean commit, the seeded jitter used, what a recovery scan reports, and messages that say what happened.
/// </summary>
public sealed class CoordinatorContractTests
{
    [Fact]
    public async Task CleanCommit_ReachesEveryCoordinatorFaultPointOnce_BetweenTheWritesTheyName()
    {
        var h = new CoordinatorHarness();

        await h.ExecuteAsync("tx-1");

        // Chaos and the fault tests crash the coordinator at these points; each must be where its name says.
        var order = new[]
        {
            "begin:tx-1",
            "hook:CoordinatorAfterPreparingWritten",
            "hook:CoordinatorAfterPreparesSent",
            "hook:CoordinatorBeforeDecisionWritten",
            "decide:tx-1:commit",
            "hook:CoordinatorAfterDecisionWritten",
            "hook:CoordinatorBetweenPhaseTwoSends",
            "hook:CoordinatorBeforeCompletedWritten",
            "completed:tx-1",
        };
        var seen = h.Journal.Entries.Where(order.Contains).ToList();
        Assert.Equal(order, seen);
        Assert.True(h.Journal.IndexOf("hook:CoordinatorAfterPreparesSent") > h.Journal.FirstIndexStartingWith("prepare:"), string.Join(" | ", h.Journal.Entries));
    }

    [Fact]
    public async Task CleanCommit_WritesOneDecision_NoAbortAfterIt()
    {
        var h = new CoordinatorHarness();

        var (outcome, _) = await h.ExecuteAsync("tx-1");

        Assert.Equal(TransactionState.Committed, outcome.State);
        Assert.Equal(["decide:tx-1:commit"], h.Journal.Entries.Where(e => e.StartsWith("decide", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task CommitWrittenPastTheDeadlineButWithinTheGrace_IsTaken()
    {
        var h = new CoordinatorHarness();
        h.Hooks.At(ProtocolPoint.CoordinatorBeforeDecisionWritten, (_, _) =>
        {
            // Slow, but the grace is there for exactly this: the live coordinator still wins.
            h.Clock.Advance(h.Settings.PrepareDeadline + (h.Settings.AbandonGrace / 2));
            return ValueTask.CompletedTask;
        });

        var (outcome, _) = await h.ExecuteAsync("tx-1").WaitAsync(EventTimeout);

        Assert.Equal(TransactionState.Committed, outcome.State);
        Assert.Equal(0, h.Journal.Count("decide-refused:"));
        Assert.Equal(0, h.Journal.Count("abort:"));
    }

    [Fact]
    public async Task SeededJitter_IsTheOneTheRetryDelayUses()
    {
        var h = new CoordinatorHarness();
        h.Transport.OnDecision("delivery", (_, _) => Task.FromResult(new Ack("delivery", AckKind.Failed, "down")));
        var coordinator = new TwoPhaseCoordinator(
            h.Log, h.Transport, new Dictionary<string, ParticipantRef> { [CoordinatorHarness.Storage.Name] = CoordinatorHarness.Storage, [Delivery.Name] = Delivery },
            h.Settings, h.Clock, h.Hooks, jitter: new Random(42));

        await coordinator.ExecuteAsync(Request("tx-1"), CancellationToken.None);

        // The simulator replays a seed only if the backoff draws from the Random it was given.
        var expected = Backoff.Delay(1, h.Settings.RetryInitialDelay, h.Settings.RetryMaxDelay, new Random(42).NextDouble());
        var retry = Assert.Single(h.Log.Retries);
        Assert.Equal(expected, retry.NextAttemptAt - retry.At);
    }

    [Fact]
    public async Task RecoveryScan_CountsTheAbortItWrote_AndThePhaseTwoRoundThatSentIt()
    {
        var h = new CoordinatorHarness();
        await h.BeginAsync("tx-1");
        h.Clock.Advance(h.Settings.PrepareDeadline + h.Settings.AbandonGrace);

        Assert.Equal(2, await h.Coordinator.RecoverOnceAsync(CancellationToken.None));
        Assert.Equal(1, h.Journal.Count("abort:storage"));
        Assert.Equal(0, await h.Coordinator.RecoverOnceAsync(CancellationToken.None));
    }

    [Fact]
    public async Task DriveOfACompletedTransaction_SendsAndWritesNothing()
    {
        var h = new CoordinatorHarness();
        await h.ExecuteAsync("tx-1");
        var completed = (await h.Log.FindAsync("tx-1", CancellationToken.None))!;
        var before = h.Journal.Entries.Count;

        var acknowledged = await h.Coordinator.DriveAsync(completed, CancellationToken.None);

        Assert.Equal(completed.Participants, acknowledged);
        Assert.Equal(before, h.Journal.Entries.Count);
    }

    [Fact]
    public async Task ParticipantNotInDirectory_TheErrorNamesIt()
    {
        var h = new CoordinatorHarness();
        ParticipantRef[] participants = [CoordinatorHarness.Storage, new ParticipantRef("billing", new Uri("http://127.0.0.1:8009"))];
        var request = new TransactionRequest("tx-1", participants, TransactionRequest.SamePayload(participants, "{}"));

        var error = await Assert.ThrowsAsync<ArgumentException>(() => h.Coordinator.ExecuteAsync(request, CancellationToken.None));

        Assert.Contains("'billing'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ParticipantWithoutItsPayload_Refused_NamingIt_NothingWritten()
    {
        var h = new CoordinatorHarness();
        var request = new TransactionRequest("tx-1", [CoordinatorHarness.Storage, Delivery], TransactionRequest.SamePayload([CoordinatorHarness.Storage], "{}"));

        var error = await Assert.ThrowsAsync<ArgumentException>(() => h.Coordinator.ExecuteAsync(request, CancellationToken.None));

        Assert.Contains($"'{Delivery.Name}' has no payload", error.Message, StringComparison.Ordinal);
        Assert.Null(await h.Log.FindAsync("tx-1", CancellationToken.None));
    }

    [Fact]
    public async Task PayloadForNoParticipant_Refused_NamingIt_NothingWritten()
    {
        var h = new CoordinatorHarness();
        var payloads = new Dictionary<string, string> { [CoordinatorHarness.Storage.Name] = "{}", [Delivery.Name] = "{}", ["billing"] = "{}" };
        var request = new TransactionRequest("tx-1", [CoordinatorHarness.Storage, Delivery], payloads);

        var error = await Assert.ThrowsAsync<ArgumentException>(() => h.Coordinator.ExecuteAsync(request, CancellationToken.None));

        Assert.Contains("'billing' names no participant", error.Message, StringComparison.Ordinal);
        Assert.Null(await h.Log.FindAsync("tx-1", CancellationToken.None));
    }

    [Fact]
    public void NoUsableAnswerWithoutReason_DecidesAbort_SayingNoAnswer()
    {
        var (decision, reason) = CoordinatorRules.Decide(["storage", "delivery"], [new Vote("storage", VoteKind.None), new Vote("delivery", VoteKind.Yes)]);

        Assert.Equal(Decision.Abort, decision);
        Assert.Equal("storage gave no vote: no answer", reason);
    }

    [Fact]
    public void PreparingState_HasNoDecision_AndTheErrorSaysSo() =>
        Assert.Contains("preparing", Assert.Throws<InvalidOperationException>(() => CoordinatorRules.ToDecision(TransactionState.Preparing)).Message, StringComparison.Ordinal);

    [Theory]
    [InlineData(null, Decision.Commit, "never prepared")]
    [InlineData(LedgerState.Refused, Decision.Commit, "refused")]
    [InlineData(LedgerState.Aborted, Decision.Commit, "aborted")]
    [InlineData(LedgerState.Committed, Decision.Abort, "already committed")]
    public void Contradiction_ItsDetailSaysWhatTheLedgerHolds(LedgerState? state, Decision decision, string detail)
    {
        // The 409 and its loud log carry this text: the person resolving the conflict reads it.
        var step = ParticipantRules.OnDecision(decision, state);

        Assert.Equal(ParticipantAction.Conflict, step.Action);
        Assert.Contains(detail, step.Answer.Detail, StringComparison.Ordinal);
    }
}
