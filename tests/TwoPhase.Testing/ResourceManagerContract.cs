using Dapper;
using Microsoft.Extensions.Time.Testing;
using TwoPhase.Persistence;
using TwoPhase.Protocol;

namespace TwoPhase.Testing;

/// <summary>
/// The participant compliance suite, written once against the resource manager contract (docs/participant-guide.md):
/// an <see cref="IResourceManager"/> run by the ledger engine, <see cref="LedgerParticipant"/>, on a real database.
/// Derive one sealed class per resource manager and store, for example
/// <c>public sealed class PaymentsOnSqlite() : PaymentsContract(new SqliteTarget());</c>, and say what the resource
/// manager holds through five members: a new instance, how to add units of a scarce resource, a payload that takes
/// one unit, a payload it refuses (or none), and a normalised snapshot of what it holds.
/// </summary>
/// <remarks>
/// The cases check what the protocol needs of every participant, by observing the holdings only: a refusal changes
/// nothing, an abort gives back exactly what the prepare took, a commit keeps it, every message may arrive twice,
/// an abort may arrive before its prepare, PREPAREs share one local transaction (a batch) without affecting each
/// other, a participant that dies between two writes finishes the transaction after a restart, and concurrent
/// PREPAREs never hold more than there is. Units are counted by probing: the kit prepares one-unit payloads until
/// one is refused, then aborts them and checks that the snapshot is back where it was.
/// </remarks>
/// <param name="store">Where the fresh databases come from; disposed with the test when it is <see cref="IAsyncDisposable"/>
/// (a <see cref="SqliteTarget"/>), left to xunit when it is a class fixture (a <see cref="PostgresServerFixture"/>).</param>
public abstract class ResourceManagerContract(IDatabaseTarget store) : IAsyncLifetime
{
    private static readonly CancellationToken None = CancellationToken.None;
    private Database? _database;
    private int _probes;

