using System.Net;

namespace TwoPhase.Fuzz.Tests.Harness;

public static class WorldSetup
{
    /// <summary>
    /// Make what the refused requests aim at: couriers to spare, a committed order placed with an Idempotency-Key
    /// (its delivery active), and a committed old-protocol order; then wait until everything is completed.
    /// </summary>
    public static async Task<World> CreateAsync(Services s)
    {
        var run = Guid.NewGuid().ToString("N")[..10];
        for (var i = 0; i < 3; i++)
        {
            var (added, _) = await s.SendAsync(s.Request(Svc.Delivery, HttpMethod.Post, "/v1/couriers", new { id = $"fz-courier-{run}-{i}", name = "Fuzz courier" }));
            Assert.Equal(HttpStatusCode.Created, added);
        }

        var key = $"fz-key-{run}";
        const string body = """{"items":[{"sku":"widget","quantity":1}]}""";
        var request = s.Request(Svc.Order, HttpMethod.Post, "/v1/orders", auth: false);
        request.Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        request.Headers.Add("Idempotency-Key", key);
        var (status, order) = await s.SendAsync(request);
        Assert.True(status == HttpStatusCode.Created, $"setup order answered {(int)status}: {order?.ToJsonString()}\n{s.RecentLog()}");

        var legacyId = Random.Shared.NextInt64(1_000_000, 1_000_000_000);
        var (legacyStatus, legacy) = await s.SendAsync(s.Request(Svc.Order, HttpMethod.Post, $"/order?order_id={legacyId}", auth: false));
        Assert.Equal(HttpStatusCode.OK, legacyStatus);
        Assert.Equal("order committed", legacy!["status"]!.GetValue<string>());

        await State.WaitQuietAsync(s);
        return new World(order!["transactionId"]!.GetValue<string>(), key, body, legacyId, "c-001");
    }
}
