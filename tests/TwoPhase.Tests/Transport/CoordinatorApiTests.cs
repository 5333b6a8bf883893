using System.Net;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Reference.Contracts;
using TwoPhase.AspNetCore;
using TwoPhase.Persistence;
using TwoPhase.Protocol;

namespace TwoPhase.Tests.Transport;

/// <summary>
/// A coordinator built from the library (MapTwoPhaseCoordinator, TwoPhaseTransactions) over real HTTP to real storage and
/// delivery participants, and the typed client (TwoPhaseClient) on its routes; written once, run on both stores.
/// </summary>
public abstract class CoordinatorApiTests : IAsyncLifetime
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private readonly List<Database> _databases = [];
    private RunningHost? _storage;
    private RunningHost? _delivery;
    private RunningHost? _coordinator;

    protected abstract Task<Database> CreateDatabaseAsync();

    private RunningHost Coordinator => _coordinator!;

    private TwoPhaseTransactions Transactions => Coordinator.Get<TwoPhaseTransactions>();

    private Database StorageDb => _databases[0];

    private Database DeliveryDb => _databases[1];

    public async Task InitializeAsync()
    {
        for (var i = 0; i < 3; i++)
        {
            _databases.Add(await CreateDatabaseAsync());
        }

        _storage = await TestHosts.StartStorageAsync(StorageDb);
        _delivery = await TestHosts.StartDeliveryAsync(DeliveryDb);
        _coordinator = await TestHosts.StartCoordinatorAsync(_databases[2], ("storage", _storage.Url), ("delivery", _delivery.Url));
    }

    public virtual async Task DisposeAsync()
    {
        foreach (var host in new[] { _coordinator, _delivery, _storage })
        {
            if (host is not null)
            {
                await host.DisposeAsync();
            }
        }

        foreach (var db in _databases)
        {
            await db.DisposeAsync();
        }
    }

    private static StockPrepare Lines(string orderId, long quantity) => new(orderId, [new OrderLine("widget", quantity)]);

    /// <summary>
    /// Each participant gets only its own payload: storage refuses unknown fields, so a merged or foreign body would make
    /// it vote no; delivery books its courier for the order its own body names. The log keeps each one's payload.
    /// </summary>
    [Fact]
    public async Task TypedApi_EachParticipantItsOwnPayload_Commits_LogKeepsEach()
    {
        var outcome = await Transactions.RunAsync(
            new TwoPhaseTransaction("tx-own").With("storage", Lines("order-own", 2)).With("delivery", new CourierPrepare("order-own")),
            CancellationToken.None).WaitAsync(Bound);

        Assert.Equal(TransactionState.Committed, outcome.State);
        Assert.False(outcome.Replayed);
        Assert.Equal(["delivery", "storage"], outcome.Acknowledged.Order(StringComparer.Ordinal));
        Assert.Equal(2, await ScalarAsync(StorageDb, "SELECT sold FROM products WHERE sku = 'widget'"));
        Assert.Equal("order-own", await DeliveryDb.ReadAsync(c => c.ExecuteScalarAsync<string>(new CommandDefinition("SELECT order_id FROM deliveries WHERE tx_id = 'tx-own'")), CancellationToken.None));
        var record = (await Transactions.FindAsync("tx-own"))!;
        Assert.Equal("""{"orderId":"order-own","items":[{"sku":"widget","quantity":2}]}""", record.PayloadOf("storage"));
        Assert.Equal("""{"orderId":"order-own"}""", record.PayloadOf("delivery"));
    }

    /// <summary>
    /// Issue 12 item 4, through the coordinator: 30 concurrent transactions whose PREPAREs to storage travel in batches (one
    /// request in flight, so they gather), one with quantity 0. 29 commit; the bad one aborts with storage's reason, alone,
    /// and its ABORT leaves a tombstone: nothing held.
    /// </summary>
    [Fact]
    public async Task ThirtyConcurrent_OneInvalidBody_29Commit_TheBadOneAbortsWithItsReason()
    {
        const int bad = 11;
        var outcomes = await Task.WhenAll(Enumerable.Range(0, 30).Select(i =>
            Transactions.RunAsync(new TwoPhaseTransaction($"tx-{i}").With("storage", Lines($"o-{i}", i == bad ? 0 : 1)), CancellationToken.None))).WaitAsync(Bound);

        Assert.Equal(29, outcomes.Count(o => o.State == TransactionState.Committed));
        var aborted = Assert.Single(outcomes, o => o.State == TransactionState.Aborted);
        Assert.Equal($"tx-{bad}", aborted.Id);
        Assert.Contains("storage voted no: items[0].quantity: must be a whole number", aborted.Reason, StringComparison.Ordinal);
        var vote = Assert.Single(aborted.Votes);
        Assert.Equal(VoteKind.No, vote.Kind);
        Assert.Equal(29, await ScalarAsync(StorageDb, "SELECT sold FROM products WHERE sku = 'widget'"));
        Assert.Equal(0, await ScalarAsync(StorageDb, "SELECT reserved FROM products WHERE sku = 'widget'"));
        Assert.Equal("aborted", await StorageDb.ReadAsync(c => c.ExecuteScalarAsync<string>(new CommandDefinition($"SELECT state FROM tp_ledger WHERE tx_id = 'tx-{bad}'")), CancellationToken.None));
    }

    [Fact]
    public async Task TypedApi_UnknownParticipant_ArgumentExceptionNamingIt_NothingBegun()
    {
        var e = await Assert.ThrowsAsync<ArgumentException>(() => Transactions.RunAsync(new TwoPhaseTransaction("tx-x").With("payments", new { amount = 1 })));

        Assert.Contains("'payments'", e.Message, StringComparison.Ordinal);
        Assert.Null(await Transactions.FindAsync("tx-x"));
    }

    [Fact]
    public async Task TypedApi_SameKeySameRequest_Replayed_DifferentRequest_KeyReused()
    {
        TwoPhaseTransaction Attempt(string id, string hash) => new TwoPhaseTransaction(id) { IdempotencyKey = "key-1", RequestHash = hash }.With("storage", Lines(id, 1));

        var first = await Transactions.RunAsync(Attempt("tx-a", "h1")).WaitAsync(Bound);
        var retry = await Transactions.RunAsync(Attempt("tx-b", "h1")).WaitAsync(Bound);
        var reused = await Assert.ThrowsAsync<IdempotencyKeyReusedException>(() => Transactions.RunAsync(Attempt("tx-c", "h2")));

        Assert.Equal(TransactionState.Committed, first.State);
        Assert.True(retry.Replayed);
        Assert.Equal("tx-a", retry.Id);
        Assert.Equal(TransactionState.Committed, retry.State);
        Assert.Equal("tx-a", reused.TransactionId);
        Assert.Equal(1, await ScalarAsync(StorageDb, "SELECT sold FROM products WHERE sku = 'widget'"));
    }

    /// <summary>The typed client on the library's coordinator routes: the decision query, the admin list, and a retry.</summary>
    [Fact]
    public async Task Client_DecisionQueryListAndRetry_OverTheLibrarysRoutes()
    {
        await Transactions.RunAsync(new TwoPhaseTransaction("tx-done").With("storage", Lines("o", 1))).WaitAsync(Bound);
        // A transaction begun and left preparing past its deadline: unfinished until a retry aborts it.
        var log = Coordinator.Get<IDecisionLog>();
        var past = DateTimeOffset.UtcNow - TimeSpan.FromMinutes(1);
        await log.BeginAsync(new TransactionRequest("tx-stuck", [new("storage", _storage!.Url)], new Dictionary<string, string> { ["storage"] = """{"items":[{"sku":"widget","quantity":1}]}""" }), past, past, CancellationToken.None);
        await using var services = new ServiceCollection().AddTwoPhaseClientFor(Coordinator.Url, TestHosts.Secret);
        var client = services.GetRequiredService<TwoPhaseClient>();

        Assert.Equal("committed", (await client.GetDecisionAsync("tx-done"))!.State);
        Assert.Equal("aborted", (await client.GetDecisionAsync("tx-never-begun"))!.State);
        Assert.Null(await client.GetDecisionAsync("not an id"));
        var unfinished = await client.ListTransactionsAsync(state: "unfinished", limit: 10);
        Assert.Equal("tx-stuck", Assert.Single(unfinished).TransactionId);
        Assert.Equal("preparing", unfinished[0].State);
        Assert.Empty(await client.ListTransactionsAsync(state: "conflicted"));

        var retried = await client.RetryAsync("tx-stuck");

        Assert.Equal("aborted", retried.State);
        Assert.True(retried.Completed);
        Assert.Equal("aborted", (await client.GetDecisionAsync("tx-stuck"))!.State);
        Assert.Empty(await client.ListTransactionsAsync());
        var missing = await Assert.ThrowsAsync<TwoPhaseClientException>(() => client.RetryAsync("tx-nowhere"));
        Assert.Equal(HttpStatusCode.NotFound, missing.Status);
    }

    [Fact]
    public async Task Client_WithoutTheSecret_AdminRoutesRefused401_DecisionQueryOpen()
    {
        await using var services = new ServiceCollection().AddTwoPhaseClientFor(Coordinator.Url, secret: null);
        var client = services.GetRequiredService<TwoPhaseClient>();

        Assert.Equal("aborted", (await client.GetDecisionAsync("tx-any"))!.State);
        var refused = await Assert.ThrowsAsync<TwoPhaseClientException>(() => client.ListTransactionsAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, refused.Status);
    }

    private static Task<long> ScalarAsync(Database db, string sql) =>
        db.ReadAsync(c => c.ExecuteScalarAsync<long>(new CommandDefinition(sql)), CancellationToken.None);
}

internal static class ClientServices
{
    public static ServiceProvider AddTwoPhaseClientFor(this ServiceCollection services, Uri coordinator, string? secret)
    {
        services.AddTwoPhaseClient(coordinator, secret);
        return services.BuildServiceProvider();
    }
}

public sealed class SqliteCoordinatorApiTests : CoordinatorApiTests
{
    private readonly SqliteTarget _target = new();

    protected override Task<Database> CreateDatabaseAsync() => _target.CreateDatabaseAsync();

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await _target.DisposeAsync();
    }
}

public sealed class PostgresCoordinatorApiTests(PostgresServerFixture server) : CoordinatorApiTests, IClassFixture<PostgresServerFixture>
{
    protected override Task<Database> CreateDatabaseAsync() => server.CreateDatabaseAsync();
}
