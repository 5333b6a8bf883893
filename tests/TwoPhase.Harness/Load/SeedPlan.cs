namespace TwoPhase.Harness.Load;

/// <summary>
/// What the demo seeds before a burst: plenty of one product, little of another and fewer couriers
/// than orders, so the run has contention and both kinds of abort (no stock, no courier).
/// </summary>
public sealed record SeedPlan(long PlentifulStock, long ScarceStock, int Couriers)
{
    public const string ScarceSku = "scarce-gadget";

    /// <summary>SKUs stocked far beyond what the burst can take; several, so an order can have distinct lines.</summary>
    public static IReadOnlyList<(string Sku, string Name)> PlentifulProducts { get; } =
        [("widget", "Widget"), ("gizmo", "Gizmo"), ("sprocket", "Sprocket")];

    /// <summary>Scaled to the order count: 40 scarce units and 300 couriers for 1,000 orders.</summary>
    public static SeedPlan ForOrders(int orders)
    {
        // Every order could take up to 3 lines of 3 units of the plentiful SKU: never run out of it.
        var plentiful = Math.Max(100L, orders * 9L);
        var scarce = Math.Max(5L, orders / 25L);
        var couriers = Math.Max(1, orders * 3 / 10);
        return new SeedPlan(plentiful, scarce, couriers);
    }
}
