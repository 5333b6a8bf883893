using System.Globalization;
using System.Net;
using System.Text.Json;
using TwoPhase.AspNetCore;
using TwoPhase.EndToEnd.Tests.Harness;
using Xunit;
using Xunit.Abstractions;

namespace TwoPhase.EndToEnd.Tests;

/// <summary>
/// Two independent coordinator groups on the same participants (issue 14, "Participants know who to ask"): each group has
/// its own decision log, and a participant in doubt must ask the group that sent its PREPARE, never another one, which
/// would presume abort for an id it never issued (docs/protocol.md, "Coordinator groups").
/// </summary>
public sealed class CoordinatorGroupTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(90);

    public static TheoryData<Store, bool> Cases() => new()
    {
        { Store.Sqlite, true },
        { Store.Sqlite, false },
        { Store.Postgres, true },
    };

    /// <summary>
    /// Group A (the reference system's order service, the one the participants are configured to ask) and group B (a
    /// second order service with its own decision log, reaching storage through a proxy that drops every COMMIT). B
    /// commits an order; delivery gets its COMMIT, storage never does and goes in doubt. Storage must ask B (the group
    /// and URL its PREPARE named) and commit; asking A, as before groups, heard "aborted" and broke atomicity. A itself
    /// answers for B's id: 404 not-this-group when asked as group b, presumed abort when asked as its own.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public async Task CommitLateFromGroupB_ParticipantAsksB_NeverAborts(Store store, bool batched)
    {
        var aUrl = $"http://127.0.0.1:{PortAllocator.Next().ToString(CultureInfo.InvariantCulture)}";
        await using var system = await TestSystem.StartAsync(store, output, new SystemOptions
        {
            Ports = new ServicePorts(new Uri(aUrl).Port, PortAllocator.Next(), PortAllocator.Next()),
            BatchMessages = batched,
            Environment = new Dictionary<Service, IReadOnlyDictionary<string, string>>
            {
                [Service.Order] = new Dictionary<string, string>
                {
                    ["TwoPhase__Coordinator__Group"] = "a",
                    ["TwoPhase__Coordinator__AdvertisedUrl"] = aUrl,
                },
            },
        });
        await system.SeedAsync(new Dictionary<string, long> { ["widget"] = 5 }, couriers: 2);

        // Storage, as group B reaches it: every COMMIT lost, for as long as the test runs.
        await using var storageForB = await FaultProxy.StartAsync(system.Storage.Url);
        var commitsLost = storageForB.Arm(MessageFault.DropRequest, maxRequests: 100_000, window: TimeSpan.FromMinutes(5), messageSuffix: "/commit");

        var bUrl = new Uri($"http://127.0.0.1:{PortAllocator.Next().ToString(CultureInfo.InvariantCulture)}/");
        await using var groupB = StartGroupB(system, bUrl, storageForB.Url, batched);
        using (var probe = new HttpClient())
        {
            await groupB.WaitReadyAsync(probe, TimeSpan.FromSeconds(60));
        }

        system.Log($"group b at {bUrl}, reaching storage through {storageForB.Url} (COMMITs dropped)");
        var b = new Api(system.Api.Http, bUrl, system.Storage.Url, system.Delivery.Url);
        var order = Expect.Order(await b.PlaceOrderAsync("widget", 1), "committed");
        var id = order.TransactionId;
        Assert.Equal("committed", await b.DecisionAsync(id));

        // Storage prepared for B and kept who sent it.
        var prepared = await system.Api.LedgerRowAsync(Service.Storage, id);
        Assert.NotNull(prepared);
        Assert.Equal("b", prepared!.CoordinatorGroup);
        Assert.Equal(bUrl.GetLeftPart(UriPartial.Authority), prepared.CoordinatorUrl);

        // Storage in doubt: its COMMIT never arrives, so only its own question to B can finish it.
        var final = await WaitFinalAsync(system.Api, Service.Storage, id);
        Assert.True(commitsLost.Hits >= 1, "the proxy dropped no COMMIT: storage was not in doubt");
        Assert.False(commitsLost.IsOver, "the COMMITs were dropped throughout");
        Assert.True(final.State == "committed", $"storage ended {final.State} for a transaction group b committed.\n{system.Tails()}\n{groupB.Tail()}");
        Assert.Equal("committed", (await WaitFinalAsync(system.Api, Service.Delivery, id)).State);
        var product = Assert.Single(await system.Api.ProductsAsync());
        Assert.Equal((1L, 0L, 4L), (product.Sold, product.Reserved, product.OnHand));

        // A never issued B's id: as group b's it cannot presume anything; as its own, presumed abort as before.
        var http = system.Api.Http;
        using (var notMine = await http.GetAsync(new Uri(system.Order.Url, $"v1/transactions/{id}?group=b")))
        {
            Assert.Equal(HttpStatusCode.NotFound, notMine.StatusCode);
            var problem = JsonSerializer.Deserialize<JsonElement>(await notMine.Content.ReadAsStringAsync());
            Assert.EndsWith("/not-this-group", problem.GetProperty("type").GetString(), StringComparison.Ordinal);
            var detail = problem.GetProperty("detail").GetString()!;
            Assert.Contains("'a'", detail, StringComparison.Ordinal);
            Assert.Contains("'b'", detail, StringComparison.Ordinal);
        }

        Assert.Equal("aborted", await QueryStateAsync(http, system.Order.Url, id, "a"));
        Assert.Equal("aborted", await QueryStateAsync(http, system.Order.Url, id, null));
        Assert.Equal("committed", await QueryStateAsync(http, bUrl, id, "b"));
        using (var bad = await http.GetAsync(new Uri(system.Order.Url, $"v1/transactions/{id}?group=-bad")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        }

        commitsLost.Disarm();
    }

    /// <summary>A second order service: group b, its own SQLite decision log, the same participants (storage through the proxy).</summary>
    private static ServiceProcess StartGroupB(TestSystem system, Uri url, Uri storage, bool batched)
    {
        var root = RepoLocator.FindRepoRoot(AppContext.BaseDirectory) ?? throw new InvalidOperationException("repository root not found");
        var dll = Path.Combine(root, "src", "OrderService", "bin", RepoLocator.BuildConfiguration, "net10.0", "OrderService.dll");
        var quick = RecoverySettings.Quick;
        var env = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["DOTNET_ENVIRONMENT"] = "Production",
            ["Seed__Enabled"] = "false",
            ["TwoPhase__Secret"] = system.Secret,
            ["TwoPhase__SecretFile"] = system.SecretFile,
            ["TwoPhase__Database__Provider"] = "sqlite",
            ["TwoPhase__Database__ConnectionString"] = $"Data Source={Path.Combine(system.Folder, "order-b.db")}",
            ["TwoPhase__Coordinator__Group"] = "b",
            ["TwoPhase__Coordinator__AdvertisedUrl"] = url.GetLeftPart(UriPartial.Authority),
            ["TwoPhase__Coordinator__Participants__0__Name"] = "storage",
            ["TwoPhase__Coordinator__Participants__0__Url"] = storage.GetLeftPart(UriPartial.Authority),
            ["TwoPhase__Coordinator__Participants__1__Name"] = "delivery",
            ["TwoPhase__Coordinator__Participants__1__Url"] = system.Delivery.Url.GetLeftPart(UriPartial.Authority),
            ["TwoPhase__Coordinator__BatchMessages"] = batched ? "true" : "false",
            // Generous: a cold first PREPARE on a loaded two-core machine must not turn this order into an abort.
            ["TwoPhase__Coordinator__PrepareDeadlineMs"] = "20000",
            ["TwoPhase__Coordinator__RecoveryIntervalMs"] = quick.CoordinatorScanMs!.Value.ToString(CultureInfo.InvariantCulture),
            ["TwoPhase__Coordinator__DecisionTimeoutMs"] = quick.DecisionTimeoutMs!.Value.ToString(CultureInfo.InvariantCulture),
            ["TwoPhase__Coordinator__RetryMaxDelayMs"] = quick.CoordinatorRetryMaxDelayMs!.Value.ToString(CultureInfo.InvariantCulture),
            ["Logging__LogLevel__Default"] = "Information",
            ["Logging__LogLevel__Microsoft.AspNetCore"] = "Warning",
            ["Logging__Console__FormatterName"] = "simple",
            ["Logging__Console__FormatterOptions__SingleLine"] = "true",
        };
        var process = new ServiceProcess("OrderService (group b)", dll, url, env, Path.Combine(system.Folder, "order-b.log"));
        process.Start();
        return process;
    }

    /// <summary>The participant's row once it is no longer prepared; bounded.</summary>
    private static async Task<LedgerRow> WaitFinalAsync(Api api, Service participant, string id)
    {
        var until = DateTimeOffset.UtcNow + Bound;
        while (true)
        {
            var row = await api.LedgerRowAsync(participant, id);
            if (row is { State: not "prepared" })
            {
                return row;
            }

            Assert.True(DateTimeOffset.UtcNow < until, $"{participant}'s row of {id} still {row?.State ?? "absent"} after {Bound.TotalSeconds} s");
            await Task.Delay(200);
        }
    }

    private static async Task<string?> QueryStateAsync(HttpClient http, Uri coordinator, string id, string? group)
    {
        using var response = await http.GetAsync(new Uri(coordinator, $"v1/transactions/{id}{(group is null ? "" : "?group=" + group)}"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return JsonSerializer.Deserialize<DecisionQuery>(await response.Content.ReadAsStringAsync(), JsonSerializerOptions.Web)!.State;
    }
}
