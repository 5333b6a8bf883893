using System.Diagnostics;
using TwoPhase.AspNetCore;
using TwoPhase.EndToEnd.Tests.Harness;
using Xunit;
using Xunit.Abstractions;

namespace TwoPhase.EndToEnd.Tests;

/// <summary>The network misbehaving between coordinator and participants: lost answers, duplicates, a long partition.</summary>
public sealed class MessageFaultTests(ITestOutputHelper output)
{
    public static TheoryData<Store, Service, string, bool> LostAnswers()
    {
        var data = new TheoryData<Store, Service, string, bool>();
        foreach (var store in Enum.GetValues<Store>())
        {
            foreach (var participant in new[] { Service.Storage, Service.Delivery })
            {
                foreach (var verb in new[] { "prepare", "commit", "abort" })
                {
                    // Every case on SQLite, through batches (the default); on PostgreSQL each verb once (time
                    // budget), at alternating participants.
                    if (store == Store.Sqlite || (participant == Service.Storage) == (verb != "abort"))
                    {
                        data.Add(store, participant, verb, true);
                    }

                    // And the single-message endpoints, each verb once.
                    if (store == Store.Sqlite && participant == Service.Storage)
                    {
                        data.Add(store, participant, verb, false);
                    }
                }
            }
        }

        return data;
    }

    /// <summary>
    /// The participant applies the message, then the connection drops before the answer gets back. The coordinator
    /// cannot tell that from a message never delivered: a lost prepare answer aborts (and the participant releases),
    /// a lost commit or abort answer is sent again and the repeat is a no-op. With batching the lost answer is the
    /// batch's (here it carries the one message).
    /// </summary>
    [Theory]
    [MemberData(nameof(LostAnswers))]
    public async Task AnswerLostAfterParticipantApplied_Converges(Store store, Service participant, string verb, bool batched)
    {
        await using var system = await TestSystem.StartAsync(store, output, new SystemOptions { Proxied = new HashSet<Service> { participant }, BatchMessages = batched });
        // An abort needs the other participant to refuse while this one is prepared.
        var storageRefuses = verb == "abort" && participant == Service.Delivery;
        var deliveryRefuses = verb == "abort" && participant == Service.Storage;
        await system.SeedAsync(new Dictionary<string, long> { ["widget"] = 5 }, couriers: deliveryRefuses ? 0 : 2);

        system.Proxy(participant).DropAnswers($"/{verb}");
        var placed = await system.Api.PlaceOrderAsync("widget", storageRefuses ? 6 : 1);

        var order = Expect.Order(placed, verb == "commit" ? "committed" : "aborted");
        var name = participant.ToString().ToLowerInvariant();
        if (verb == "prepare")
        {
            Assert.Equal("none", order.Votes[name].Vote);
            Assert.Contains(name, order.Reason);
        }

        var after = await Invariants.AssertConvergedAsync(system);
        Assert.Equal(1, system.Proxy(participant).Dropped);
        Assert.Equal(batched, system.Proxy(participant).Requests.Any(r => r.EndsWith("/v1/transactions/batch", StringComparison.Ordinal)));
        Assert.Equal(verb == "commit" ? "committed" : "aborted", (participant == Service.Storage ? after.StorageLedger : after.DeliveryLedger).Single(r => r.TransactionId == order.TransactionId).State);
        Assert.Equal(verb == "commit" ? 1 : 0, Assert.Single(after.Products).Sold);
    }

