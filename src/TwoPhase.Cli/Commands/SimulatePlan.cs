namespace TwoPhase.Cli.Commands;

/// <summary>
/// What <c>simulate</c> orders, read from the running services instead of assumed: the SKUs storage sells, in amounts
/// its stock bears, at a concurrency delivery's free couriers bear. Services started by hand have their own seed
/// (two products, five couriers), not the demo's, and orders for SKUs nobody sells only measure the rejection path.
/// </summary>
internal sealed record SimulatePlan(IReadOnlyList<string> Plentiful, string? Scarce, double ScarceShare, int Concurrency, IReadOnlyList<string> Notes)
{
    // LoadGenerator.PlanOrders: each SKU at most once per order, 1 to 3 units (2 on average).
    private const long MaxUnitsPerLine = 3;
    private const double MeanUnitsPerLine = 2;

    // The demo's share of orders that take the scarce product; less when its stock is smaller.
    private const double MaxScarceShare = 0.3;

    /// <summary>The plan, or null with the reason in <paramref name="problem"/> when nothing can be ordered.</summary>
    public static SimulatePlan? From(
        IReadOnlyList<Product> products, IReadOnlyList<Courier> couriers, int orders, int concurrency, bool completeDeliveries, out string? problem)
    {
        var notes = new List<string>();
        var sellable = products.Select(p => (p.Sku, Available: p.OnHand - p.Reserved))
            .Where(p => p.Available > 0)
            .OrderByDescending(p => p.Available).ThenBy(p => p.Sku, StringComparer.Ordinal)
            .ToList();
        if (sellable.Count == 0)
        {
            problem = "The storage service has nothing in stock to order; add products (POST /v1/products) or pass --seed-data.";
            return null;
        }

        // Plentiful: no run of this size can exhaust it, however the orders fall.
        var plentiful = sellable.Where(p => p.Available >= orders * MaxUnitsPerLine).ToList();
        if (plentiful.Count == 0)
        {
            plentiful = [sellable[0]];
            var covers = (long)(sellable[0].Available / MeanUnitsPerLine);
            notes.Add($"storage's stock covers about {covers:N0} orders of {sellable[0].Sku}; later orders abort for lack of stock (restock it or pass --seed-data)");
        }

        var rest = sellable.Except(plentiful).ToList();
        string? scarce = null;
        var share = 0.0;
        if (rest.Count > 0)
        {
            // The best-stocked of the rest, in about half the orders its stock could serve: contention, and most still commit.
            scarce = rest[0].Sku;
            share = Math.Min(MaxScarceShare, rest[0].Available / (orders * MeanUnitsPerLine * 2));
        }

        var free = couriers.Count(c => string.Equals(c.Status, "free", StringComparison.OrdinalIgnoreCase));
        if (free == 0)
        {
            problem = "The delivery service has no free courier; add couriers (POST /v1/couriers), complete deliveries, or pass --seed-data.";
            return null;
        }

        if (completeDeliveries && concurrency > free)
        {
            // Each order in flight holds a courier until its delivery is completed, right after it commits.
            notes.Add($"concurrency {concurrency} lowered to {free}: delivery has {free} free courier(s), and each order in flight holds one");
            concurrency = free;
        }
        else if (!completeDeliveries && orders > free)
        {
            notes.Add($"deliveries are not completed (--no-complete-deliveries) and {free} courier(s) are free: orders after the first {free} committed abort for want of a courier");
        }

        problem = null;
        return new SimulatePlan([.. plentiful.Select(p => p.Sku)], scarce, share, concurrency, notes);
    }
}
