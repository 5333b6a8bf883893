using System.Diagnostics;
using System.Text.Json.Nodes;
using TwoPhase.Harness.Audit;
using TwoPhase.Harness.Client;

namespace TwoPhase.Fuzz.Tests.Harness;

/// <summary>The whole state of the system as its APIs show it, and the docs/design.md §2 audit over it.</summary>
public static class State
{
    /// <summary>Products, couriers, deliveries, orders, both ledgers and the unfinished transactions, as one comparable text.</summary>
    public static async Task<string> SnapshotAsync(Services s)
    {
        var whole = new JsonObject
        {
            ["products"] = await s.GetAsync(Svc.Storage, "/v1/products"),
            ["couriers"] = await s.GetAsync(Svc.Delivery, "/v1/couriers"),
            ["deliveries"] = await s.GetAllAsync(Svc.Delivery, "/v1/deliveries", "transactionId"),
            ["orders"] = await s.GetAllAsync(Svc.Order, "/v1/orders", "orderId"),
            ["storageLedger"] = await s.GetAllAsync(Svc.Storage, "/v1/transactions", "transactionId"),
            ["deliveryLedger"] = await s.GetAllAsync(Svc.Delivery, "/v1/transactions", "transactionId"),
            ["unfinished"] = await s.GetAsync(Svc.Order, "/v1/admin/transactions?state=unfinished"),
        };
        StripAges(whole);
        return whole.ToJsonString();
    }

    /// <summary>Wait until every transaction is completed and no participant holds anything prepared.</summary>
    public static async Task WaitQuietAsync(Services s)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var unfinished = (await s.GetAsync(Svc.Order, "/v1/admin/transactions?state=unfinished")).AsArray().Count;
            var prepared = (await s.GetAsync(Svc.Storage, "/v1/admin/prepared")).AsArray().Count
                + (await s.GetAsync(Svc.Delivery, "/v1/admin/prepared")).AsArray().Count;
            if (unfinished == 0 && prepared == 0)
            {
                return;
            }

            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"not quiet after 30 s: {unfinished} unfinished, {prepared} prepared\n{s.RecentLog()}");
            await Task.Delay(50);
        }
    }

    /// <summary>docs/design.md §2 invariants on a quiet system, judged by the harness's one auditor; returns every violation found.</summary>
    public static async Task<List<string>> AuditAsync(Services s)
    {
        await WaitQuietAsync(s);
        var reader = new ServiceSnapshotReader(s.Http, new ServiceEndpoints(s.Urls[Svc.Order], s.Urls[Svc.Storage], s.Urls[Svc.Delivery]), s.Secret)
        {
            ReadAdminListings = true,
        };
        var report = new Auditor { MaxViolationsListed = int.MaxValue }.Check(await reader.ReadAsync(CancellationToken.None));
        return report.Results.SelectMany(r => r.Violations.Select(v => $"{r.Name}: {v}")).ToList();
    }

    private static void StripAges(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                o.Remove("ageSeconds");
                foreach (var (_, child) in o)
                {
                    StripAges(child);
                }

                break;
            case JsonArray a:
                foreach (var child in a)
                {
                    StripAges(child);
                }

                break;
        }
    }
}
