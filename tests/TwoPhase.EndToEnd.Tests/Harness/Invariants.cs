using System.Diagnostics;
using Xunit;

namespace TwoPhase.EndToEnd.Tests.Harness;

/// <summary>Everything the APIs show, read at one moment (each listing fully paged).</summary>
public sealed record Snapshot(
    IReadOnlyList<OrderView> Orders,
    IReadOnlyList<TransactionView> Unfinished,
    IReadOnlyList<LedgerRow> StorageLedger,
    IReadOnlyList<LedgerRow> DeliveryLedger,
    IReadOnlyList<LedgerRow> StoragePrepared,
    IReadOnlyList<LedgerRow> DeliveryPrepared,
    IReadOnlyList<Product> Products,
    IReadOnlyList<Courier> Couriers,
    IReadOnlyList<Delivery> Deliveries)
{
    public static async Task<Snapshot> TakeAsync(Api api) => new(
        await api.ListOrdersAsync(),
        await api.UnfinishedAsync(),
        await api.LedgerAsync(Service.Storage),
        await api.LedgerAsync(Service.Delivery),
        await api.PreparedAsync(Service.Storage),
        await api.PreparedAsync(Service.Delivery),
        await api.ProductsAsync(),
        await api.CouriersAsync(),
        await api.DeliveriesAsync());

    public IReadOnlyList<OrderView> Committed => Orders.Where(o => o.Status == "committed").ToList();

    public IReadOnlyList<OrderView> Aborted => Orders.Where(o => o.Status == "aborted").ToList();

    /// <summary>Nothing left to do: every transaction completed, nothing prepared, nothing reserved.</summary>
    public bool IsQuiet =>
        Unfinished.Count == 0
        && StoragePrepared.Count == 0
        && DeliveryPrepared.Count == 0
        && Products.All(p => p.Reserved == 0)
        && Couriers.All(c => c.Status != "reserved")
        && Orders.All(o => o.Status is "committed" or "aborted" && o.Completed);
}

/// <summary>
/// DESIGN §2's invariants, checked through the public APIs once the system is quiet: atomic outcome, validity,
/// conservation, no double booking, nothing left prepared, every transaction completed.
/// </summary>
public static class Invariants
{
    public static readonly TimeSpan DefaultQuietTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Waits (bounded, polling) until the system is quiet, then asserts every invariant on a fresh snapshot.
    /// Returns that snapshot for the test's own assertions.
    /// </summary>
    public static async Task<Snapshot> AssertConvergedAsync(TestSystem system, TimeSpan? within = null)
    {
        var timeout = within ?? DefaultQuietTimeout;
        var clock = Stopwatch.StartNew();
        Snapshot? snapshot = null;
        string? lastError = null;
        while (clock.Elapsed < timeout)
        {
            try
            {
                snapshot = await Snapshot.TakeAsync(system.Api);
                if (snapshot.IsQuiet)
                {
                    break;
                }
            }
            catch (HttpRequestException e)
            {
                // A service still restarting; ask again.
                lastError = e.Message;
                snapshot = null;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100));
        }

        system.Log(snapshot?.IsQuiet == true ? $"quiet after {clock.Elapsed.TotalSeconds:0.0} s" : $"NOT quiet after {timeout.TotalSeconds:0} s");
        if (snapshot is null)
        {
            Assert.Fail($"The services did not answer within {timeout.TotalSeconds:0} s: {lastError}\n{system.Tails()}");
        }

        // Check a fresh snapshot, not the one the loop liked: everything must still hold a moment later.
        snapshot = await Snapshot.TakeAsync(system.Api);
        var violations = Check(snapshot);
        if (violations.Count > 0)
        {
            Assert.Fail($"{violations.Count} invariant violation(s) after waiting up to {timeout.TotalSeconds:0} s for the system to be quiet:\n  "
                + string.Join("\n  ", violations.Take(50)) + "\n" + system.Tails());
        }