    /// <summary>
    /// Every protocol message sent again, straight to the participants, after the outcome: nothing changes.
    /// A repeat answers from the ledger; a message that contradicts it is a 409.
    /// </summary>
    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.Postgres)]
    public async Task DuplicatedPrepareCommitAbort_ChangeNothing(Store store)
    {
        await using var system = await TestSystem.StartAsync(store, output);
        await system.SeedAsync(new Dictionary<string, long> { ["widget"] = 5 }, couriers: 1);
        var committed = Expect.Order(await system.Api.PlaceOrderAsync("widget", 1), "committed");
        // The only courier is taken: delivery refuses, storage prepares and is aborted.
        var aborted = Expect.Order(await system.Api.PlaceOrderAsync("widget", 1), "aborted");
        var before = await Invariants.AssertConvergedAsync(system);

        foreach (var participant in new[] { Service.Storage, Service.Delivery })
        {
            foreach (var order in new[] { committed, aborted })
            {
                var body = new { orderId = order.OrderId, items = order.Items.Select(i => new { sku = i.Sku, quantity = i.Quantity }).ToArray() };
                var row = (await system.Api.LedgerRowAsync(participant, order.TransactionId))!;
                var vote = row.State is "committed" or "prepared" ? "yes" : "no";

                for (var repeat = 0; repeat < 2; repeat++)
                {
                    var prepare = await system.Api.SendProtocolAsync(participant, order.TransactionId, "prepare", body);
                    Assert.Equal(200, prepare.Status);
                    Assert.Contains($"\"vote\":\"{vote}\"", prepare.Body);

                    var commit = await system.Api.SendProtocolAsync(participant, order.TransactionId, "commit");
                    Assert.True(commit.Status == (order == committed ? 200 : 409), $"{participant} commit of a {order.Status} transaction answered {commit.Status}: {commit.Body}");

                    var abort = await system.Api.SendProtocolAsync(participant, order.TransactionId, "abort");
                    Assert.True(abort.Status == (order == committed ? 409 : 200), $"{participant} abort of a {order.Status} transaction answered {abort.Status}: {abort.Body}");
                }
            }
        }

        var after = await Invariants.AssertConvergedAsync(system);
        Assert.Equal(before.Products, after.Products);
        Assert.Equal(before.Couriers, after.Couriers);
        Assert.Equal(before.Deliveries, after.Deliveries);
        Assert.Equal(States(before.StorageLedger), States(after.StorageLedger));
        Assert.Equal(States(before.DeliveryLedger), States(after.DeliveryLedger));
    }

    /// <summary>
    /// A burst of identical PREPAREs for a transaction the coordinator never started: one reservation, every vote
    /// the same; then the in-doubt check asks the coordinator, which presumes abort, and the reservation is released.
    /// An ABORT that overtakes its PREPARE leaves a tombstone, and the late PREPARE votes no and holds nothing.
    /// </summary>
    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.Postgres)]
    public async Task StrayAndReorderedMessages_PresumedAbort_NothingHeld(Store store)
    {
        await using var system = await TestSystem.StartAsync(store, output);
        await system.SeedAsync(new Dictionary<string, long> { ["widget"] = 5 }, couriers: 3);
        var body = new { orderId = "stray-1", items = new[] { new { sku = "widget", quantity = 2 } } };

        var burst = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => system.Api.SendProtocolAsync(Service.Storage, "stray-1", "prepare", body)));
        Assert.All(burst, b => Assert.Equal((200, true), (b.Status, b.Body.Contains("\"vote\":\"yes\"", StringComparison.Ordinal))));
        var held = await system.Api.ProductsAsync();
        Assert.True(held.Single().Reserved is 0 or 2, $"one transaction reserved {held.Single().Reserved} units");

        var tombstone = await system.Api.SendProtocolAsync(Service.Delivery, "stray-2", "abort");
        Assert.Equal(200, tombstone.Status);
        var late = await system.Api.SendProtocolAsync(Service.Delivery, "stray-2", "prepare", new { orderId = "stray-2" });
        Assert.Contains("\"vote\":\"no\"", late.Body);

        var after = await Invariants.AssertConvergedAsync(system);
        Assert.Equal("aborted", after.StorageLedger.Single(r => r.TransactionId == "stray-1").State);
        Assert.Equal("aborted", after.DeliveryLedger.Single(r => r.TransactionId == "stray-2").State);
        Assert.All(after.Couriers, c => Assert.Equal("free", c.Status));
        Assert.Equal(5, after.Products.Single().OnHand);
    }

    /// <summary>
    /// Storage unreachable (every request held, none answered) for longer than the prepare deadline: the order
    /// aborts on the deadline. When the network heals, the held messages arrive late and in any order; storage
    /// ends aborted with nothing held.
    /// </summary>
    [Theory]
    [InlineData(Store.Sqlite, Service.Storage)]
    [InlineData(Store.Sqlite, Service.Delivery)]
    [InlineData(Store.Postgres, Service.Storage)]
    [InlineData(Store.Postgres, Service.Delivery)]
    public async Task ParticipantUnreachableLongerThanPrepareDeadline_AbortsOnDeadline_NothingHeldAfterHealing(Store store, Service participant)
    {
        await using var system = await TestSystem.StartAsync(store, output, new SystemOptions { Proxied = new HashSet<Service> { participant }, PrepareDeadlineMs = 1000 });
        await system.SeedAsync(new Dictionary<string, long> { ["widget"] = 5 }, couriers: 2);
        var proxy = system.Proxy(participant);
        proxy.Partition();

        var clock = Stopwatch.StartNew();
        var order = Expect.Order(await system.Api.PlaceOrderAsync("widget", 1), "aborted");
        var took = clock.Elapsed;

        var name = participant.ToString().ToLowerInvariant();
        Assert.Contains("deadline", order.Reason);
        // Usually the live coordinator decides and names who missed the deadline. If the recovery scan, which
        // aborts whatever is preparing past its deadline, gets there first, the answer carries recovery's
        // reason and no votes (see the report: a race at the deadline, harmless to the outcome).
        if (order.Votes.TryGetValue(name, out var vote))
        {
            Assert.Equal("none", vote.Vote);
            Assert.Contains(name, order.Reason);
        }
        Assert.True(took >= TimeSpan.FromMilliseconds(900), $"aborted after {took.TotalMilliseconds:0} ms, before the 1000 ms deadline");

        // Stay partitioned a while longer: the abort is re-sent into the void a few times.
        await WaitUntilAsync(() => proxy.Seen.Count(r => r.EndsWith("/abort", StringComparison.Ordinal)) >= 2, TimeSpan.FromSeconds(15));
        proxy.Heal();

        var after = await Invariants.AssertConvergedAsync(system);
        var ledger = participant == Service.Storage ? after.StorageLedger : after.DeliveryLedger;
        Assert.Equal("aborted", ledger.Single(r => r.TransactionId == order.TransactionId).State);
        Assert.Equal(0, after.Products.Single().Sold);
        Assert.All(after.Couriers, c => Assert.Equal("free", c.Status));
    }

    private static Dictionary<string, string> States(IEnumerable<LedgerRow> rows) => rows.ToDictionary(r => r.TransactionId, r => r.State);

    private static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < timeout, $"condition not met within {timeout.TotalSeconds:0} s");
            await Task.Delay(TimeSpan.FromMilliseconds(50));
        }
    }
}
