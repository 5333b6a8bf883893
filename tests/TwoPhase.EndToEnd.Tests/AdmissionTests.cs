using System.Diagnostics;
using System.Net.Http.Json;
using TwoPhase.EndToEnd.Tests.Harness;
using Xunit;
using Xunit.Abstractions;

namespace TwoPhase.EndToEnd.Tests;

/// <summary>Load shedding at the coordinator (issue 10, defect 4): beyond its admission limit and queue, 503 with Retry-After, nothing started.</summary>
public sealed class AdmissionTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Two orders in flight (delivery held by the fault proxy, so they cannot finish), two more waiting in the
    /// admission queue: every further order, on the main API and the old <c>POST /order</c>, is answered at once with a
    /// 503 problem detail and Retry-After, and nothing is recorded for it. The queued ones are not shed: they run once
    /// the participant answers again. A shed order retried with its Idempotency-Key commits as a new order would.
    /// </summary>
    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.Postgres)]
    public async Task AdmissionLimitAndQueueFull_ExcessOrders503WithRetryAfter_NothingRecorded_RetryCommits(Store store)
    {
        var coordinator = new Dictionary<string, string>
        {
            ["TwoPhase__Coordinator__MaxInFlight"] = "2",
            ["TwoPhase__Coordinator__AdmissionQueueLimit"] = "2",
            // Far longer than the test: a queued order waits for the heal, whatever the machine's speed.
            ["TwoPhase__Coordinator__AdmissionQueueTimeoutMs"] = "120000",
            ["TwoPhase__Coordinator__RetryAfterSeconds"] = "3",
            ["TwoPhase__RequestTimeoutMs"] = "120000",
        };
        await using var system = await TestSystem.StartAsync(store, output, new SystemOptions
        {
            Proxied = new HashSet<Service> { Service.Delivery },
            // The held orders must stay in flight until the heal, not abort at the deadline and free their places.
            PrepareDeadlineMs = 120_000,
            Environment = new Dictionary<Service, IReadOnlyDictionary<string, string>> { [Service.Order] = coordinator },
        });
        await system.SeedAsync(new Dictionary<string, long> { ["widget"] = 20 }, couriers: 10);
        var proxy = system.Proxy(Service.Delivery);
        proxy.Partition();

        var running = new[] { Place(system, "run-1"), Place(system, "run-2") };
        await WaitUntilAsync(() => proxy.Seen.Count(m => m.EndsWith("/prepare", StringComparison.Ordinal)) >= 2);

        var more = Enumerable.Range(1, 4).Select(i => Place(system, $"more-{i}")).ToList();
        // Two of the four find the queue full and are answered now; the other two wait in it.
        var answered = new List<Task<Answer>>();
        var clock = Stopwatch.StartNew();
        while (answered.Count < 2)
        {
            var done = await Task.WhenAny(more.Except(answered)).WaitAsync(Bound - clock.Elapsed);
            answered.Add(done);
        }

        var shed = await Task.WhenAll(answered);
        Assert.All(shed, AssertShed);
        var legacy = await PlaceLegacy(system, 77);
        AssertShed(legacy);
        var queued = more.Except(answered).ToList();
        Assert.All(queued, t => Assert.False(t.IsCompleted, $"a queued order was answered while the limit was full: {(t.IsCompleted ? t.Result : null)}"));

        proxy.Heal();
        foreach (var order in await Task.WhenAll(running.Concat(queued)).WaitAsync(Bound))
        {
            Assert.True(order.Status == 201, $"an admitted order did not commit: {order}");
        }

        var settled = await Invariants.AssertConvergedAsync(system);
        var shedIds = shed.Select(s => s.ClientOrderId).ToHashSet(StringComparer.Ordinal);
        Assert.Equal(4, settled.Orders.Count);
        Assert.DoesNotContain(settled.Orders, o => o.ClientOrderId is { } id && shedIds.Contains(id));
        Assert.Equal(4, settled.StorageLedger.Count);
        Assert.Equal(4, settled.DeliveryLedger.Count);

        // Retried later with the same key (and body): a normal order.
        foreach (var retry in await Task.WhenAll(shed.Select(s => Place(system, s.ClientOrderId))))
        {
            Assert.True(retry.Status == 201, $"a shed order's retry did not commit: {retry}");
        }

        var legacyRetry = await PlaceLegacy(system, 77);
        Assert.True(legacyRetry.Status == 200 && legacyRetry.Body.Contains("order committed", StringComparison.Ordinal), $"the old client's retry: {legacyRetry}");

        var after = await Invariants.AssertConvergedAsync(system);
        Assert.Equal(7, after.Orders.Count);
        Assert.Equal(7, Assert.Single(after.Products).Sold);
    }

    private static void AssertShed(Answer answer)
    {
        Assert.True(answer.Status == 503, $"expected 503, got {answer}");
        Assert.Equal("3", answer.RetryAfter);
        Assert.Equal("application/problem+json", answer.ContentType);
        Assert.Contains("nothing was started", answer.Body, StringComparison.Ordinal);
    }

    /// <summary>POST /v1/orders with the client order id as Idempotency-Key too.</summary>
    private static async Task<Answer> Place(TestSystem system, string clientOrderId)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(system.Api.OrderUrl, "v1/orders"))
        {
            Content = JsonContent.Create(new { items = new[] { new { sku = "widget", quantity = 1 } }, clientOrderId }),
        };
        request.Headers.Add("Idempotency-Key", clientOrderId);
        using var response = await system.Api.Http.SendAsync(request);
        return await Answer.ReadAsync(clientOrderId, response);
    }

    private static async Task<Answer> PlaceLegacy(TestSystem system, long orderId)
    {
        using var response = await system.Api.Http.PostAsync(new Uri(system.Api.OrderUrl, $"order?order_id={orderId}"), null);
        return await Answer.ReadAsync($"legacy-{orderId}", response);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < Bound, $"condition not met within {Bound.TotalSeconds:0} s");
            await Task.Delay(TimeSpan.FromMilliseconds(50));
        }
    }

    private sealed record Answer(string ClientOrderId, int Status, string? RetryAfter, string? ContentType, string Body)
    {
        public static async Task<Answer> ReadAsync(string clientOrderId, HttpResponseMessage response) => new(
            clientOrderId,
            (int)response.StatusCode,
            response.Headers.RetryAfter?.Delta is { } delta ? ((int)delta.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture) : null,
            response.Content.Headers.ContentType?.MediaType,
            await response.Content.ReadAsStringAsync());
    }
}
