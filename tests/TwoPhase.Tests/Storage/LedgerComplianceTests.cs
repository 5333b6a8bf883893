using Dapper;
using DeliveryService.Couriers;
using Microsoft.Extensions.Time.Testing;
using StorageService.Products;
using TwoPhase.Persistence;
using TwoPhase.Protocol;

namespace TwoPhase.Tests.Storage;

/// <summary>
/// The participant side on real SQL, written once and run against every store: <see cref="LedgerParticipant"/>
/// with the real <see cref="StockReservations"/> (storage) and <see cref="CourierReservations"/> (delivery),
/// each on its own database as in production: what is particular to stock and couriers (exact quantities, reasons,
/// line order, deliveries). What every resource manager owes the protocol (idempotency, tombstones, refusals, batches,
/// crashes, concurrency, the ledger's in-doubt queries) is the contract kit's, run on both in TwoPhase.Contract.Tests.
/// </summary>
public abstract class LedgerComplianceTests : IAsyncLifetime
{
    private static readonly CancellationToken None = CancellationToken.None;
    private Database? _storageDb;
    private Database? _deliveryDb;

    protected FakeTimeProvider Clock { get; } = new(new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero));

    protected LedgerParticipant Storage { get; private set; } = null!;

    protected LedgerParticipant Delivery { get; private set; } = null!;

    protected Database StorageDb => _storageDb!;

    protected Database DeliveryDb => _deliveryDb!;

    /// <summary>A new, empty database of the store under test.</summary>
    protected abstract Task<Database> CreateDatabaseAsync();

    public virtual async Task InitializeAsync()
    {
        _storageDb = await CreateDatabaseAsync();
        _deliveryDb = await CreateDatabaseAsync();
        Storage = new LedgerParticipant(_storageDb, new StockReservations(), Clock, NoProtocolHooks.Instance);
        Delivery = new LedgerParticipant(_deliveryDb, new CourierReservations(), Clock, NoProtocolHooks.Instance);
        await Storage.InitializeAsync(None);
        await Delivery.InitializeAsync(None);
    }

    public virtual async Task DisposeAsync()
    {
        if (_storageDb is not null)
        {
            await _storageDb.DisposeAsync();
        }

        if (_deliveryDb is not null)
        {
            await _deliveryDb.DisposeAsync();
        }
    }

    // ---- storage: stock -------------------------------------------------------------------------

    [Fact]
    public async Task StockPrepare_VotesYes_HoldsUnits_LedgerPrepared()
    {
        await SeedProductAsync("widget", 10);

        var (vote, reason) = await Storage.PrepareAsync("tx-1", Order(("widget", 3)), None);

        Assert.Equal(VoteKind.Yes, vote);
        Assert.Null(reason);
        Assert.Equal(new Stock(10, 3, 0, 10), await StockAsync("widget"));
        var row = await Storage.FindAsync("tx-1", None);
        Assert.Equal(LedgerState.Prepared, row!.State);
        Assert.Contains("widget", row.Holding, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StockPreparedThenCommitted_ReservedUnitsAreSold_LedgerCommitted()
    {
        await SeedProductAsync("widget", 10);
        await Storage.PrepareAsync("tx-1", Order(("widget", 3)), None);

        var result = await Storage.CommitAsync("tx-1", None);

        Assert.Equal(new DecisionResult(LedgerState.Committed, false, null), result);
        Assert.Equal(new Stock(7, 0, 3, 10), await StockAsync("widget"));
        Assert.Equal(LedgerState.Committed, (await Storage.FindAsync("tx-1", None))!.State);
    }

    [Fact]
    public async Task StockPreparedThenAborted_UnitsReleased_LedgerAborted()
    {
        await SeedProductAsync("widget", 10);
        await Storage.PrepareAsync("tx-1", Order(("widget", 3)), None);

        var result = await Storage.AbortAsync("tx-1", None);

        Assert.Equal(new DecisionResult(LedgerState.Aborted, false, null), result);
        Assert.Equal(new Stock(10, 0, 0, 10), await StockAsync("widget"));
        Assert.Equal(LedgerState.Aborted, (await Storage.FindAsync("tx-1", None))!.State);
    }

    [Fact]
    public async Task InsufficientStock_VotesNo_NamingSku_NothingHeld_LedgerRefused()
    {
        await SeedProductAsync("widget", 2);

        var (vote, reason) = await Storage.PrepareAsync("tx-1", Order(("widget", 3)), None);

        Assert.Equal(VoteKind.No, vote);
        Assert.Equal("insufficient stock for sku 'widget'", reason);
        Assert.Equal(new Stock(2, 0, 0, 2), await StockAsync("widget"));
        var row = await Storage.FindAsync("tx-1", None);
        Assert.Equal(LedgerState.Refused, row!.State);
        Assert.Null(row.Holding);
    }

    [Fact]
    public async Task UnknownSku_VotesNo_NamingSku()
    {
        var (vote, reason) = await Storage.PrepareAsync("tx-1", Order(("nosuch", 1)), None);

        Assert.Equal(VoteKind.No, vote);
        Assert.Equal("unknown sku 'nosuch'", reason);
    }

    [Fact]
    public async Task SecondLineNotReservable_VotesNo_FirstLineRolledBack_NothingReserved()
    {
        // Lines are reserved in SKU order: "apple" succeeds before "banana" fails.
        await SeedProductAsync("apple", 10);
        await SeedProductAsync("banana", 1);

        var (vote, reason) = await Storage.PrepareAsync("tx-1", Order(("apple", 4), ("banana", 2)), None);

        Assert.Equal(VoteKind.No, vote);
        Assert.Equal("insufficient stock for sku 'banana'", reason);
        Assert.Equal(new Stock(10, 0, 0, 10), await StockAsync("apple"));
        Assert.Equal(new Stock(1, 0, 0, 1), await StockAsync("banana"));
    }

    [Fact]
    public async Task MultiLineAllReservable_VotesYes_HoldsEveryLine_CommitSellsEveryLine()
    {
        await SeedProductAsync("apple", 10);
        await SeedProductAsync("banana", 5);

        Assert.Equal(VoteKind.Yes, (await Storage.PrepareAsync("tx-1", Order(("banana", 5), ("apple", 4)), None)).Vote);
        Assert.Equal(new Stock(10, 4, 0, 10), await StockAsync("apple"));
        Assert.Equal(new Stock(5, 5, 0, 5), await StockAsync("banana"));

        await Storage.CommitAsync("tx-1", None);
        Assert.Equal(new Stock(6, 0, 4, 10), await StockAsync("apple"));
        Assert.Equal(new Stock(0, 0, 5, 5), await StockAsync("banana"));
    }

    [Fact]
    public async Task ConcurrentMultiLinePreparesInAnyLineOrder_NeverOversell_NoDeadlockFailure()
    {
        await SeedProductAsync("apple", 6);
        await SeedProductAsync("banana", 6);

        // Half ask apple-then-banana, half banana-then-apple: row locks must still be taken in one order.
        var votes = await Concurrently.RunAsync(30, i => Storage.PrepareAsync(
            $"tx-{i:D3}",
            i % 2 == 0 ? Order(("apple", 1), ("banana", 1)) : Order(("banana", 1), ("apple", 1)),
            None));

        Assert.Equal(6, votes.Count(v => v.Vote == VoteKind.Yes));
        Assert.Equal(new Stock(6, 6, 0, 6), await StockAsync("apple"));
        Assert.Equal(new Stock(6, 6, 0, 6), await StockAsync("banana"));
    }

    /// <summary>
    /// COMMITs and ABORTs arriving together run as one set write per kind (summed per SKU on PostgreSQL): every
    /// message gets the answer it would get alone, and the stock moves exactly as the sum of the orders.
    /// </summary>
    [Fact]
    public async Task MixedDecisionsTogether_EachAnsweredAsAlone_StockMovesBySum()
    {
        await SeedProductAsync("widget", 100);
        await SeedProductAsync("gadget", 100);
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(VoteKind.Yes, (await Storage.PrepareAsync($"tx-{i:D2}", Order(("widget", 1), ("gadget", 2)), None)).Vote);
        }

        Assert.Equal(VoteKind.No, (await Storage.PrepareAsync("tx-refused", Order(("widget", 1000)), None)).Vote);

        // 0-9 committed twice each, 10-19 aborted twice each, and three that contradict or precede the ledger.
        var results = await Concurrently.RunAsync(43, i => i switch
        {
            < 20 => Storage.CommitAsync($"tx-{i % 10:D2}", None),
            < 40 => Storage.AbortAsync($"tx-{10 + (i % 10):D2}", None),
            40 => Storage.CommitAsync("tx-ghost", None),
            41 => Storage.CommitAsync("tx-refused", None),
            _ => Storage.AbortAsync("tx-early", None),
        });

        Assert.All(results[..20], r => Assert.Equal((LedgerState.Committed, false), (r.State, r.Conflict)));
        Assert.All(results[20..40], r => Assert.Equal((LedgerState.Aborted, false), (r.State, r.Conflict)));
        Assert.Equal((null, true), (results[40].State, results[40].Conflict));
        Assert.Equal((LedgerState.Refused, true), (results[41].State, results[41].Conflict));
        Assert.Equal((LedgerState.Aborted, false), (results[42].State, results[42].Conflict));
        Assert.Equal(new Stock(90, 0, 10, 100), await StockAsync("widget"));
        Assert.Equal(new Stock(80, 0, 20, 100), await StockAsync("gadget"));
        Assert.Null(await Storage.FindAsync("tx-ghost", None));
        Assert.Equal(LedgerState.Aborted, (await Storage.FindAsync("tx-early", None))!.State);
    }

    // ---- delivery: couriers ---------------------------------------------------------------------

    [Fact]
    public async Task CourierPrepare_ClaimsOneFreeCourier_CommitStartsOneActiveDelivery()
    {
        await SeedCouriersAsync(2);

        var (vote, _) = await Delivery.PrepareAsync("tx-1", """{"orderId":"order-1"}""", None);
        var reserved = await CouriersAsync();
        var commit = await Delivery.CommitAsync("tx-1", None);

        Assert.Equal(VoteKind.Yes, vote);
        Assert.Single(reserved, c => c is { Status: "reserved", TxId: "tx-1" });
        Assert.Equal(new DecisionResult(LedgerState.Committed, false, null), commit);
        var busy = Assert.Single(await CouriersAsync(), c => c.TxId == "tx-1");
        Assert.Equal("busy", busy.Status);
        Assert.Equal(1, await ScalarAsync(DeliveryDb, $"SELECT COUNT(*) FROM deliveries WHERE tx_id = 'tx-1' AND courier_id = '{busy.Id}' AND status = 'active' AND order_id = 'order-1'"));
        Assert.Single(await CouriersAsync(), c => c.Status == "free");
    }

    [Fact]
    public async Task CourierPreparedThenAborted_CourierFreeAgain_NoDelivery()
    {
        await SeedCouriersAsync(1);
        await Delivery.PrepareAsync("tx-1", """{"orderId":"order-1"}""", None);

        var result = await Delivery.AbortAsync("tx-1", None);

        Assert.Equal(new DecisionResult(LedgerState.Aborted, false, null), result);
        Assert.All(await CouriersAsync(), c => Assert.Equal(("free", null), (c.Status, c.TxId)));
        Assert.Equal(0, await ScalarAsync(DeliveryDb, "SELECT COUNT(*) FROM deliveries"));
    }

    [Fact]
    public async Task NoFreeCourier_VotesNo_NoFreeCourierReason()
    {
        await SeedCouriersAsync(1);
        await Delivery.PrepareAsync("tx-1", "{}", None);

        var (vote, reason) = await Delivery.PrepareAsync("tx-2", "{}", None);

        Assert.Equal(VoteKind.No, vote);
        Assert.Equal("no free courier", reason);
        Assert.Equal(LedgerState.Refused, (await Delivery.FindAsync("tx-2", None))!.State);
    }

    [Fact]
    public async Task HundredConcurrentPreparesForTenCouriers_ExactlyTenYes_NoCourierHeldTwice()
    {
        await SeedCouriersAsync(10);

        var votes = await Concurrently.RunAsync(100, i => Delivery.PrepareAsync($"tx-{i:D3}", $$"""{"orderId":"order-{{i}}"}""", None));

        Assert.Equal(10, votes.Count(v => v.Vote == VoteKind.Yes));
        Assert.All(votes.Where(v => v.Vote != VoteKind.Yes), v => Assert.Equal("no free courier", v.Reason));
        var couriers = await CouriersAsync();
        Assert.All(couriers, c => Assert.Equal("reserved", c.Status));
        Assert.Equal(10, couriers.Select(c => c.TxId).Distinct().Count());
        var prepared = await ScalarAsync(DeliveryDb, "SELECT COUNT(*) FROM tp_ledger WHERE state = 'prepared'");
        Assert.Equal(10, prepared);

        // Every yes commits: ten active deliveries, one per courier.
        foreach (var i in Enumerable.Range(0, 100).Where(i => votes[i].Vote == VoteKind.Yes))
        {
            Assert.False((await Delivery.CommitAsync($"tx-{i:D3}", None)).Conflict);
        }

        Assert.Equal(10, await ScalarAsync(DeliveryDb, "SELECT COUNT(DISTINCT courier_id) FROM deliveries WHERE status = 'active'"));
    }

    [Fact]
    public async Task CourierCommitsAndAbortsTogether_EachCourierBusyOrFree_OneDeliveryPerCommit()
    {
        await SeedCouriersAsync(12);
        for (var i = 0; i < 12; i++)
        {
            Assert.Equal(VoteKind.Yes, (await Delivery.PrepareAsync($"tx-{i:D2}", $$"""{"orderId":"order-{{i}}"}""", None)).Vote);
        }

        var holders = (await CouriersAsync()).ToDictionary(c => c.TxId!, c => c.Id);

        // Even ones committed, odd ones aborted, each message twice.
        var results = await Concurrently.RunAsync(24, i => i % 12 % 2 == 0 ? Delivery.CommitAsync($"tx-{i % 12:D2}", None) : Delivery.AbortAsync($"tx-{i % 12:D2}", None));

        Assert.All(results, r => Assert.False(r.Conflict));
        var couriers = (await CouriersAsync()).ToDictionary(c => c.Id);
        for (var i = 0; i < 12; i++)
        {
            var courier = couriers[holders[$"tx-{i:D2}"]];
            Assert.Equal(i % 2 == 0 ? ("busy", $"tx-{i:D2}") : ("free", null), (courier.Status, courier.TxId));
        }

        var deliveries = await DeliveryDb.ReadAsync(c => c.QueryAsync<(string, string, string)>(new CommandDefinition("SELECT tx_id, courier_id, order_id FROM deliveries ORDER BY tx_id")), None);
        Assert.Equal(
            Enumerable.Range(0, 12).Where(i => i % 2 == 0).Select(i => ($"tx-{i:D2}", holders[$"tx-{i:D2}"], $"order-{i}")),
            deliveries);
    }

    /// <summary>Completions arriving together (each twice): every delivery completed once, its courier free; a repeat finds nothing active.</summary>
    [Fact]
    public async Task DeliveryCompletionsTogether_EachCompletedOnce_CouriersFree()
    {
        await SeedCouriersAsync(6);
        for (var i = 0; i < 6; i++)
        {
            await Delivery.PrepareAsync($"tx-{i}", "{}", None);
            await Delivery.CommitAsync($"tx-{i}", None);
        }

        var done = await Concurrently.RunAsync(12, i => DeliveryDb.WriteBatchedAsync(CourierReservations.Completions, $"tx-{i % 6}", None));

        for (var i = 0; i < 6; i++)
        {
            // Exactly one of the two completions of each delivery found it active.
            var completed = Assert.Single(new[] { done[i], done[i + 6] }, d => d is not null)!;
            Assert.Equal(($"tx-{i}", "completed"), (completed.TransactionId, completed.Status));
        }

        Assert.All(await CouriersAsync(), c => Assert.Equal(("free", null), (c.Status, c.TxId)));
        Assert.Equal(6, await ScalarAsync(DeliveryDb, "SELECT COUNT(*) FROM deliveries WHERE status = 'completed'"));
    }

    // ---- helpers --------------------------------------------------------------------------------

    protected static string Order(params (string Sku, int Quantity)[] lines) =>
        System.Text.Json.JsonSerializer.Serialize(new { orderId = "order-1", items = lines.Select(l => new { sku = l.Sku, quantity = l.Quantity }) });

    protected Task SeedProductAsync(string sku, long stock) =>
        ExecuteAsync(StorageDb, $"INSERT INTO products (sku, name, on_hand, reserved, sold, received) VALUES ('{sku}', '{sku}', {stock}, 0, 0, {stock})");

    protected async Task SeedCouriersAsync(int count)
    {
        for (var i = 1; i <= count; i++)
        {
            await ExecuteAsync(DeliveryDb, $"INSERT INTO couriers (id, name, status) VALUES ('courier-{i:D2}', 'Courier {i}', 'free')");
        }
    }

    protected static Task ExecuteAsync(Database db, string sql) =>
        db.WriteAsync(tx => tx.Connection.ExecuteAsync(new CommandDefinition(sql, transaction: tx.Transaction)), None);

    protected static Task<long> ScalarAsync(Database db, string sql) =>
        db.ReadAsync(c => c.ExecuteScalarAsync<long>(new CommandDefinition(sql)), None);

    protected Task<Stock> StockAsync(string sku) =>
        StorageDb.ReadAsync(
            async c =>
            {
                var row = await c.QuerySingleAsync<StockRow>(new CommandDefinition(
                    "SELECT on_hand AS OnHand, reserved AS Reserved, sold AS Sold, received AS Received FROM products WHERE sku = @Sku", new { Sku = sku }));
                return new Stock(row.OnHand, row.Reserved, row.Sold, row.Received);
            },
            None);

    protected async Task<IReadOnlyList<CourierRow>> CouriersAsync() =>
        (await DeliveryDb.ReadAsync(c => c.QueryAsync<CourierRow>(new CommandDefinition("SELECT id AS Id, status AS Status, tx_id AS TxId FROM couriers ORDER BY id")), None)).ToList();

    protected sealed record Stock(long OnHand, long Reserved, long Sold, long Received);

    protected sealed class StockRow
    {
        public long OnHand { get; set; }

        public long Reserved { get; set; }

        public long Sold { get; set; }

        public long Received { get; set; }
    }

    protected sealed class CourierRow
    {
        public string Id { get; set; } = "";

        public string Status { get; set; } = "";

        public string? TxId { get; set; }
    }
}
