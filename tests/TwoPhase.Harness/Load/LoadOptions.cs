namespace TwoPhase.Harness.Load;

/// <summary>What the load generator fires.</summary>
public sealed record LoadOptions
{
    public required Uri OrderUrl { get; init; }

    public int Orders { get; init; } = 1000;

    public int Concurrency { get; init; } = 32;

    /// <summary>Seeds the order mix, so two runs with the same seed send the same orders.</summary>
    public int RandomSeed { get; init; } = 42;

    /// <summary>Prefix of client order ids and idempotency keys; unique per run so runs never collide.</summary>
    public required string RunTag { get; init; }

    public IReadOnlyList<string> PlentifulSkus { get; init; } = [.. SeedPlan.PlentifulProducts.Select(p => p.Sku)];

    public string ScarceSku { get; init; } = SeedPlan.ScarceSku;

    /// <summary>Share of orders that include the scarce SKU, so some abort for lack of stock.</summary>
    public double ScarceShare { get; init; } = 0.3;

    /// <summary>
    /// Per order; past it the answer counts as unknown. Longer than the coordinator's prepare
    /// deadline plus a decision write, so a healthy but busy system is not reported as failing.
    /// </summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);
}