    /// <summary>The clock every participant of the test reads; the in-doubt cases move it.</summary>
    protected FakeTimeProvider Clock { get; } = new(new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero));

    /// <summary>The hooks of every participant of the test: <see cref="CrashPoint.Arm"/> makes the next one die at a point.</summary>
    protected CrashPoint Crash { get; } = new();

    /// <summary>The test's database (the resource manager's tables and the ledger, as in production).</summary>
    protected Database Database => _database ?? throw new InvalidOperationException("The suite is not initialised.");

    /// <summary>The participant under test; replaced by <see cref="Restart"/>.</summary>
    protected LedgerParticipant Participant { get; private set; } = null!;

    // ---- what the resource manager under test provides ----------------------------------------------

    /// <summary>A new instance of the resource manager under test; called again at every <see cref="Restart"/>.</summary>
    protected abstract IResourceManager CreateResourceManager();

    /// <summary>
    /// Adds <paramref name="units"/> more units of one scarce resource (stock of one product, free couriers, funds of one
    /// account) to <paramref name="database"/>, whose schema exists; called more than once, the units add up.
    /// </summary>
    protected abstract Task AddUnitsAsync(Database database, int units);

    /// <summary>
    /// A valid PREPARE payload that takes exactly one unit of that resource: accepted while a unit is free, refused
    /// when none is. <paramref name="n"/> only tells payloads apart (an order id); every one asks for the same.
    /// </summary>
    protected abstract string OneUnit(int n);

    /// <summary>
    /// A valid PREPARE payload the resource manager must refuse however many units are free (it asks for more than there
    /// is, or for an item that does not exist); null when it refuses only for want of units, and then the kit's refusal
    /// cases refuse by holding every unit first.
    /// </summary>
    protected abstract string? Refused(int n);

    /// <summary>
    /// What the resource manager holds, as text two equal states render equally: rows in a fixed order, no clock values,
    /// no ledger columns. A prepare that is aborted must leave the same text as before it.
    /// </summary>
    protected abstract Task<string> SnapshotAsync(Database database);

    // ---- lifetime -------------------------------------------------------------------------------------

    /// <summary>A fresh database with the ledger and the resource manager's schema, and a participant over it.</summary>
    public virtual async Task InitializeAsync()
    {
        _database = await store.CreateDatabaseAsync();
        Participant = NewParticipant();
        await Participant.InitializeAsync(None);
    }

    /// <summary>Disposes the database, and the store when the suite owns it.</summary>
    public virtual async Task DisposeAsync()
    {
        if (_database is not null)
        {
            await _database.DisposeAsync();
        }

        if (store is IAsyncDisposable owned)
        {
            await owned.DisposeAsync();
        }

        GC.SuppressFinalize(this);
    }

    /// <summary>
    /// A restart: a new <see cref="LedgerParticipant"/> and a new resource manager over the same database, with nothing
    /// of the old instances' memory. A suite calls it after <see cref="SimulatedCrashException"/>.
    /// </summary>
    protected LedgerParticipant Restart() => Participant = NewParticipant();

    private LedgerParticipant NewParticipant() => new(Database, CreateResourceManager(), Clock, Crash);

    // ---- PREPARE, COMMIT, ABORT -----------------------------------------------------------------------

    /// <summary>PREPARE with a free unit votes yes, holds the unit, and writes the ledger row prepared in the same local transaction.</summary>
    [Fact]
    public async Task Prepare_VotesYes_HoldsTheUnit_LedgerPrepared()
    {
        await AddUnitsAsync(Database, 1);
        var before = await SnapshotAsync(Database);

        var (vote, reason) = await PrepareAsync("tx-1", 1);

        Assert.Equal((VoteKind.Yes, null), (vote, reason));
        Assert.NotEqual(before, await SnapshotAsync(Database));
        Assert.Equal(LedgerState.Prepared, (await Participant.FindAsync("tx-1", None))!.State);
        Assert.Equal(0, await CountFreeUnitsAsync());
    }

    /// <summary>COMMIT after PREPARE keeps what was held and marks the row committed.</summary>
    [Fact]
    public async Task PreparedThenCommitted_CommitKeepsTheUnit_LedgerCommitted()
    {
        await AddUnitsAsync(Database, 1);
        var before = await SnapshotAsync(Database);
        await PrepareAsync("tx-1", 1);

        var result = await Participant.CommitAsync("tx-1", None);

        Assert.Equal(new DecisionResult(LedgerState.Committed, false, null), result);
        Assert.NotEqual(before, await SnapshotAsync(Database));
        Assert.Equal(LedgerState.Committed, (await Participant.FindAsync("tx-1", None))!.State);
        Assert.Equal(0, await CountFreeUnitsAsync());
    }

    /// <summary>ABORT after PREPARE gives back exactly what was held and marks the row aborted.</summary>
    [Fact]
    public async Task PreparedThenAborted_AbortGivesBackExactly_LedgerAborted()
    {
        await AddUnitsAsync(Database, 1);
        var before = await SnapshotAsync(Database);
        await PrepareAsync("tx-1", 1);

        var result = await Participant.AbortAsync("tx-1", None);

        Assert.Equal(new DecisionResult(LedgerState.Aborted, false, null), result);
        Assert.Equal(before, await SnapshotAsync(Database));
        Assert.Equal(LedgerState.Aborted, (await Participant.FindAsync("tx-1", None))!.State);
        Assert.Equal(1, await CountFreeUnitsAsync());
    }

    /// <summary>A redelivered PREPARE holds nothing more and answers the first vote (idempotency).</summary>
    [Fact]
    public async Task PrepareDeliveredTwice_HoldsOnce_SameVote()
    {
        await AddUnitsAsync(Database, 2);
        var first = await PrepareAsync("tx-1", 1);
        var once = await SnapshotAsync(Database);

        var second = await PrepareAsync("tx-1", 1);

        Assert.Equal((VoteKind.Yes, null), first);
        Assert.Equal(first, second);
        Assert.Equal(once, await SnapshotAsync(Database));
        Assert.Equal(1, await CountFreeUnitsAsync());
    }

    /// <summary>With nothing free, PREPARE votes no with a reason, changes no business row, and records the refusal.</summary>
    [Fact]
    public async Task NoUnitFree_VotesNoWithReason_ChangesNothing_LedgerRefused()
    {
        await AddUnitsAsync(Database, 1);
        await PrepareAsync("tx-0", 0);
        var before = await SnapshotAsync(Database);

        var (vote, reason) = await PrepareAsync("tx-1", 1);

        Assert.Equal(VoteKind.No, vote);
        Assert.False(string.IsNullOrWhiteSpace(reason));
        Assert.Equal(before, await SnapshotAsync(Database));
        var row = await Participant.FindAsync("tx-1", None);
        Assert.Equal((LedgerState.Refused, null), (row!.State, row.Holding));
    }

    /// <summary>A payload the resource manager refuses is a no vote that leaves every free unit free.</summary>
    [Fact]
    public async Task RefusedPayload_VotesNo_ChangesNothing_FreeUnitsStayFree()
    {
        await AddUnitsAsync(Database, 2);
        var (refused, free) = await RefusableAsync(1);
        var before = await SnapshotAsync(Database);

        var (vote, reason) = await Participant.PrepareAsync("tx-1", refused, None);

        Assert.Equal(VoteKind.No, vote);
        Assert.False(string.IsNullOrWhiteSpace(reason));
        Assert.Equal(before, await SnapshotAsync(Database));
        Assert.Equal(free, await CountFreeUnitsAsync());
    }

    /// <summary>A refusal is final: the same PREPARE repeated after units were added still votes no and holds nothing.</summary>
    [Fact]
    public async Task RefusedPrepareRepeated_AfterUnitsAdded_StillVotesNo_HoldsNothing()
    {
        await AddUnitsAsync(Database, 1);
        await PrepareAsync("tx-0", 0);
        Assert.Equal(VoteKind.No, (await PrepareAsync("tx-1", 1)).Vote);
        await AddUnitsAsync(Database, 1);

        var (vote, _) = await PrepareAsync("tx-1", 1);

        // The vote is the ledger row's: a transaction answers PREPARE the same way every time.
        Assert.Equal(VoteKind.No, vote);
        Assert.Equal(1, await CountFreeUnitsAsync());
    }

    /// <summary>ABORT of a transaction never prepared leaves a tombstone, so a PREPARE arriving late votes no and holds nothing.</summary>
    [Fact]
    public async Task AbortBeforePrepare_LeavesTombstone_LatePrepareVotesNo_HoldsNothing()
    {
        await AddUnitsAsync(Database, 1);
        var before = await SnapshotAsync(Database);

        var abort = await Participant.AbortAsync("tx-1", None);
        var tombstone = await Participant.FindAsync("tx-1", None);
        var (vote, _) = await PrepareAsync("tx-1", 1);

        Assert.Equal(new DecisionResult(LedgerState.Aborted, false, null), abort);
        Assert.Equal(LedgerState.Aborted, tombstone!.State);
        Assert.Equal(VoteKind.No, vote);
        Assert.Equal(before, await SnapshotAsync(Database));
        Assert.Equal(LedgerState.Aborted, (await Participant.FindAsync("tx-1", None))!.State);
        Assert.Equal(1, await CountFreeUnitsAsync());
    }

    /// <summary>A repeated COMMIT changes nothing: the unit is kept once.</summary>
    [Fact]
    public async Task CommitRepeated_IsNoOp_KeptOnce()
    {
        await AddUnitsAsync(Database, 2);
        await PrepareAsync("tx-1", 1);
        await Participant.CommitAsync("tx-1", None);
        var committed = await SnapshotAsync(Database);

        var again = await Participant.CommitAsync("tx-1", None);

        Assert.Equal(new DecisionResult(LedgerState.Committed, false, null), again);
        Assert.Equal(committed, await SnapshotAsync(Database));
        Assert.Equal(1, await CountFreeUnitsAsync());
    }

    /// <summary>A repeated ABORT gives back nothing more than the transaction's own unit.</summary>
    [Fact]
    public async Task AbortRepeated_IsNoOp_GivesBackOnly_ItsOwnUnit()
    {
        await AddUnitsAsync(Database, 2);
        await PrepareAsync("tx-1", 1);
        await PrepareAsync("tx-2", 2);
        await Participant.AbortAsync("tx-1", None);
        var aborted = await SnapshotAsync(Database);

        var again = await Participant.AbortAsync("tx-1", None);

        Assert.Equal(new DecisionResult(LedgerState.Aborted, false, null), again);
        Assert.Equal(aborted, await SnapshotAsync(Database));
        // tx-2 still holds its unit: a repeated abort must not release someone else's.
        Assert.Equal(1, await CountFreeUnitsAsync());
    }

    /// <summary>COMMIT of a transaction never prepared is a conflict and writes no ledger row.</summary>
    [Fact]
    public async Task CommitOfUnknownTransaction_IsConflict_InventsNoRow()
    {
        await AddUnitsAsync(Database, 1);
        var before = await SnapshotAsync(Database);

        var result = await Participant.CommitAsync("tx-unknown", None);

        Assert.Equal((null, true), (result.State, result.Conflict));
        Assert.NotNull(result.Detail);
        Assert.Null(await Participant.FindAsync("tx-unknown", None));
        Assert.Equal(before, await SnapshotAsync(Database));
    }

    /// <summary>COMMIT of a refused transaction is a conflict and changes nothing.</summary>
    [Fact]
    public async Task CommitOfRefusedTransaction_IsConflict_ChangesNothing()
    {
        await AddUnitsAsync(Database, 1);
        await PrepareAsync("tx-0", 0);
        await PrepareAsync("tx-1", 1);

        await AssertConflictChangesNothingAsync(Decision.Commit, "tx-1", LedgerState.Refused);
    }

    /// <summary>COMMIT of an aborted transaction is a conflict and changes nothing.</summary>
    [Fact]
    public async Task CommitOfAbortedTransaction_IsConflict_ChangesNothing()
    {
        await AddUnitsAsync(Database, 1);
        await PrepareAsync("tx-1", 1);
        await Participant.AbortAsync("tx-1", None);

        await AssertConflictChangesNothingAsync(Decision.Commit, "tx-1", LedgerState.Aborted);
        Assert.Equal(1, await CountFreeUnitsAsync());
    }

    /// <summary>COMMIT over a tombstone (aborted before prepare) is a conflict and changes nothing.</summary>
    [Fact]
    public async Task CommitOfTombstone_IsConflict_ChangesNothing()
    {
        await AddUnitsAsync(Database, 1);
        await Participant.AbortAsync("tx-1", None);

        await AssertConflictChangesNothingAsync(Decision.Commit, "tx-1", LedgerState.Aborted);
    }

    /// <summary>ABORT of a committed transaction is a conflict; the commit stands.</summary>
    [Fact]
    public async Task AbortOfCommittedTransaction_IsConflict_CommitStands()
    {
        await AddUnitsAsync(Database, 1);
        await PrepareAsync("tx-1", 1);
        await Participant.CommitAsync("tx-1", None);

        await AssertConflictChangesNothingAsync(Decision.Abort, "tx-1", LedgerState.Committed);
        Assert.Equal(0, await CountFreeUnitsAsync());
    }

    /// <summary>ABORT of a refused transaction is the expected end of a no vote: answered, no conflict, nothing changed.</summary>
    [Fact]
    public async Task AbortOfRefusedTransaction_AnswersRefused_NoConflict_ChangesNothing()
    {
        await AddUnitsAsync(Database, 1);
        await PrepareAsync("tx-0", 0);
        await PrepareAsync("tx-1", 1);
        var before = await SnapshotAsync(Database);

        var result = await Participant.AbortAsync("tx-1", None);

        Assert.Equal((LedgerState.Refused, false), (result.State, result.Conflict));
        Assert.Equal(before, await SnapshotAsync(Database));
    }

    // ---- batches: PREPAREs sharing one local transaction ----------------------------------------------

    /// <summary>
    /// A refusal inside a batch (group commit: one local transaction for all) is that message's own no: the others
    /// vote as they would alone, hold what they took, and the refused one leaves nothing behind.
    /// </summary>
    [Fact]
    public async Task BatchWithOneRefusal_OthersVoteYesAndHold_RefusedOneLeavesNothing()
    {
        await AddUnitsAsync(Database, 2);
        var before = await SnapshotAsync(Database);
        var refused = Refused(3);

        // Without a payload refused outright, the third one-unit PREPARE of the batch is refused for want of units.
        var votes = refused is null
            ? await Concurrently.InOneBatchAsync(Database, () => PrepareAsync("tx-a", 1), () => PrepareAsync("tx-b", 2), () => PrepareAsync("tx-r", 3))
            : await Concurrently.InOneBatchAsync(Database, () => PrepareAsync("tx-a", 1), () => Participant.PrepareAsync("tx-r", refused, None), () => PrepareAsync("tx-b", 2));
        var (a, r, b) = refused is null ? (votes[0], votes[2], votes[1]) : (votes[0], votes[1], votes[2]);

        Assert.Equal((VoteKind.Yes, null), a);
        Assert.Equal((VoteKind.Yes, null), b);
        Assert.Equal(VoteKind.No, r.Vote);
        Assert.False(string.IsNullOrWhiteSpace(r.Reason));
        Assert.Equal(LedgerState.Refused, (await Participant.FindAsync("tx-r", None))!.State);
        Assert.Equal(0, await CountFreeUnitsAsync());

        // What the two hold is exactly what they took: aborting both gives everything back.
        await Participant.AbortAsync("tx-a", None);
        await Participant.AbortAsync("tx-b", None);
        Assert.Equal(before, await SnapshotAsync(Database));
    }

    /// <summary>
    /// A PREPARE the ledger already answers (here a tombstone) shares a batch with a new one that needs the same last
    /// unit: the tombstoned one must not hold it, even for the length of the batch.
    /// </summary>
    [Fact]
    public async Task TombstonedPrepareAndNewPrepareInOneBatch_NewOneGetsTheLastUnit()
    {
        await AddUnitsAsync(Database, 1);
        await Participant.AbortAsync("tx-x", None);

        var votes = await Concurrently.InOneBatchAsync(Database, () => PrepareAsync("tx-x", 1), () => PrepareAsync("tx-y", 2));

        Assert.Equal(VoteKind.No, votes[0].Vote);
        Assert.Equal((VoteKind.Yes, null), votes[1]);
        Assert.Equal(LedgerState.Aborted, (await Participant.FindAsync("tx-x", None))!.State);
        Assert.Equal(LedgerState.Prepared, (await Participant.FindAsync("tx-y", None))!.State);
        Assert.Equal(0, await CountFreeUnitsAsync());
    }

    /// <summary>A repeated and a new PREPARE in one group-commit batch both vote yes, and the repeat holds once.</summary>
    [Fact]
    public async Task RepeatedPrepareAndNewPrepareInOneBatch_BothVoteYes_RepeatHoldsOnce()
    {
        await AddUnitsAsync(Database, 2);
        Assert.Equal(VoteKind.Yes, (await PrepareAsync("tx-x", 1)).Vote);

        var votes = await Concurrently.InOneBatchAsync(Database, () => PrepareAsync("tx-x", 1), () => PrepareAsync("tx-y", 2));

        Assert.All(votes, v => Assert.Equal((VoteKind.Yes, null), v));
        Assert.Equal(0, await CountFreeUnitsAsync());
    }

    // ---- crashes between the writes --------------------------------------------------------------------

    /// <summary>
    /// The participant dies at <paramref name="point"/> (what was durable before it stays, the rest never happens) and
    /// restarts over the same database; the coordinator's decision, sent again as recovery does, then lands exactly once.
    /// </summary>
    [Theory]
    [InlineData(ProtocolPoint.ParticipantAfterPrepareWritten, Decision.Commit)]
    [InlineData(ProtocolPoint.ParticipantAfterPrepareWritten, Decision.Abort)]
    [InlineData(ProtocolPoint.ParticipantBeforePrepareAnswered, Decision.Commit)]
    [InlineData(ProtocolPoint.ParticipantBeforeCommitWritten, Decision.Commit)]
    [InlineData(ProtocolPoint.ParticipantAfterCommitWritten, Decision.Commit)]
    [InlineData(ProtocolPoint.ParticipantBeforeAbortWritten, Decision.Abort)]
    [InlineData(ProtocolPoint.ParticipantAfterAbortWritten, Decision.Abort)]
    public async Task CrashBetweenWrites_RestartedParticipant_FinishesTheDecisionOnce(ProtocolPoint point, Decision decision)
    {
        await AddUnitsAsync(Database, 1);
        var before = await SnapshotAsync(Database);
        var inPrepare = point is ProtocolPoint.ParticipantAfterPrepareWritten or ProtocolPoint.ParticipantBeforePrepareAnswered;
        if (inPrepare)
        {
            Crash.Arm(point);
            await Assert.ThrowsAsync<SimulatedCrashException>(() => PrepareAsync("tx-1", 1));
        }
        else
        {
            Assert.Equal(VoteKind.Yes, (await PrepareAsync("tx-1", 1)).Vote);
            Crash.Arm(point);
            await Assert.ThrowsAsync<SimulatedCrashException>(() => Participant.DecideAsync("tx-1", decision, None));
        }

        Restart();
        if (inPrepare)
        {
            // The vote never left, but the prepare was durable: the restarted participant holds it, in doubt.
            Assert.Equal(["tx-1"], (await Participant.ListPreparedAsync(10, None)).Select(e => e.TransactionId));
            Assert.Equal(0, await CountFreeUnitsAsync());
        }

        var result = await Participant.DecideAsync("tx-1", decision, None);

        var final = decision == Decision.Commit ? LedgerState.Committed : LedgerState.Aborted;
        Assert.Equal(new DecisionResult(final, false, null), result);
        Assert.Equal(final, (await Participant.FindAsync("tx-1", None))!.State);
        Assert.Empty(await Participant.ListPreparedAsync(10, None));
        Assert.Equal(decision == Decision.Commit ? 0 : 1, await CountFreeUnitsAsync());
        if (decision == Decision.Abort)
        {
            Assert.Equal(before, await SnapshotAsync(Database));
        }
    }

    /// <summary>A crash before the PREPARE's write commits leaves nothing held after restart; the later ABORT leaves a tombstone.</summary>
    [Fact]
    public async Task CrashBeforePrepareWritten_RestartedParticipantHoldsNothing_LateAbortLeavesTombstone()
    {
        await AddUnitsAsync(Database, 1);
        var before = await SnapshotAsync(Database);
        Crash.Arm(ProtocolPoint.ParticipantBeforePrepareWritten);
        await Assert.ThrowsAsync<SimulatedCrashException>(() => PrepareAsync("tx-1", 1));

        Restart();

        Assert.Null(await Participant.FindAsync("tx-1", None));
        Assert.Equal(before, await SnapshotAsync(Database));
        Assert.Equal(new DecisionResult(LedgerState.Aborted, false, null), await Participant.AbortAsync("tx-1", None));
        Assert.Equal(VoteKind.No, (await PrepareAsync("tx-1", 1)).Vote);
        Assert.Equal(1, await CountFreeUnitsAsync());
    }

    // ---- concurrency ------------------------------------------------------------------------------------

    /// <summary>Concurrent PREPAREs for fewer units than requests never hold more than exists: exactly as many yes votes as units.</summary>
    [Fact]
    public async Task ConcurrentPreparesOnScarceUnits_NeverOverHold_ExactlyUnitsManyYes()
    {
        await AddUnitsAsync(Database, 5);
        var before = await SnapshotAsync(Database);

        var votes = await Concurrently.RunAsync(40, i => PrepareAsync($"tx-{i:D3}", i));

        Assert.Equal(5, votes.Count(v => v.Vote == VoteKind.Yes));
        Assert.All(votes.Where(v => v.Vote != VoteKind.Yes), v => Assert.Equal(VoteKind.No, v.Vote));
        Assert.Equal(5, await LedgerCountAsync("prepared"));
        Assert.Equal(35, await LedgerCountAsync("refused"));
        Assert.Equal(0, await CountFreeUnitsAsync());

        // The five hold exactly one unit each: aborting them gives everything back.
        foreach (var i in Enumerable.Range(0, 40).Where(i => votes[i].Vote == VoteKind.Yes))
        {
            Assert.False((await Participant.AbortAsync($"tx-{i:D3}", None)).Conflict);
        }

        Assert.Equal(before, await SnapshotAsync(Database));
    }

    /// <summary>Concurrent duplicates of one PREPARE hold once and all vote yes.</summary>
    [Fact]
    public async Task ConcurrentDuplicatePreparesOfOneId_HoldOnce_AllVoteYes()
    {
        await AddUnitsAsync(Database, 2);

        var votes = await Concurrently.RunAsync(20, _ => PrepareAsync("tx-dup", 1));

        Assert.All(votes, v => Assert.Equal((VoteKind.Yes, null), v));
        Assert.Equal(1, await CountFreeUnitsAsync());
    }

    /// <summary>
    /// COMMITs and ABORTs arriving together, each twice (a retry racing the first send), and three that contradict or
    /// precede the ledger: every message gets the answer it would get alone, and exactly the aborted units come back.
    /// </summary>
    [Fact]
    public async Task MixedDecisionsTogether_EachAnsweredAsAlone_AbortedUnitsComeBack()
    {
        await AddUnitsAsync(Database, 20);
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(VoteKind.Yes, (await PrepareAsync($"tx-{i:D2}", i)).Vote);
        }

        Assert.Equal(VoteKind.No, (await PrepareAsync("tx-refused", 99)).Vote);

        // 0-9 committed twice each, 10-19 aborted twice each, then a ghost commit, a commit of a refusal, an early abort.
        var results = await Concurrently.RunAsync(43, i => i switch
        {
            < 20 => Participant.CommitAsync($"tx-{i % 10:D2}", None),
            < 40 => Participant.AbortAsync($"tx-{10 + (i % 10):D2}", None),
            40 => Participant.CommitAsync("tx-ghost", None),
            41 => Participant.CommitAsync("tx-refused", None),
            _ => Participant.AbortAsync("tx-early", None),
        });

        Assert.All(results[..20], r => Assert.Equal((LedgerState.Committed, false), (r.State, r.Conflict)));
        Assert.All(results[20..40], r => Assert.Equal((LedgerState.Aborted, false), (r.State, r.Conflict)));
        Assert.Equal((null, true), (results[40].State, results[40].Conflict));
        Assert.Equal((LedgerState.Refused, true), (results[41].State, results[41].Conflict));
        Assert.Equal((LedgerState.Aborted, false), (results[42].State, results[42].Conflict));
        Assert.Null(await Participant.FindAsync("tx-ghost", None));
        Assert.Equal(LedgerState.Aborted, (await Participant.FindAsync("tx-early", None))!.State);
        Assert.Equal(10, await CountFreeUnitsAsync());
    }

    // ---- the ledger's own duties --------------------------------------------------------------------------

    /// <summary>A prepared row older than the in-doubt timeout is found in doubt, and a scheduled check defers it until due.</summary>
    [Fact]
    public async Task PreparedRowOlderThanInDoubtTimeout_IsFoundInDoubt_ScheduledCheckDefersIt()
    {
        await AddUnitsAsync(Database, 2);
        await PrepareAsync("tx-old", 1);
        Clock.Advance(TimeSpan.FromSeconds(10));
        await PrepareAsync("tx-new", 2);
        await Participant.AbortAsync("tx-gone", None);
        var now = Clock.GetUtcNow();
        var preparedBefore = now - TimeSpan.FromSeconds(5);

        Assert.Equal(["tx-old"], (await Participant.FindInDoubtAsync(preparedBefore, now, 10, None)).Select(e => e.TransactionId));

        await Participant.ScheduleCheckAsync("tx-old", now + TimeSpan.FromSeconds(1), None);
        Assert.Empty(await Participant.FindInDoubtAsync(preparedBefore, now, 10, None));
        Assert.Equal(1, (await Participant.FindAsync("tx-old", None))!.Checks);
        Assert.Single(await Participant.FindInDoubtAsync(preparedBefore, now + TimeSpan.FromSeconds(1), 10, None));

        // Once decided, the row is no longer in doubt.
        await Participant.CommitAsync("tx-old", None);
        Assert.Empty(await Participant.FindInDoubtAsync(preparedBefore, now + TimeSpan.FromMinutes(1), 10, None));
        Assert.Equal(["tx-new"], (await Participant.ListPreparedAsync(10, None)).Select(e => e.TransactionId));
    }

    /// <summary>The ledger listing pages in transaction-id order without skipping or repeating a row.</summary>
    [Fact]
    public async Task LedgerList_PagesInIdOrder()
    {
        foreach (var id in new[] { "c", "a", "b", "d" })
        {
            await Participant.AbortAsync(id, None);
        }

        Assert.Equal(["a", "b"], (await Participant.ListAsync(null, 2, None)).Select(e => e.TransactionId));
        Assert.Equal(["c", "d"], (await Participant.ListAsync("b", 2, None)).Select(e => e.TransactionId));
    }

    // ---- helpers --------------------------------------------------------------------------------------------

    /// <summary>PREPARE of <see cref="OneUnit"/>(<paramref name="n"/>) as <paramref name="transactionId"/>.</summary>
    protected Task<(VoteKind Vote, string? Reason)> PrepareAsync(string transactionId, int n) =>
        Participant.PrepareAsync(transactionId, OneUnit(n), None);

    /// <summary>
    /// How many units are free, found by preparing one-unit payloads until one is refused (at most
    /// <paramref name="limit"/>), then aborting them; the snapshot must be back where it was, or the abort gave back
    /// more or less than the prepares took.
    /// </summary>
    protected async Task<int> CountFreeUnitsAsync(int limit = 100)
    {
        var before = await SnapshotAsync(Database);
        var probe = Interlocked.Increment(ref _probes);
        var held = new List<string>();
        for (var i = 0; i <= limit; i++)
        {
            var id = $"probe-{probe}-{i:D3}";
            if ((await Participant.PrepareAsync(id, OneUnit(10_000 + i), None)).Vote != VoteKind.Yes)
            {
                break;
            }

            held.Add(id);
        }

        Assert.True(held.Count <= limit, $"more than {limit} units free: AddUnitsAsync or OneUnit do not match");
        foreach (var id in held)
        {
            Assert.Equal(new DecisionResult(LedgerState.Aborted, false, null), await Participant.AbortAsync(id, None));
        }

        Assert.Equal(before, await SnapshotAsync(Database));
        return held.Count;
    }

    /// <summary>
    /// A payload to refuse with <see cref="Refused"/>, and how many units stay free: with none given, every unit is
    /// held first (by <c>hold-*</c> transactions) and the one-unit payload is refused for want of units.
    /// </summary>
    private async Task<(string Payload, int Free)> RefusableAsync(int n)
    {
        if (Refused(n) is { } refused)
        {
            return (refused, await CountFreeUnitsAsync());
        }

        var holding = 0;
        while ((await PrepareAsync($"hold-{holding:D3}", 20_000 + holding)).Vote == VoteKind.Yes)
        {
            holding++;
            Assert.True(holding <= 100, "more than 100 units free: AddUnitsAsync or OneUnit do not match");
        }

        return (OneUnit(n), 0);
    }

    private async Task AssertConflictChangesNothingAsync(Decision decision, string transactionId, LedgerState standing)
    {
        var before = await SnapshotAsync(Database);

        var result = await Participant.DecideAsync(transactionId, decision, None);

        Assert.Equal((standing, true), (result.State, result.Conflict));
        Assert.NotNull(result.Detail);
        Assert.Equal(before, await SnapshotAsync(Database));
        Assert.Equal(standing, (await Participant.FindAsync(transactionId, None))!.State);
    }

    private Task<long> LedgerCountAsync(string state) =>
        Database.ReadAsync(c => c.ExecuteScalarAsync<long>(new CommandDefinition("SELECT COUNT(*) FROM tp_ledger WHERE state = @State", new { State = state })), None);
}
