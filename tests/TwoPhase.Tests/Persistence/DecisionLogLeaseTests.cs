using TwoPhase.Persistence;
using TwoPhase.Protocol;
using TwoPhase.Tests.Protocol.Fakes;

namespace TwoPhase.Tests.Persistence;

/// <summary>
/// Coordinator replicas sharing one decision log (issue 14): two <see cref="SqlDecisionLog"/>s with their own replica
/// ids on one database, and <see cref="TwoPhaseCoordinator"/>s over them. The leases are on the database's clock, so
/// these tests run on real time (short leases, bounded waits), never on a fake clock the database cannot see.
/// </summary>
public abstract class DecisionLogLeaseTests : IAsyncLifetime
{
    protected static readonly CancellationToken None = CancellationToken.None;
    private static readonly ParticipantRef Storage = new("storage", new Uri("http://127.0.0.1:8002"));
    private static readonly ParticipantRef Delivery = new("delivery", new Uri("http://127.0.0.1:8001"));
    private static readonly Vote[] AllYes = [new("storage", VoteKind.Yes), new("delivery", VoteKind.Yes)];
    private static readonly Dictionary<string, ParticipantRef> Directory = new() { ["storage"] = Storage, ["delivery"] = Delivery };

    /// <summary>The longest any test waits for something to happen; a bound, never a measured figure.</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private Database? _db;

    protected SqlDecisionLog A { get; private set; } = null!;

    protected SqlDecisionLog B { get; private set; } = null!;

    protected Database Db => _db!;

    protected abstract Task<Database> CreateDatabaseAsync();

    public virtual async Task InitializeAsync()
    {
        _db = await CreateDatabaseAsync();
        A = new SqlDecisionLog(_db, TimeProvider.System, "replica-a");
        B = new SqlDecisionLog(_db, TimeProvider.System, "replica-b");
        await A.InitializeAsync(None);
        await B.InitializeAsync(None);
    }

    public virtual async Task DisposeAsync()
    {
        if (_db is not null)
        {
            await _db.DisposeAsync();
        }
    }

    [Fact]
    public async Task ConcurrentClaimsFromTwoReplicas_EachDueTransactionClaimedByExactlyOne_AndOwnedByIt()
    {
        var ids = Enumerable.Range(0, 40).Select(i => $"tx-{i:D2}").ToArray();
        foreach (var id in ids)
        {
            await CommittedDueAsync(A, id);
        }

        // Twenty claims at once, alternating replicas, each for up to eight: more asked for than there is.
        var claims = await Concurrently.RunAsync(20, i => (i % 2 == 0 ? A : B).ClaimDueAsync(TimeSpan.FromMinutes(1), 8, None));

        var claimed = claims.SelectMany((c, i) => c.Select(r => (r.Id, Owner: i % 2 == 0 ? "replica-a" : "replica-b"))).ToList();
        Assert.Equal(ids.Length, claimed.Count);
        Assert.Equal(ids, claimed.Select(c => c.Id).Order(StringComparer.Ordinal));
        foreach (var (id, owner) in claimed)
        {
            Assert.Equal(owner, (await A.FindAsync(id, None))!.Owner);
        }

        Assert.Empty(await A.ClaimDueAsync(TimeSpan.FromMinutes(1), 100, None));
        Assert.Empty(await B.ClaimDueAsync(TimeSpan.FromMinutes(1), 100, None));
    }

    [Fact]
    public async Task ClaimedTransaction_NotClaimableByAnotherReplica_UntilItsLeaseExpires_ThenIs()
    {
        await CommittedDueAsync(A, "tx-1");
        var lease = TimeSpan.FromSeconds(3);

        var first = Assert.Single(await A.ClaimDueAsync(lease, 10, None));
        Assert.Equal("replica-a", first.Owner);
        Assert.Empty(await B.ClaimDueAsync(lease, 10, None));
        Assert.Empty(await A.ClaimDueAsync(lease, 10, None));

        var taken = await EventuallyAsync(() => B.ClaimDueAsync(lease, 10, None), c => c.Count > 0);
        Assert.Equal("tx-1", Assert.Single(taken).Id);
        Assert.Equal("replica-b", (await A.FindAsync("tx-1", None))!.Owner);
        // The old owner, late, must not cut the new owner's lease short with its backoff.
        await A.ScheduleRetryAsync("tx-1", DateTimeOffset.UtcNow, None);
        Assert.Empty(await A.ClaimDueAsync(lease, 10, None));
        Assert.Equal(0, (await A.FindAsync("tx-1", None))!.Attempts);
    }

