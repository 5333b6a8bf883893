using System.Net;
using System.Net.Http.Headers;
using System.Runtime.Versioning;
using System.Text;
using System.Text.Json;
using TwoPhase.EndToEnd.Tests.Harness;
using Xunit;
using Xunit.Abstractions;

namespace TwoPhase.EndToEnd.Tests;

/// <summary>
/// Secure by default (docs/security.md): three services started with no secret configured, as a new user runs them,
/// share a generated one from an owner-only cookie file, refuse anonymous protocol and admin calls, and still keep
/// the old system's unauthenticated protocol open on loopback.
/// </summary>
[UnsupportedOSPlatform("windows")] // modes and owners: the Unix cookie file
public sealed class SecureByDefaultTests(ITestOutputHelper output)
{
    [Fact]
    public async Task NoSecretConfigured_AnonymousPrepareIsRefusedAndReservesNothing_WhileOrdersCommitWithTheGeneratedSecret()
    {
        await using var system = await TestSystem.StartAsync(Store.Sqlite, output, new SystemOptions { GeneratedSecret = true });
        await system.SeedAsync(new Dictionary<string, long> { ["widget"] = 5 }, couriers: 3);
        using var anonymous = new HttpClient();

        // What any local user could do before: reserve a courier, or stock, with no credentials at all.
        foreach (var (participant, body) in new[] { (Service.Delivery, """{"orderId":"x"}"""), (Service.Storage, """{"items":[{"sku":"widget","quantity":1}]}""") })
        {
            var url = new Uri(system.Api.Participant(participant), "v1/transactions/x/prepare");
            Assert.Equal(HttpStatusCode.Unauthorized, await PostAsync(anonymous, url, body, bearer: null));
            Assert.Equal(HttpStatusCode.Unauthorized, await PostAsync(anonymous, url, body, bearer: "guessed"));
            Assert.Null(await system.Api.LedgerRowAsync(participant, "x"));
        }

        // The operator's endpoints are closed to anonymous callers too.
        Assert.Equal(HttpStatusCode.Unauthorized, await PostAsync(anonymous, new Uri(system.Api.DeliveryUrl, "v1/couriers"), """{"id":"intruder","name":"Intruder"}""", bearer: null));
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync(new Uri(system.Api.OrderUrl, "v1/admin/transactions?state=unfinished"))).StatusCode);
        Assert.All(await system.Api.CouriersAsync(), c => Assert.Equal("free", c.Status));
        Assert.Equal(3, (await system.Api.CouriersAsync()).Count);
        Assert.Equal(0, Assert.Single(await system.Api.ProductsAsync()).Reserved);

        // One secret, generated once, owner-only, and found by all three services.
        Assert.True(File.Exists(system.SecretFile), $"no secret file at {system.SecretFile}\n{system.Tails()}");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(system.SecretFile));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(system.SecretFile)!));
        var services = new[] { system.Order, system.Storage, system.Delivery };
        Assert.Single(services, s => s.LogContains($"generated and stored owner-only in {system.SecretFile}"));
        Assert.Equal(2, services.Count(s => s.LogContains($"read from {system.SecretFile}")));
        Assert.All(services, s => Assert.False(s.LogContains(system.Secret), $"{s.Kind} logged the secret"));

        // The coordinator authenticates to both participants with the secret they share.
        var order = Expect.Order(await system.Api.PlaceOrderAsync("widget", 1), "committed");
        Assert.Equal("committed", order.Status);
        var legacyOrder = await system.Api.PlaceLegacyOrderAsync(7);
        Assert.Equal("order committed", legacyOrder.Body.GetProperty("status").GetString());

        // The old protocol, unauthenticated on loopback, as the old coordinator calls it.
        var prepare = await anonymous.PostAsync(new Uri(system.Api.DeliveryUrl, "prepare"), Json("""{"transactionId":"old-1","orderId":8}"""));
        Assert.Equal(HttpStatusCode.OK, prepare.StatusCode);
        Assert.Equal("yes", JsonDocument.Parse(await prepare.Content.ReadAsStringAsync()).RootElement.GetProperty("vote").GetString());
        var rollback = await anonymous.PostAsync(new Uri(system.Api.DeliveryUrl, "rollback"), Json("""{"transactionId":"old-1","orderId":8}"""));
        Assert.Equal(HttpStatusCode.OK, rollback.StatusCode);
        Assert.Equal("aborted", (await system.Api.LedgerRowAsync(Service.Delivery, "old-1"))?.State);

        var after = await Invariants.AssertConvergedAsync(system);
        Assert.Equal(2, after.Committed.Count);
        Assert.DoesNotContain(after.DeliveryLedger, r => r.TransactionId == "x");
        Assert.DoesNotContain(after.StorageLedger, r => r.TransactionId == "x");
    }

    private static async Task<HttpStatusCode> PostAsync(HttpClient http, Uri url, string body, string? bearer)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = Json(body) };
        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        using var response = await http.SendAsync(request);
        return response.StatusCode;
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");
}
