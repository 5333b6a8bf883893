using System.Diagnostics;
using System.Text.Json.Nodes;

namespace TwoPhase.Fuzz.Tests.Harness;

/// <summary>The whole state of the system as its APIs show it, and the DESIGN §2 audit over it.</summary>
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

    /// <summary>DESIGN §2 invariants on a quiet system; returns every violation found.</summary>
    public static async Task<List<string>> AuditAsync(Services s)
    {
        await WaitQuietAsync(s);
        var bad = new List<string>();
        var orders = (await s.GetAllAsync(Svc.Order, "/v1/orders", "orderId")).Select(o => o!).ToList();
        var storage = (await s.GetAllAsync(Svc.Storage, "/v1/transactions", "transactionId")).ToDictionary(r => Str(r!, "transactionId"), r => Str(r!, "state"));
        var delivery = (await s.GetAllAsync(Svc.Delivery, "/v1/transactions", "transactionId")).ToDictionary(r => Str(r!, "transactionId"), r => Str(r!, "state"));
        var products = (await s.GetAsync(Svc.Storage, "/v1/products")).AsArray().Select(p => p!).ToList();
        var couriers = (await s.GetAsync(Svc.Delivery, "/v1/couriers")).AsArray().Select(c => c!).ToList();
        var deliveries = (await s.GetAllAsync(Svc.Delivery, "/v1/deliveries", "transactionId")).Select(d => d!).ToList();

        var committed = new HashSet<string>();
        var sold = new Dictionary<string, long>();
        foreach (var order in orders)
        {
            var tx = Str(order, "transactionId");
            var status = Str(order, "status");
            var atStorage = storage.GetValueOrDefault(tx, "none");
            var atDelivery = delivery.GetValueOrDefault(tx, "none");
            if (status == "committed")
            {
                committed.Add(tx);
                if (atStorage != "committed" || atDelivery != "committed")
                {
                    bad.Add($"atomicity: order {tx} committed, storage {atStorage}, delivery {atDelivery}");
                }

                foreach (var item in order["items"]!.AsArray())
                {
                    var sku = Str(item!, "sku");
                    sold[sku] = sold.GetValueOrDefault(sku) + item!["quantity"]!.GetValue<long>();
                }
            }
            else if (status == "aborted")
            {
                if (atStorage == "committed" || atDelivery == "committed")
                {
                    bad.Add($"atomicity: order {tx} aborted, storage {atStorage}, delivery {atDelivery}");
                }
            }
            else
            {
                bad.Add($"liveness: order {tx} is {status} on a quiet system");
            }

            if (order["completed"]?.GetValue<bool>() != true)
            {
                bad.Add($"liveness: order {tx} not completed");
            }
        }

        foreach (var (name, ledger) in new[] { ("storage", storage), ("delivery", delivery) })
        {
            foreach (var (tx, state) in ledger)
            {
                if (state == "committed" && !committed.Contains(tx))
                {
                    bad.Add($"validity: {name} committed {tx} without a committed order");
                }

                if (state == "prepared")
                {
                    bad.Add($"liveness: {name} still holds {tx} prepared");
                }
            }
        }

        foreach (var p in products)
        {
            var (sku, onHand, reserved, soldHere, received) = (Str(p, "sku"), Num(p, "onHand"), Num(p, "reserved"), Num(p, "sold"), Num(p, "received"));
            if (onHand + soldHere != received || onHand < 0 || reserved != 0 || soldHere < 0)
            {
                bad.Add($"conservation: {p.ToJsonString()}");
            }

            if (soldHere != sold.GetValueOrDefault(sku))
            {
                bad.Add($"conservation: {sku} sold {soldHere}, committed orders took {sold.GetValueOrDefault(sku)}");
            }
        }

        var active = deliveries.Where(d => Str(d, "status") == "active").ToList();
        foreach (var group in active.GroupBy(d => Str(d, "courierId")).Where(g => g.Count() > 1))
        {
            bad.Add($"double booking: courier {group.Key} has {group.Count()} active deliveries");
        }

        foreach (var courier in couriers)
        {
            var status = Str(courier, "status");
            var hasActive = active.Any(d => Str(d, "courierId") == Str(courier, "id"));
            if (status == "reserved" || (status == "busy") != hasActive)
            {
                bad.Add($"couriers: {courier.ToJsonString()} with {(hasActive ? "an" : "no")} active delivery");
            }
        }

        foreach (var d in deliveries.Where(d => !committed.Contains(Str(d, "transactionId"))))
        {
            bad.Add($"validity: delivery {d.ToJsonString()} without a committed order");
        }

        foreach (var tx in committed.Where(tx => deliveries.All(d => Str(d, "transactionId") != tx)))
        {
            bad.Add($"atomicity: committed order {tx} has no delivery");
        }

        return bad;
    }

    private static string Str(JsonNode node, string name) => node[name]?.GetValue<string>() ?? "";

    private static long Num(JsonNode node, string name) => node[name]!.GetValue<long>();

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