    /// <summary>
    /// Replica A claims a due transaction for recovery, sends its COMMITs and dies before any answer (its round never
    /// finishes). Replica B leaves it alone while A's lease lasts, and finishes it once the lease has run out.
    /// </summary>
    [Fact]
    public async Task ReplicaDiesMidRecovery_AnotherFinishesItsTransaction_OnlyAfterTheLease()
    {
        await CommittedDueAsync(A, "tx-1");
        var journalA = new Journal();
        var transportA = new ScriptedTransport(journalA);
        var sent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        foreach (var name in Directory.Keys)
        {
            transportA.OnDecision(name, async (_, ct) =>
            {
                sent.TrySetResult();
                await Task.Delay(Timeout.InfiniteTimeSpan, ct);
                throw new InvalidOperationException("unreachable");
            });
        }

        var coordinatorA = Coordinator(A, transportA, new Journal(), lease: TimeSpan.FromSeconds(4), decisionTimeout: TimeSpan.FromMinutes(5));
        using var death = new CancellationTokenSource();
        var roundA = coordinatorA.RecoverOnceAsync(death.Token);
        await sent.Task.WaitAsync(Bound);
        await death.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => roundA);

        var journalB = new Journal();
        var coordinatorB = Coordinator(B, new ScriptedTransport(journalB), new Journal(), lease: TimeSpan.FromSeconds(4));
        Assert.Equal(0, await coordinatorB.RecoverOnceAsync(None));
        Assert.Empty(journalB.Entries);

