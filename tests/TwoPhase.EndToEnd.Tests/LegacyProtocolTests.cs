using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using TwoPhase.EndToEnd.Tests.Harness;
using Xunit;
using Xunit.Abstractions;

namespace TwoPhase.EndToEnd.Tests;

/// <summary>
/// Seed compatibility (docs/design.md §3): a client of the old system (<c>POST /order?order_id=N</c>) and a participant
/// that speaks only the old <c>/prepare</c>, <c>/commit</c>, <c>/rollback</c> both work unchanged.
/// </summary>
public sealed class LegacyProtocolTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.Postgres)]
    public async Task OldClient_PostOrder_AnswersCommittedAndRolledBackInTheOldShape(Store store)
    {
        await using var system = await TestSystem.StartAsync(store, output);
        // The old orders take one unit of the default product ("widget") and one courier.
        await system.SeedAsync(new Dictionary<string, long> { ["widget"] = 2 }, couriers: 1);

        var committed = await system.Api.PlaceLegacyOrderAsync(1);
        AssertShape(committed, """{"status":"order committed","orderId":1}""");

        var repeated = await system.Api.PlaceLegacyOrderAsync(1);
        AssertShape(repeated, """{"status":"order committed","orderId":1}""");

        // The only courier is on order 1.
        var noCourier = await system.Api.PlaceLegacyOrderAsync(2);
        AssertShape(noCourier, """{"status":"order rolled back","orderId":2,"votes":{"storage":"yes","delivery":"no"}}""");

        // Free the courier; order 3 takes the last widget, so order 4 finds none.
        await FinishActiveDeliveriesAsync(system);
        AssertShape(await system.Api.PlaceLegacyOrderAsync(3), """{"status":"order committed","orderId":3}""");
        await FinishActiveDeliveriesAsync(system);
        var noStock = await system.Api.PlaceLegacyOrderAsync(4);
        AssertShape(noStock, """{"status":"order rolled back","orderId":4,"votes":{"storage":"no","delivery":"yes"}}""");

        var after = await Invariants.AssertConvergedAsync(system);
        Assert.Equal(4, after.Orders.Count);
        Assert.Equal(2, after.Committed.Count);
        var widget = Assert.Single(after.Products);
        Assert.Equal((0L, 2L), (widget.OnHand, widget.Sold));
    }

    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.Postgres)]
    public async Task OldProtocolParticipant_DeliveryDrivenThroughPrepareCommitRollback_CommitsAndAbortsCorrectly(Store store)
    {
        // Delivery behind a (well-behaved) proxy, so the test can see which dialect the coordinator spoke.
        await using var system = await TestSystem.StartAsync(store, output, new SystemOptions
        {
            DeliveryProtocol = "legacy",
            Proxied = new HashSet<Service> { Service.Delivery },
        });
        await system.SeedAsync(new Dictionary<string, long> { ["widget"] = 5 }, couriers: 1);

        var a = Expect.Order(await system.Api.PlaceOrderAsync("widget", 1), "committed");
        Assert.Equal("yes", a.Votes["delivery"].Vote);

        var b = Expect.Order(await system.Api.PlaceOrderAsync("widget", 1), "aborted");
        Assert.Equal("no", b.Votes["delivery"].Vote);
        Assert.Contains("delivery", b.Reason);

        // Delivery prepares (the courier is free again), storage refuses: delivery must be rolled back.
        await FinishActiveDeliveriesAsync(system);
        var c = Expect.Order(await system.Api.PlaceOrderAsync("widget", 6), "aborted");
        Assert.Equal("yes", c.Votes["delivery"].Vote);
        Assert.Contains("storage", c.Reason);

        // The courier released by the rollback takes the next order.
        Expect.Order(await system.Api.PlaceOrderAsync("widget", 1), "committed");

        var after = await Invariants.AssertConvergedAsync(system);
        Assert.Equal("aborted", after.DeliveryLedger.Single(r => r.TransactionId == c.TransactionId).State);
        Assert.Equal(2, Assert.Single(after.Products).Sold);
        var seen = system.Proxy(Service.Delivery).Seen;
        Assert.Contains("POST /prepare", seen);
        Assert.Contains("POST /commit", seen);
        Assert.Contains("POST /rollback", seen);
        Assert.DoesNotContain(seen, r => r.Contains("/v1/transactions", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.Postgres)]
    public async Task OldProtocolParticipant_DeliveryRecordsTheOrderIdItWasGiven(Store store)
    {
        await using var system = await TestSystem.StartAsync(store, output, new SystemOptions { DeliveryProtocol = "legacy" });
        await system.SeedAsync(new Dictionary<string, long> { ["widget"] = 5 }, couriers: 2);

        var order = Expect.Order(await system.Api.PlaceOrderAsync("widget", 1), "committed");
        AssertShape(await system.Api.PlaceLegacyOrderAsync(42), """{"status":"order committed","orderId":42}""");

        var after = await Invariants.AssertConvergedAsync(system);
        // The old message carries the order id; a v1 order's id is a string and must arrive as that string,
        // a seed order's as its number; not as JSON text with quotes around it.
        Assert.Equal(order.OrderId, after.Deliveries.Single(d => d.TransactionId == order.TransactionId).OrderId);
        Assert.Equal("42", after.Deliveries.Single(d => d.TransactionId != order.TransactionId).OrderId);
    }

    /// <summary>
    /// An old-protocol participant that answers PREPARE with something that is not a vote: the coordinator counts it
    /// as no vote (the order aborts, saying why), never an error of its own, and the other participant is released.
    /// Only the coordinator's parsing is under test, so one store is enough.
    /// </summary>
    [Fact]
    public async Task OldProtocolParticipant_MalformedVote_OrderAbortsWithReason_No500()
    {
        string[] malformed = ["""{"vote":1}""", """{"vote":null}""", """{"vote":{"yes":true}}""", """["yes"]""", "\"yes\"", "null", "{}", "not json"];
        await using var stub = await LegacyStub.StartAsync();
        await using var system = await TestSystem.StartAsync(Store.Sqlite, output, new SystemOptions
        {
            DeliveryProtocol = "legacy",
            Environment = new Dictionary<Service, IReadOnlyDictionary<string, string>>
            {
                [Service.Order] = new Dictionary<string, string> { ["TwoPhase__Coordinator__Participants__1__Url"] = stub.Url.ToString() },
            },
        });
        await system.SeedAsync(new Dictionary<string, long> { ["widget"] = 1 }, couriers: 1);

        foreach (var answer in malformed)
        {
            stub.PrepareAnswer = answer;
            var placed = await system.Api.PlaceOrderAsync("widget", 1);

            Assert.True(placed.Status < 500, $"prepare answered {answer}: the order answered HTTP {placed.Status}: {placed.Body}\n{system.Tails()}");
            var order = Expect.Order(placed, "aborted");
            Assert.NotEqual("yes", order.Votes["delivery"].Vote);
            Assert.Contains("delivery", order.Reason, StringComparison.Ordinal);
            Assert.Equal("yes", order.Votes["storage"].Vote);
            await stub.WaitForRollbackAsync(order.TransactionId);
        }

        // Every abort reached storage too: the one widget is free again, and nothing was sold.
        var after = await Invariants.AssertConvergedAsync(system);
        Assert.Equal(malformed.Length, after.Orders.Count);
        var widget = Assert.Single(after.Products);
        Assert.Equal((1L, 0L, 0L), (widget.OnHand, widget.Reserved, widget.Sold));
    }

    /// <summary>A participant that speaks only the old dialect and answers PREPARE with whatever the test says.</summary>
    private sealed class LegacyStub : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly ConcurrentDictionary<string, TaskCompletionSource> _rollbacks = new(StringComparer.Ordinal);

        private LegacyStub(WebApplication app) => _app = app;

        public Uri Url { get; private set; } = null!;

        public volatile string PrepareAnswer = "{}";

        public static async Task<LegacyStub> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            var app = builder.Build();
            var stub = new LegacyStub(app);
            app.MapPost("/prepare", () => Results.Text(stub.PrepareAnswer, "application/json"));
            app.MapPost("/commit", () => Results.Text("{}", "application/json"));
            app.MapPost("/rollback", async (HttpRequest request) =>
            {
                var body = await JsonSerializer.DeserializeAsync<JsonElement>(request.Body);
                stub.Rollback(body.GetProperty("transactionId").GetString()!).TrySetResult();
                return Results.Text("{}", "application/json");
            });
            await app.StartAsync();
            stub.Url = new Uri(app.Urls.Single().TrimEnd('/') + "/");
            return stub;
        }

        public Task WaitForRollbackAsync(string transactionId) => Rollback(transactionId).Task.WaitAsync(TimeSpan.FromSeconds(30));

        private TaskCompletionSource Rollback(string transactionId) =>
            _rollbacks.GetOrAdd(transactionId, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }

    /// <summary>Every active delivery done: its courier is free for the next order.</summary>
    private static async Task FinishActiveDeliveriesAsync(TestSystem system)
    {
        var active = (await system.Api.DeliveriesAsync()).Where(d => d.Status == "active").ToList();
        Assert.NotEmpty(active);
        foreach (var delivery in active)
        {
            using var response = await system.Api.Http.PostAsync(new Uri(system.Api.DeliveryUrl, $"v1/deliveries/{delivery.TransactionId}/complete"), null);
            Assert.True(response.IsSuccessStatusCode, $"completing the delivery of {delivery.TransactionId} answered {(int)response.StatusCode}");
        }
    }

    /// <summary>The exact old JSON: the same members, the same values, the same JSON types (a number stays a number).</summary>
    private static void AssertShape((int Status, JsonElement Body) answer, string expected)
    {
        Assert.Equal(200, answer.Status);
        var want = JsonSerializer.Deserialize<JsonElement>(expected);
        Assert.True(JsonElement.DeepEquals(want, answer.Body), $"expected {expected}, got {answer.Body.GetRawText()}");
    }
}
