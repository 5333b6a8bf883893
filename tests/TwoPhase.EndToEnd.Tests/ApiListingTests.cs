using TwoPhase.EndToEnd.Tests.Harness;
using Xunit;
using Xunit.Abstractions;

namespace TwoPhase.EndToEnd.Tests;

/// <summary>The paged listings the auditor and these tests read everything through.</summary>
public sealed class ApiListingTests(ITestOutputHelper output)
{
    /// <summary>
    /// <c>?after=&amp;limit=1000</c>, an empty cursor, is how a client naturally asks for the first page (docs/api.md
    /// documents <c>?after={id}&amp;limit={n}</c>); it must mean "from the start", not 400.
    /// </summary>
    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.Postgres)]
    public async Task EmptyAfterCursor_ListsFromTheStart(Store store)
    {
        await using var system = await TestSystem.StartAsync(store, output);
        await system.SeedAsync(new Dictionary<string, long> { ["widget"] = 5 }, couriers: 1);
        Expect.Order(await system.Api.PlaceOrderAsync("widget", 1), "committed");

        var failures = new List<string>();
        foreach (var (service, path) in new[]
        {
            (system.Api.OrderUrl, "v1/orders"),
            (system.Api.StorageUrl, "v1/transactions"),
            (system.Api.DeliveryUrl, "v1/transactions"),
            (system.Api.DeliveryUrl, "v1/deliveries"),
        })
        {
            using var response = await system.Api.Http.GetAsync(new Uri(service, $"{path}?after=&limit=1000"));
            var body = await response.Content.ReadAsStringAsync();
            if (!response.IsSuccessStatusCode || !body.StartsWith("[{", StringComparison.Ordinal))
            {
                failures.Add($"GET {service}{path}?after=&limit=1000 answered {(int)response.StatusCode}: {body}");
            }
        }

        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }
}