        await EventuallyAsync(() => coordinatorB.RecoverOnceAsync(None), touched => touched > 0);
        Assert.Equal(["commit:delivery", "commit:storage"], journalB.Entries.Order(StringComparer.Ordinal));
        var record = (await A.FindAsync("tx-1", None))!;
        Assert.True(record.IsCompleted);
        Assert.Equal("replica-b", record.Owner);
    }

    /// <summary>
    /// A live replica's own transaction, decided and in its phase 2 (a slow participant), is its own until the next
    /// attempt it set when deciding: another replica's recovery scans meanwhile send nothing for it.
    /// </summary>
    [Fact]
    public async Task LiveReplicasInFlightTransaction_NotRedrivenByAnotherReplica_BeforeItsLease()
    {
        var transportA = new ScriptedTransport(new Journal());
        var inPhaseTwo = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        transportA.OnDecision("delivery", async (_, ct) =>
        {
            inPhaseTwo.TrySetResult();
            await release.Task.WaitAsync(ct);
            return new Ack("delivery", AckKind.Acknowledged);
        });
        // Deciding, A takes the transaction until now + 2 x decision timeout: 20 s.
        var coordinatorA = Coordinator(A, transportA, new Journal(), decisionTimeout: TimeSpan.FromSeconds(10));
        var live = coordinatorA.ExecuteAsync(Request("tx-1"), None);
        await inPhaseTwo.Task.WaitAsync(Bound);

        var journalB = new Journal();
        var coordinatorB = Coordinator(B, new ScriptedTransport(journalB), new Journal());
        for (var scan = 0; scan < 3; scan++)
        {
            Assert.Equal(0, await coordinatorB.RecoverOnceAsync(None));
        }

        Assert.Equal("replica-a", (await B.FindAsync("tx-1", None))!.Owner);
        release.SetResult();
        var (outcome, _) = await live.WaitAsync(Bound);

        Assert.Equal(TransactionState.Committed, outcome.State);
        Assert.Empty(journalB.Entries);
        Assert.True((await B.FindAsync("tx-1", None))!.IsCompleted);
    }

    /// <summary>
    /// A replica paused between counting its yes votes and writing its commit: meanwhile another replica's recovery
    /// aborts the abandoned transaction and sends ABORTs. The paused one's late commit is refused; it answers aborted.
    /// </summary>
    [Fact]
    public async Task PausedReplicasLateCommit_AfterAnotherReplicaAbortedIt_IsRefused()
    {
        var journalA = new Journal();
        var hooksA = new ScriptedHooks(journalA);
        var paused = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var resume = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        hooksA.At(ProtocolPoint.CoordinatorBeforeDecisionWritten, async (_, ct) =>
        {
            paused.TrySetResult();
            await resume.Task.WaitAsync(ct);
        });
        var coordinatorA = Coordinator(A, new ScriptedTransport(journalA), journalA, hooks: hooksA, prepareDeadline: TimeSpan.FromMilliseconds(500), grace: TimeSpan.FromMilliseconds(500));
        var live = coordinatorA.ExecuteAsync(Request("tx-1"), None);
        await paused.Task.WaitAsync(Bound);

        var journalB = new Journal();
        var coordinatorB = Coordinator(B, new ScriptedTransport(journalB), new Journal());
        await EventuallyAsync(() => coordinatorB.RecoverOnceAsync(None), _ => journalB.Entries.Count(e => e.StartsWith("abort:", StringComparison.Ordinal)) == 2);
        resume.SetResult();
        var (outcome, _) = await live.WaitAsync(Bound);

        Assert.Equal(TransactionState.Aborted, outcome.State);
        Assert.Equal(TransactionState.Aborted, (await A.FindAsync("tx-1", None))!.State);
        Assert.DoesNotContain(journalA.Entries, e => e.StartsWith("commit:", StringComparison.Ordinal));
        Assert.DoesNotContain(journalB.Entries, e => e.StartsWith("commit:", StringComparison.Ordinal));
    }

    /// <summary>A committed transaction begun and decided by <paramref name="log"/>, due for phase 2 at once.</summary>
    protected static async Task CommittedDueAsync(SqlDecisionLog log, string id, TimeProvider? clock = null)
    {
        var now = (clock ?? TimeProvider.System).GetUtcNow();
        await log.BeginAsync(Request(id), now + TimeSpan.FromMinutes(1), now + TimeSpan.FromMinutes(2), None);
        var decided = await log.DecideAsync(id, Decision.Commit, null, AllYes, now, Durability.Relaxed, None);
        Assert.Equal(TransactionState.Committed, decided.State);
    }

    protected static TwoPhaseCoordinator Coordinator(
        IDecisionLog log,
        IParticipantTransport transport,
        Journal journal,
        TimeSpan? lease = null,
        TimeSpan? decisionTimeout = null,
        IProtocolHooks? hooks = null,
        TimeSpan? prepareDeadline = null,
        TimeSpan? grace = null,
        TimeProvider? clock = null) =>
        new(
            log,
            transport,
            Directory,
            new CoordinatorSettings
            {
                RecoveryLease = lease ?? TimeSpan.FromSeconds(5),
                DecisionTimeout = decisionTimeout ?? TimeSpan.FromSeconds(2),
                PrepareDeadline = prepareDeadline ?? TimeSpan.FromSeconds(2),
                AbandonGrace = grace ?? TimeSpan.FromSeconds(1),
            },
            clock ?? TimeProvider.System,
            hooks ?? new ScriptedHooks(journal));

    /// <summary>Runs <paramref name="attempt"/> every 100 ms until <paramref name="done"/> says so; fails past <see cref="Bound"/>.</summary>
    protected static async Task<T> EventuallyAsync<T>(Func<Task<T>> attempt, Func<T, bool> done)
    {
        using var bound = new CancellationTokenSource(Bound);
        while (true)
        {
            var result = await attempt();
            if (done(result))
            {
                return result;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100), bound.Token);
        }
    }

    protected static TransactionRequest Request(string id) =>
        new(id, [Storage, Delivery], new Dictionary<string, string> { ["storage"] = """{"items":[{"sku":"widget","quantity":1}]}""", ["delivery"] = $$"""{"orderId":"{{id}}"}""" }, null, null);

    protected static IReadOnlyList<Vote> Yes => AllYes;
}

/// <summary>
/// The lease tests on SQLite: one file, one writer. Replicas sharing it are on one machine and so one clock (the log's
/// clock there is the process's), which is why the clock-skew test is PostgreSQL's alone.
/// </summary>
public sealed class SqliteDecisionLogLeaseTests : DecisionLogLeaseTests
{
    private readonly SqliteTarget _target = new();