        return snapshot;
    }

    /// <summary>Every violation in <paramref name="s"/>, in words; empty when all invariants hold.</summary>
    public static List<string> Check(Snapshot s)
    {
        var violations = new List<string>();
        var storage = s.StorageLedger.ToDictionary(r => r.TransactionId);
        var delivery = s.DeliveryLedger.ToDictionary(r => r.TransactionId);
        var orders = s.Orders.ToDictionary(o => o.TransactionId);

        // Liveness: every transaction completed, nothing left prepared.
        violations.AddRange(s.Unfinished.Select(t => $"transaction {t.TransactionId} is not completed at the coordinator (state {t.State}, acknowledged [{string.Join(",", t.Acknowledged)}])"));
        violations.AddRange(s.StoragePrepared.Select(r => $"storage still holds prepared transaction {r.TransactionId}"));
        violations.AddRange(s.DeliveryPrepared.Select(r => $"delivery still holds prepared transaction {r.TransactionId}"));

        foreach (var order in s.Orders)
        {
            if (order.OrderId != order.TransactionId)
            {
                violations.Add($"order {order.OrderId} has transaction id {order.TransactionId}");
            }

            if (!order.Completed)
            {
                violations.Add($"order {order.OrderId} is {order.Status} but not completed");
            }

            switch (order.Status)
            {
                case "committed":
                    // Atomic outcome: committed at the coordinator means committed at every participant.
                    foreach (var (name, ledger) in new[] { ("storage", storage), ("delivery", delivery) })
                    {
                        if (!ledger.TryGetValue(order.TransactionId, out var row) || row.State != "committed")
                        {
                            violations.Add($"order {order.OrderId} is committed but {name}'s ledger says {row?.State ?? "nothing"}");
                        }
                    }

                    // Validity: commit only on all-yes.
                    if (order.Votes.Count != 2 || order.Votes.Values.Any(v => v.Vote != "yes"))
                    {
                        violations.Add($"order {order.OrderId} is committed without two yes votes: {string.Join(", ", order.Votes.Select(v => $"{v.Key}={v.Value.Vote}"))}");
                    }

                    break;
                case "aborted":
                    foreach (var (name, ledger) in new[] { ("storage", storage), ("delivery", delivery) })
                    {
                        if (ledger.TryGetValue(order.TransactionId, out var row) && row.State == "committed")
                        {
                            violations.Add($"order {order.OrderId} is aborted but committed at {name}");
                        }
                    }

                    break;
                default:
                    violations.Add($"order {order.OrderId} is still {order.Status}");
                    break;
            }
        }

        // Validity from the participants' side: a participant commits only what the coordinator decided to commit.
        foreach (var (name, ledger) in new[] { ("storage", s.StorageLedger), ("delivery", s.DeliveryLedger) })
        {
            foreach (var row in ledger.Where(r => r.State == "committed"))
            {
                if (!orders.TryGetValue(row.TransactionId, out var order) || order.Status != "committed")
                {
                    violations.Add($"{name} committed {row.TransactionId} but the coordinator says {order?.Status ?? "it does not exist (presumed abort)"}");
                }
            }

            violations.AddRange(ledger
                .Where(r => r.State is not ("prepared" or "refused" or "committed" or "aborted"))
                .Select(r => $"{name} ledger row {r.TransactionId} has unknown state {r.State}"));
        }

        // Conservation: per product onHand + sold == received, nothing negative, nothing reserved when quiet,
        // and sold is exactly what committed orders took.
        var soldByCommits = s.Committed.SelectMany(o => o.Items).GroupBy(i => i.Sku).ToDictionary(g => g.Key, g => g.Sum(i => i.Quantity));
        foreach (var p in s.Products)
        {
            if (p.OnHand + p.Sold != p.Received)
            {
                violations.Add($"product {p.Sku}: onHand {p.OnHand} + sold {p.Sold} != received {p.Received}");
            }

            if (p.OnHand < 0 || p.Sold < 0 || p.Reserved < 0 || p.Reserved > p.OnHand)
            {
                violations.Add($"product {p.Sku}: onHand {p.OnHand}, reserved {p.Reserved}, sold {p.Sold}: negative or over-reserved");
            }

            if (p.Reserved != 0)
            {
                violations.Add($"product {p.Sku}: {p.Reserved} units still reserved with nothing in flight");
            }

            var expected = soldByCommits.GetValueOrDefault(p.Sku);
            if (p.Sold != expected)
            {
                violations.Add($"product {p.Sku}: sold {p.Sold}, but committed orders took {expected}");
            }
        }

        foreach (var sku in soldByCommits.Keys.Except(s.Products.Select(p => p.Sku)))
        {
            violations.Add($"committed orders took sku {sku}, which storage does not have");
        }

        // No double booking: at most one active delivery per courier, one delivery per committed order and none
        // for anything else, and the couriers' status agrees with the deliveries.
        foreach (var group in s.Deliveries.Where(d => d.Status == "active").GroupBy(d => d.CourierId).Where(g => g.Count() > 1))
        {
            violations.Add($"courier {group.Key} is on {group.Count()} active deliveries: {string.Join(", ", group.Select(d => d.TransactionId))}");
        }

        var deliveries = s.Deliveries.ToDictionary(d => d.TransactionId);
        foreach (var order in s.Committed.Where(o => !deliveries.ContainsKey(o.TransactionId)))
        {
            violations.Add($"order {order.OrderId} is committed but has no delivery");
        }

        foreach (var d in s.Deliveries.Where(d => !orders.TryGetValue(d.TransactionId, out var o) || o.Status != "committed"))
        {
            violations.Add($"delivery for {d.TransactionId} exists but the order is {(orders.TryGetValue(d.TransactionId, out var o) ? o.Status : "unknown")}");
        }

        var active = s.Deliveries.Where(d => d.Status == "active").ToDictionary(d => d.CourierId, d => d.TransactionId);
        foreach (var c in s.Couriers)
        {
            var expected = active.TryGetValue(c.Id, out var tx) ? ("busy", tx) : ("free", (string?)null);
            if ((c.Status, c.TransactionId) != expected)
            {
                violations.Add($"courier {c.Id} is {c.Status} for {c.TransactionId ?? "nothing"}, but its active delivery says {expected.Item1} for {expected.Item2 ?? "nothing"}");
            }
        }

        return violations;
    }
}
