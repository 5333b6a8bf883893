using Dapper;
using Microsoft.Extensions.Time.Testing;
using TwoPhase.Persistence;
using TwoPhase.Protocol;

namespace TwoPhase.Tests.Storage;

/// <summary>The coordinator's <see cref="SqlDecisionLog"/> on real SQL, written once and run against every store.</summary>
public abstract class DecisionLogComplianceTests : IAsyncLifetime
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly ParticipantRef Storage = new("storage", new Uri("http://127.0.0.1:8002"));
    private static readonly ParticipantRef Delivery = new("delivery", new Uri("http://127.0.0.1:8001"));
    private static readonly Vote[] AllYes = [new("storage", VoteKind.Yes), new("delivery", VoteKind.Yes)];
    private Database? _db;

    protected FakeTimeProvider Clock { get; } = new(new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero));

    protected SqlDecisionLog Log { get; private set; } = null!;

    private DateTimeOffset Now => Clock.GetUtcNow();

    private DateTimeOffset Deadline => Now + TimeSpan.FromSeconds(2);

    /// <summary>As the coordinator's default: abandoned one second after the deadline.</summary>
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(1);

    private Task<(TransactionRecord Record, bool Created)> BeginAsync(TransactionRequest request, DateTimeOffset deadline, CancellationToken cancellationToken) =>
        Log.BeginAsync(request, deadline, deadline + Grace, cancellationToken);

    /// <summary>The due transactions, claimed with a lease of zero: still due after, so a test may look again.</summary>
    private Task<IReadOnlyList<TransactionRecord>> DueAsync(int limit = 10) => Log.ClaimDueAsync(TimeSpan.Zero, limit, None);

    /// <summary>A new, empty database of the store under test.</summary>
    protected abstract Task<Database> CreateDatabaseAsync();

    public virtual async Task InitializeAsync()
    {
        _db = await CreateDatabaseAsync();
        Log = new SqlDecisionLog(_db, Clock);
        await Log.InitializeAsync(None);
    }

    public virtual async Task DisposeAsync()
    {
        if (_db is not null)
        {
            await _db.DisposeAsync();
        }
    }

    [Fact]
    public async Task Begin_RecordsPreparing_WithParticipantsPayloadAndDeadline()
    {
        var deadline = Deadline;

        var (record, created) = await BeginAsync(Request("tx-1"), deadline, None);
        var found = await Log.FindAsync("tx-1", None);

        Assert.True(created);
        Assert.Equal(TransactionState.Preparing, record.State);
        Assert.NotNull(found);
        Assert.Equal(TransactionState.Preparing, found.State);
        Assert.Equal(["storage", "delivery"], found.Participants);
        Assert.Equal("""{"items":[{"sku":"widget","quantity":1}]}""", found.PayloadOf("storage"));
        Assert.Equal("""{"orderId":"tx-1"}""", found.PayloadOf("delivery"));
        Assert.Equal(deadline, found.Deadline);
        Assert.Equal(Now, found.CreatedAt);
        Assert.Empty(found.Acknowledged);
        Assert.Empty(found.Votes);
        Assert.Null(found.DecidedAt);
        Assert.False(found.IsCompleted);
        Assert.Equal(0, found.Attempts);
    }

    [Fact]
    public async Task BeginSameIdTwice_SecondCreatesNothing_ReturnsTheFirst()
    {
        await BeginAsync(Request("tx-1"), Deadline, None);

        var (record, created) = await BeginAsync(Request("tx-1") with { Payloads = TransactionRequest.SamePayload([Storage, Delivery], "{}") }, Deadline + TimeSpan.FromHours(1), None);

        Assert.False(created);
        Assert.Equal("tx-1", record.Id);
        Assert.NotEqual("{}", record.PayloadOf("storage"));
    }

    [Fact]
    public async Task IdempotencyKeyReusedByAnotherId_ReturnsFirstRecord_WritesNothing()
    {
        await BeginAsync(Request("tx-1", key: "client-key", hash: "h1"), Deadline, None);

        var (record, created) = await BeginAsync(Request("tx-2", key: "client-key", hash: "h2"), Deadline, None);

        Assert.False(created);
        Assert.Equal("tx-1", record.Id);
        Assert.Equal("h1", record.RequestHash);
        Assert.Null(await Log.FindAsync("tx-2", None));
        Assert.Equal("tx-1", (await Log.FindByIdempotencyKeyAsync("client-key", None))!.Id);
        Assert.Null(await Log.FindByIdempotencyKeyAsync("other-key", None));
    }

    [Fact]
    public async Task ConcurrentBeginsWithOneIdempotencyKey_ExactlyOneCreated_AllSeeIt()
    {
        var results = await Concurrently.RunAsync(20, i => BeginAsync(Request($"tx-{i:D2}", key: "same-key"), Deadline, None));

        var winner = Assert.Single(results, r => r.Created);
        Assert.All(results, r => Assert.Equal(winner.Record.Id, r.Record.Id));
        Assert.Single(await Log.ListAsync(null, 100, None));
    }

    [Fact]
    public async Task Decide_RecordsDecisionVotesReasonAndWhen()
    {
        await BeginAsync(Request("tx-1"), Deadline, None);
        Clock.Advance(TimeSpan.FromMilliseconds(300));
        var next = Now + TimeSpan.FromSeconds(4);

        var record = await Log.DecideAsync("tx-1", Decision.Abort, "delivery voted no: no free courier", [new("storage", VoteKind.Yes), new("delivery", VoteKind.No, "no free courier")], next, Durability.Relaxed, None);

        Assert.Equal(TransactionState.Aborted, record.State);
        Assert.Equal("delivery voted no: no free courier", record.Reason);
        Assert.Equal(Now, record.DecidedAt);
        // The next attempt is 4 s from now on the database's clock (PostgreSQL: the server's, not this test's fake one):
        // the decider's lease, so not yet due.
        Assert.NotNull(record.NextAttemptAt);
        Assert.Empty(await DueAsync());
        Assert.Equal(Log.ReplicaId, record.Owner);
        Assert.Equal([new("storage", VoteKind.Yes), new("delivery", VoteKind.No, "no free courier")], record.Votes);
        Assert.Equal(record, await Log.FindAsync("tx-1", None), new RecordComparer());
    }

    [Fact]
    public async Task SecondDecide_ChangesNothing_ReturnsTheStandingDecision()
    {
        await BeginAsync(Request("tx-1"), Deadline, None);
        await Log.DecideAsync("tx-1", Decision.Commit, null, AllYes, Now, Durability.Relaxed, None);

        var second = await Log.DecideAsync("tx-1", Decision.Abort, "recovery: prepare deadline passed", [], Now, Durability.Relaxed, None);

        Assert.Equal(TransactionState.Committed, second.State);
        Assert.Null(second.Reason);
        Assert.Equal(AllYes, second.Votes);
        Assert.Equal(TransactionState.Committed, (await Log.FindAsync("tx-1", None))!.State);
    }

    [Fact]
    public async Task RecoveryAbortedFirst_LateCommitDecide_CannotTurnItIntoCommit()
    {
        await BeginAsync(Request("tx-1"), Deadline, None);
        await Log.DecideAsync("tx-1", Decision.Abort, "prepare deadline passed", [], Now, Durability.Relaxed, None);

        var late = await Log.DecideAsync("tx-1", Decision.Commit, null, AllYes, Now, Durability.Relaxed, None);

        Assert.Equal(TransactionState.Aborted, late.State);
        Assert.Equal("prepare deadline passed", late.Reason);
    }

    [Fact]
    public async Task CommitAndAbortDecideRacing_ExactlyOneWins_BothSeeTheWinner()
    {
        for (var t = 0; t < 10; t++)
        {
            var id = $"tx-{t}";
            await BeginAsync(Request(id), Deadline, None);

            var results = await Concurrently.RunAsync(2, i => i == 0
                ? Log.DecideAsync(id, Decision.Commit, null, AllYes, Now, Durability.Relaxed, None)
                : Log.DecideAsync(id, Decision.Abort, "recovery", [], Now, Durability.Relaxed, None));

            Assert.Equal(results[0].State, results[1].State);
            Assert.Equal(results[0].State, (await Log.FindAsync(id, None))!.State);
        }
    }

    [Fact]
    public async Task DecideOfUnknownTransaction_Throws()
    {
        await Assert.ThrowsAsync<InvalidOperationException>(() => Log.DecideAsync("nope", Decision.Commit, null, AllYes, Now, Durability.Relaxed, None));
    }

    [Fact]
    public async Task Acknowledge_PartialThenComplete_RecordsWhoAndWhen()
    {
        await BeginAsync(Request("tx-1"), Deadline, None);
        await Log.DecideAsync("tx-1", Decision.Commit, null, AllYes, Now, Durability.Relaxed, None);

        await Log.AcknowledgeAsync("tx-1", ["storage"], complete: false, None);
        var partial = await Log.FindAsync("tx-1", None);
        Clock.Advance(TimeSpan.FromSeconds(1));
        await Log.AcknowledgeAsync("tx-1", ["storage", "delivery"], complete: true, None);
        var complete = await Log.FindAsync("tx-1", None);

        Assert.Equal(["storage"], partial!.Acknowledged);
        Assert.False(partial.IsCompleted);
        Assert.Equal(["storage", "delivery"], complete!.Acknowledged);
        Assert.Equal(Now, complete.CompletedAt);
        Assert.Empty(await Log.ListUnfinishedAsync(10, None));
    }

    [Fact]
    public async Task ScheduleRetry_CountsAttempt_HidesTransactionUntilDue()
    {
        await BeginAsync(Request("tx-1"), Deadline, None);
        await Log.DecideAsync("tx-1", Decision.Commit, null, AllYes, Now, Durability.Relaxed, None);
        Assert.Single(await DueAsync());

        // The next attempt is a distance from now on the database's clock: a minute ahead is not due, a moment
        // behind is, whatever the (fake) process clock reads.
        await Log.ScheduleRetryAsync("tx-1", Now + TimeSpan.FromMinutes(1), None);
        Assert.Empty(await DueAsync());
        Assert.Equal(1, (await Log.FindAsync("tx-1", None))!.Attempts);

        await Log.ScheduleRetryAsync("tx-1", Now - TimeSpan.FromMilliseconds(1), None);
        var due = Assert.Single(await DueAsync());
        Assert.Equal(2, due.Attempts);
    }

    [Fact]
    public async Task ScheduleRetryAfterCompleted_ChangesNothing()
    {
        await BeginAsync(Request("tx-1"), Deadline, None);
        await Log.DecideAsync("tx-1", Decision.Abort, "no", [], Now, Durability.Relaxed, None);
        await Log.AcknowledgeAsync("tx-1", ["storage", "delivery"], complete: true, None);

        await Log.ScheduleRetryAsync("tx-1", Now + TimeSpan.FromSeconds(5), None);

        var record = await Log.FindAsync("tx-1", None);
        Assert.Equal(0, record!.Attempts);
        Assert.True(record.IsCompleted);
        Assert.Empty(await DueAsync(10));
    }

    /// <summary>
    /// Abandonment is judged by the database's clock (PostgreSQL: the server's), which here is far from the test's fake
    /// clock: only the distance from now given at begin counts, so the moments are in the past or future of both.
    /// </summary>
    [Fact]
    public async Task FindAbandoned_ReturnsOnlyPreparingPastTheirAbandonMoment_OldestFirst()
    {
        await Log.BeginAsync(Request("tx-old"), Now - TimeSpan.FromSeconds(2), Now - TimeSpan.FromSeconds(1), None);
        Clock.Advance(TimeSpan.FromMilliseconds(10));
        await Log.BeginAsync(Request("tx-decided"), Now - TimeSpan.FromSeconds(2), Now - TimeSpan.FromSeconds(1), None);
        await Log.DecideAsync("tx-decided", Decision.Abort, "no", [], Now, Durability.Relaxed, None);
        Clock.Advance(TimeSpan.FromMilliseconds(10));
        await Log.BeginAsync(Request("tx-later"), Now - TimeSpan.FromSeconds(2), Now - TimeSpan.FromSeconds(1), None);
        Clock.Advance(TimeSpan.FromMilliseconds(10));
        // Past its deadline, but not its abandon moment: still the live coordinator's.
        await Log.BeginAsync(Request("tx-in-grace"), Now - TimeSpan.FromSeconds(1), Now + TimeSpan.FromMinutes(1), None);
        await Log.BeginAsync(Request("tx-fresh"), Now + TimeSpan.FromMinutes(1), Now + TimeSpan.FromMinutes(2), None);

        Assert.Equal(["tx-old", "tx-later"], (await Log.FindAbandonedAsync(10, None)).Select(r => r.Id));
        Assert.Equal(["tx-old"], (await Log.FindAbandonedAsync(1, None)).Select(r => r.Id));
    }

    /// <summary>
    /// The commit write and recovery's abort are disjoint in time (issue 10, defect 1): past its abandon moment a
    /// transaction takes no commit, whoever asks, and is left preparing for an abort, which it still takes.
    /// </summary>
    [Fact]
    public async Task CommitPastAbandonMoment_IsRefused_LeftPreparing_AbortStillTaken()
    {
        await Log.BeginAsync(Request("tx-late"), Now - TimeSpan.FromSeconds(2), Now - TimeSpan.FromMilliseconds(500), None);
        await Log.BeginAsync(Request("tx-in-grace"), Now - TimeSpan.FromSeconds(1), Now + TimeSpan.FromMinutes(1), None);

        var late = await Log.DecideAsync("tx-late", Decision.Commit, null, AllYes, Now, Durability.Relaxed, None);
        var inGrace = await Log.DecideAsync("tx-in-grace", Decision.Commit, null, AllYes, Now, Durability.Relaxed, None);

        Assert.Equal(TransactionState.Preparing, late.State);
        Assert.Null(late.DecidedAt);
        Assert.Equal(TransactionState.Preparing, (await Log.FindAsync("tx-late", None))!.State);
        Assert.Equal(TransactionState.Committed, inGrace.State);
        Assert.Equal(["tx-late"], (await Log.FindAbandonedAsync(10, None)).Select(r => r.Id));

        var aborted = await Log.DecideAsync("tx-late", Decision.Abort, "prepare deadline passed", AllYes, Now, Durability.Forced, None);
        Assert.Equal(TransactionState.Aborted, aborted.State);
        Assert.Empty(await Log.FindAbandonedAsync(10, None));
    }

    /// <summary>Commit decisions arriving together share one UPDATE: each one past its abandon moment is refused alone.</summary>
    [Fact]
    public async Task ConcurrentCommits_SomePastTheirAbandonMoment_OnlyThoseRefused()
    {
        for (var i = 0; i < 20; i++)
        {
            var abandonAt = i % 2 == 0 ? Now - TimeSpan.FromSeconds(1) : Now + TimeSpan.FromMinutes(1);
            await Log.BeginAsync(Request($"tx-{i:D2}"), Now - TimeSpan.FromSeconds(2), abandonAt, None);
        }

        var decided = await Concurrently.RunAsync(20, i => Log.DecideAsync($"tx-{i:D2}", Decision.Commit, null, AllYes, Now, Durability.Relaxed, None));

        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(i % 2 == 0 ? TransactionState.Preparing : TransactionState.Committed, decided[i].State);
            Assert.Equal(decided[i].State, (await Log.FindAsync($"tx-{i:D2}", None))!.State);
        }
    }

    [Fact]
    public async Task ForcedAndRelaxedAborts_AreBothRecorded_AndStand()
    {
        await BeginAsync(Request("tx-1"), Deadline, None);
        await BeginAsync(Request("tx-2"), Deadline, None);

        var forced = await Log.DecideAsync("tx-1", Decision.Abort, "recovery", [], Now, Durability.Forced, None);
        var relaxed = await Log.DecideAsync("tx-2", Decision.Abort, "no", [], Now, Durability.Relaxed, None);
        var late = await Log.DecideAsync("tx-1", Decision.Commit, null, AllYes, Now, Durability.Relaxed, None);

        Assert.Equal((TransactionState.Aborted, "recovery"), (forced.State, forced.Reason));
        Assert.Equal((TransactionState.Aborted, "no"), (relaxed.State, relaxed.Reason));
        Assert.Equal(TransactionState.Aborted, late.State);
    }

    /// <summary>Issue 10, defect 5: a late partial acknowledgement must not shrink what a completed transaction recorded.</summary>
    [Fact]
    public async Task PartialAcknowledgementAfterCompleted_ChangesNothing()
    {
        await BeginAsync(Request("tx-1"), Deadline, None);
        await Log.DecideAsync("tx-1", Decision.Commit, null, AllYes, Now, Durability.Relaxed, None);
        await Log.AcknowledgeAsync("tx-1", ["storage", "delivery"], complete: true, None);

        await Log.AcknowledgeAsync("tx-1", ["storage"], complete: false, None);

        var record = await Log.FindAsync("tx-1", None);
        Assert.True(record!.IsCompleted);
        Assert.Equal(["storage", "delivery"], record.Acknowledged);
    }

    [Fact]
    public async Task PartialAcknowledgementsRacing_OnlyGrow()
    {
        await BeginAsync(Request("tx-1"), Deadline, None);
        await Log.DecideAsync("tx-1", Decision.Commit, null, AllYes, Now, Durability.Relaxed, None);

        // Two rounds, each knowing only its own acknowledgement.
        await Log.AcknowledgeAsync("tx-1", ["delivery"], complete: false, None);
        await Log.AcknowledgeAsync("tx-1", ["storage"], complete: false, None);

        var record = await Log.FindAsync("tx-1", None);
        Assert.Equal(["delivery", "storage"], record!.Acknowledged);
        Assert.False(record.IsCompleted);
    }

    /// <summary>Issue 10, defect 5: a refused (409) decision is recorded, visible, and ends re-driving once everyone answered.</summary>
    [Fact]
    public async Task RecordConflicts_Visible_SettledStopsRedrive_StaysUnfinished()
    {
        await BeginAsync(Request("tx-1"), Deadline, None);
        await Log.DecideAsync("tx-1", Decision.Commit, null, AllYes, Now, Durability.Relaxed, None);

        await Log.RecordConflictsAsync("tx-1", [], ["delivery"], settled: false, None);
        var unsettled = await Log.FindAsync("tx-1", None);
        Assert.Equal(["delivery"], unsettled!.Conflicts);
        Assert.Null(unsettled.SettledAt);
        Assert.Single(await DueAsync(10));

        Clock.Advance(TimeSpan.FromSeconds(1));
        await Log.RecordConflictsAsync("tx-1", ["storage"], [], settled: true, None);

        var settled = await Log.FindAsync("tx-1", None);
        Assert.Equal(["delivery"], settled!.Conflicts);
        Assert.Equal(["storage"], settled.Acknowledged);
        Assert.Equal(Now, settled.SettledAt);
        Assert.False(settled.IsCompleted);
        Assert.Empty(await DueAsync(10));
        Assert.Equal(["tx-1"], (await Log.ListUnfinishedAsync(10, None)).Select(r => r.Id));
    }

    /// <summary>A database made before the conflict and abandon columns existed gets them at start-up, twice harmlessly.</summary>
    [Fact]
    public async Task InitializeOnOldSchema_AddsNewColumns_OldRowsReadable_Idempotent()
    {
        await _db!.WriteAsync(
            async tx =>
            {
                await using var command = tx.Connection.CreateCommand();
                command.Transaction = tx.Transaction;
                command.CommandText = """
                    DROP TABLE tp_transactions;
                    CREATE TABLE tp_transactions (
                        tx_id TEXT PRIMARY KEY, state TEXT NOT NULL, participants TEXT NOT NULL, acknowledged TEXT NOT NULL DEFAULT '[]',
                        votes TEXT NOT NULL DEFAULT '[]', reason TEXT NULL, payload TEXT NOT NULL, idempotency_key TEXT NULL UNIQUE,
                        request_hash TEXT NULL, created_ms BIGINT NOT NULL, deadline_ms BIGINT NOT NULL, decided_ms BIGINT NULL,
                        completed_ms BIGINT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_ms BIGINT NULL);
                    INSERT INTO tp_transactions (tx_id, state, participants, payload, created_ms, deadline_ms) VALUES ('tx-old', 'preparing', '["storage","delivery"]', '{}', 0, 0);
                    """;
                await command.ExecuteNonQueryAsync();
            },
            None);

        await Log.InitializeAsync(None);
        await Log.InitializeAsync(None);

        var old = await Log.FindAsync("tx-old", None);
        Assert.Empty(old!.Conflicts);
        Assert.Null(old.SettledAt);
        // An old row's deadline stands in for its abandon moment: long past.
        Assert.Equal(["tx-old"], (await Log.FindAbandonedAsync(10, None)).Select(r => r.Id));
        await BeginAsync(Request("tx-new"), Deadline, None);
        await Log.RecordConflictsAsync("tx-old", [], ["storage"], settled: false, None);
        Assert.Equal(["storage"], (await Log.FindAsync("tx-old", None))!.Conflicts);
    }

    [Fact]
    public async Task ClaimDue_ExcludesPreparingCompletedAndNotYetDue_OldestFirst_Limited()
    {
        await BeginAsync(Request("tx-preparing"), Deadline, None);
        foreach (var id in new[] { "tx-a", "tx-b", "tx-c", "tx-done", "tx-later" })
        {
            Clock.Advance(TimeSpan.FromMilliseconds(10));
            await BeginAsync(Request(id), Deadline, None);
            await Log.DecideAsync(id, Decision.Commit, null, AllYes, Now, Durability.Relaxed, None);
        }

        await Log.AcknowledgeAsync("tx-done", ["storage", "delivery"], complete: true, None);
        await Log.ScheduleRetryAsync("tx-later", Now + TimeSpan.FromMinutes(1), None);

        Assert.Equal(["tx-a", "tx-b", "tx-c"], (await DueAsync(10)).Select(r => r.Id));
        Assert.Equal(["tx-a", "tx-b"], (await DueAsync(2)).Select(r => r.Id));
    }

    [Fact]
    public async Task ListUnfinished_HoldsPreparingAndDecided_NotCompleted_OldestFirst()
    {
        foreach (var id in new[] { "tx-z", "tx-y", "tx-x" })
        {
            await BeginAsync(Request(id), Deadline, None);
            Clock.Advance(TimeSpan.FromMilliseconds(10));
        }

        await Log.DecideAsync("tx-y", Decision.Abort, "no", [], Now, Durability.Relaxed, None);
        await Log.DecideAsync("tx-x", Decision.Commit, null, AllYes, Now, Durability.Relaxed, None);
        await Log.AcknowledgeAsync("tx-x", ["storage", "delivery"], complete: true, None);

        Assert.Equal(["tx-z", "tx-y"], (await Log.ListUnfinishedAsync(10, None)).Select(r => r.Id));
        Assert.Equal(["tx-z"], (await Log.ListUnfinishedAsync(1, None)).Select(r => r.Id));
    }

    [Fact]
    public async Task List_PagesInIdOrder()
    {
        foreach (var id in new[] { "c", "a", "d", "b" })
        {
            await BeginAsync(Request(id), Deadline, None);
        }

        Assert.Equal(["a", "b"], (await Log.ListAsync(null, 2, None)).Select(r => r.Id));
        Assert.Equal(["c", "d"], (await Log.ListAsync("b", 10, None)).Select(r => r.Id));
        Assert.Empty(await Log.ListAsync("d", 10, None));
    }

    /// <summary>
    /// Commit decisions arriving together share one group commit and one UPDATE: each is recorded once, a repeat gets
    /// the same record, and a transaction already aborted keeps its abort. Completions together all land.
    /// </summary>
    [Fact]
    public async Task ConcurrentCommitDecisionsAndCompletions_EachRecordedOnce_EarlierAbortStands()
    {
        for (var i = 0; i < 30; i++)
        {
            await BeginAsync(Request($"tx-{i:D2}"), Deadline, None);
        }

        await Log.DecideAsync("tx-29", Decision.Abort, "deadline passed", [], Now, Durability.Relaxed, None);

        // 0-28 twice each (a duplicate racing the first), and 29, already aborted.
        var decided = await Concurrently.RunAsync(59, i => Log.DecideAsync($"tx-{(i == 58 ? 29 : i % 29):D2}", Decision.Commit, null, AllYes, Now + TimeSpan.FromSeconds(4), Durability.Relaxed, None));

        for (var i = 0; i < 58; i++)
        {
            Assert.Equal((TransactionState.Committed, $"tx-{i % 29:D2}"), (decided[i].State, decided[i].Id));
            Assert.Equal(AllYes, decided[i].Votes);
        }

        Assert.Equal((TransactionState.Aborted, "deadline passed"), (decided[58].State, decided[58].Reason));

        await Concurrently.RunAsync(29, async i =>
        {
            await Log.AcknowledgeAsync($"tx-{i:D2}", ["storage", "delivery"], complete: true, None);
            return true;
        });
        for (var i = 0; i < 29; i++)
        {
            var record = await Log.FindAsync($"tx-{i:D2}", None);
            Assert.Equal((TransactionState.Committed, true), (record!.State, record.IsCompleted));
            Assert.Equal(["storage", "delivery"], record.Acknowledged);
        }

        Assert.Equal(["tx-29"], (await Log.ListUnfinishedAsync(100, None)).Select(r => r.Id));
    }

    /// <summary>Begins arriving together share one INSERT: distinct ones are all created; one idempotency key is taken once.</summary>
    [Fact]
    public async Task ConcurrentBegins_DistinctAllCreated_SameKeyCreatedOnce()
    {
        var distinct = await Concurrently.RunAsync(30, i => BeginAsync(Request($"tx-{i:D2}", key: $"key-{i:D2}", hash: "h"), Deadline, None));
        Assert.All(distinct, d => Assert.True(d.Created));
        Assert.Equal(30, (await Log.ListUnfinishedAsync(100, None)).Count);

        var sameKey = await Concurrently.RunAsync(20, i => BeginAsync(Request($"retry-{i:D2}", key: "one-key", hash: "h"), Deadline, None));
        var created = Assert.Single(sameKey, d => d.Created);
        Assert.All(sameKey, d => Assert.Equal(created.Record.Id, d.Record.Id));
        Assert.Equal(31, (await Log.ListUnfinishedAsync(100, None)).Count);
    }

    /// <summary>Each participant its own payload after payloads became per participant; recovery re-drives with them.</summary>
    [Fact]
    public async Task Begin_KeepsEachParticipantsOwnPayload_AndTheCallersMetadata_ThroughDecisionAndListings()
    {
        await BeginAsync(Request("tx-1") with { Metadata = """{"order":"mine"}""" }, Deadline, None);
        await Log.DecideAsync("tx-1", Decision.Commit, null, AllYes, Now, Durability.Relaxed, None);

        var due = Assert.Single(await DueAsync(10));
        foreach (var record in new[] { (await Log.FindAsync("tx-1", None))!, due, Assert.Single(await Log.ListAsync(null, 10, None)) })
        {
            Assert.Equal(2, record.Payloads.Count);
            Assert.Equal("""{"items":[{"sku":"widget","quantity":1}]}""", record.PayloadOf("storage"));
            Assert.Equal("""{"orderId":"tx-1"}""", record.PayloadOf("delivery"));
            Assert.Equal("""{"order":"mine"}""", record.Metadata);
        }
    }

    /// <summary>
    /// A decision log created before payloads were per participant: starting on it adds the columns, and its rows, whose
    /// one payload every participant received, read as that payload for each (and as the caller's metadata), so recovery
    /// re-drives them as they were begun. New rows beside them keep their own payloads.
    /// </summary>
    [Fact]
    public async Task LogFromBeforePerParticipantPayloads_Migrated_OldRowReadsSamePayloadForAll()
    {
        await using var db = await CreateDatabaseAsync();
        await db.ExecuteScriptAsync(
            """
            CREATE TABLE tp_transactions (
                tx_id TEXT PRIMARY KEY, state TEXT NOT NULL, participants TEXT NOT NULL, acknowledged TEXT NOT NULL DEFAULT '[]',
                votes TEXT NOT NULL DEFAULT '[]', reason TEXT NULL, payload TEXT NOT NULL, idempotency_key TEXT NULL UNIQUE,
                request_hash TEXT NULL, created_ms BIGINT NOT NULL, deadline_ms BIGINT NOT NULL, decided_ms BIGINT NULL,
                completed_ms BIGINT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_ms BIGINT NULL
            );
            """,
            None);
        var old = """{"orderId":"tx-old","items":[{"sku":"widget","quantity":1}]}""";
        await db.WriteAsync(
            tx => tx.Connection.ExecuteAsync(new CommandDefinition(
                """INSERT INTO tp_transactions (tx_id, state, participants, votes, payload, created_ms, deadline_ms, decided_ms) VALUES ('tx-old', 'committed', '["storage","delivery"]', '[]', @Old, 0, 0, 0)""",
                new { Old = old },
                tx.Transaction)),
            None);

        var log = new SqlDecisionLog(db, Clock);
        await log.InitializeAsync(None);
        await log.BeginAsync(Request("tx-new"), Deadline, Deadline + Grace, None);

        var migrated = (await log.FindAsync("tx-old", None))!;
        Assert.Equal(TransactionState.Committed, migrated.State);
        Assert.Equal(old, migrated.PayloadOf("storage"));
        Assert.Equal(old, migrated.PayloadOf("delivery"));
        Assert.Equal(old, migrated.Metadata);
        var redriven = Assert.Single(await log.ClaimDueAsync(TimeSpan.Zero, 10, None));
        Assert.Equal(old, redriven.PayloadOf("delivery"));
        var fresh = (await log.FindAsync("tx-new", None))!;
        Assert.Equal("""{"orderId":"tx-new"}""", fresh.PayloadOf("delivery"));
        Assert.Null(fresh.Metadata);
    }

    private static TransactionRequest Request(string id, string? key = null, string? hash = null) =>
        new(id, [Storage, Delivery], new Dictionary<string, string> { ["storage"] = """{"items":[{"sku":"widget","quantity":1}]}""", ["delivery"] = $$"""{"orderId":"{{id}}"}""" }, key, hash);

    /// <summary>Records hold lists, which compare by reference; compare them by content.</summary>
    private sealed class RecordComparer : IEqualityComparer<TransactionRecord?>
    {
        private static readonly string[] NoNames = [];
        private static readonly Vote[] NoVotes = [];
        private static readonly Dictionary<string, string> NoPayloads = [];

        public bool Equals(TransactionRecord? x, TransactionRecord? y) =>
            x is not null && y is not null
            && x with { Participants = NoNames, Acknowledged = NoNames, Votes = NoVotes, Payloads = NoPayloads } == y with { Participants = NoNames, Acknowledged = NoNames, Votes = NoVotes, Payloads = NoPayloads }
            && x.Payloads.OrderBy(p => p.Key, StringComparer.Ordinal).SequenceEqual(y.Payloads.OrderBy(p => p.Key, StringComparer.Ordinal))
            && x.Participants.SequenceEqual(y.Participants)
            && x.Acknowledged.SequenceEqual(y.Acknowledged)
            && x.Votes.SequenceEqual(y.Votes);

        public int GetHashCode(TransactionRecord? obj) => obj?.Id.GetHashCode(StringComparison.Ordinal) ?? 0;
    }
}