    protected override Task<Database> CreateDatabaseAsync() => _target.CreateDatabaseAsync();

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await _target.DisposeAsync();
    }
}

public sealed class PostgresDecisionLogLeaseTests(PostgresServerFixture server) : DecisionLogLeaseTests, IClassFixture<PostgresServerFixture>
{
    protected override Task<Database> CreateDatabaseAsync() => server.CreateDatabaseAsync();

    /// <summary>
    /// A replica whose process clock is a minute ahead of the others' and of the database's: leases and abandon moments
    /// are distances on the database's clock, so it neither claims a live replica's transaction early, nor takes a
    /// fresh one for abandoned, nor gets a commit past a transaction's abandon moment (nor does one a minute behind).
    /// </summary>
    [Fact]
    public async Task ReplicaWithSkewedClock_NeitherStealsALiveLease_NorAbandonsEarly_NorCommitsPastAbandon()
    {
        var ahead = new SkewedClock(TimeSpan.FromMinutes(1));
        var behind = new SkewedClock(-TimeSpan.FromMinutes(1));
        var fast = new SqlDecisionLog(Db, ahead, "replica-fast");
        var slow = new SqlDecisionLog(Db, behind, "replica-slow");

        // A's live transaction: decided, its phase 2 A's for the next 20 s.
        var now = DateTimeOffset.UtcNow;
        await A.BeginAsync(Request("tx-live"), now + TimeSpan.FromSeconds(2), now + TimeSpan.FromSeconds(3), None);
        await A.DecideAsync("tx-live", Decision.Commit, null, Yes, now + TimeSpan.FromSeconds(20), Durability.Relaxed, None);
        Assert.Empty(await fast.ClaimDueAsync(TimeSpan.FromSeconds(5), 10, None));
        var fastRecovery = Coordinator(fast, new ScriptedTransport(new Journal()), new Journal(), clock: ahead);
        Assert.Equal(0, await fastRecovery.RecoverOnceAsync(None));

        // A fresh preparing transaction (abandoned in a minute by everyone's reckoning): not abandoned for the fast one.
        await A.BeginAsync(Request("tx-fresh"), now + TimeSpan.FromSeconds(30), now + TimeSpan.FromMinutes(1), None);
        Assert.Empty(await fast.FindAbandonedAsync(10, None));

        // One begun by the fast replica itself, to be abandoned 300 ms on: once past, the slow one (to whom it looks two
        // minutes early) cannot commit it, nor can the fast one.
        await fast.BeginAsync(Request("tx-late"), ahead.GetUtcNow() + TimeSpan.FromMilliseconds(200), ahead.GetUtcNow() + TimeSpan.FromMilliseconds(300), None);
        await EventuallyAsync(() => A.FindAbandonedAsync(10, None), found => found.Any(r => r.Id == "tx-late"));
        Assert.Equal(TransactionState.Preparing, (await slow.DecideAsync("tx-late", Decision.Commit, null, Yes, behind.GetUtcNow(), Durability.Relaxed, None)).State);
        Assert.Equal(TransactionState.Preparing, (await fast.DecideAsync("tx-late", Decision.Commit, null, Yes, ahead.GetUtcNow(), Durability.Relaxed, None)).State);
        Assert.Equal(TransactionState.Preparing, (await A.FindAsync("tx-late", None))!.State);

        // And the slow replica's own lease is not cut short for the others: it claims with 5 s, nobody else gets it.
        await CommittedDueAsync(slow, "tx-slow", behind);
        Assert.Equal("tx-slow", Assert.Single(await slow.ClaimDueAsync(TimeSpan.FromSeconds(5), 10, None)).Id);
        Assert.Empty(await fast.ClaimDueAsync(TimeSpan.FromSeconds(5), 10, None));
        Assert.Empty(await A.ClaimDueAsync(TimeSpan.FromSeconds(5), 10, None));
    }

    /// <summary>The system clock moved by a fixed offset.</summary>
    private sealed class SkewedClock(TimeSpan offset) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + offset;
    }
}
