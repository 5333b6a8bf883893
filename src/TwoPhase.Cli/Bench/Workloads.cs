namespace TwoPhase.Cli.Bench;

/// <summary>The order mixes the bench drives.</summary>
public enum WorkloadKind
{
    /// <summary>1-2 lines over many well-stocked SKUs: no stock contention, every order should commit.</summary>
    Plentiful,

    /// <summary>Every order takes one unit of the same SKU: all prepares contend on one row.</summary>
    HotSku,

    /// <summary>Every other order asks for a SKU with no stock, so storage votes no and the order aborts.</summary>
    AbortHeavy,

    /// <summary>Plentiful orders as one local transaction in one PostgreSQL database, in process: the monolith ceiling (<see cref="Monolith"/>).</summary>
    Monolith,
}

/// <summary>One measured run: an order mix at a fixed closed-loop concurrency.</summary>
public sealed record Workload(WorkloadKind Kind, int Concurrency)
{
    /// <summary>The fixed set the issue asks for, in the order they run.</summary>
    public static IReadOnlyList<Workload> Standard { get; } =
    [
        new(WorkloadKind.Plentiful, 1),
        new(WorkloadKind.Plentiful, 16),
        new(WorkloadKind.Plentiful, 64),
        new(WorkloadKind.HotSku, 64),
        new(WorkloadKind.AbortHeavy, 64),
    ];

    /// <summary>The monolith ceiling at the plentiful concurrencies, run after the standard set when there is --postgres.</summary>
    public static IReadOnlyList<Workload> Monoliths { get; } =
    [
        new(WorkloadKind.Monolith, 1),
        new(WorkloadKind.Monolith, 16),
        new(WorkloadKind.Monolith, 64),
    ];

    /// <summary>Every name <c>--workload</c> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } =
        [.. Standard.Concat(Monoliths).Select(w => w.Name).Distinct(), .. Standard.Concat(Monoliths).Where(w => w.Kind is WorkloadKind.Plentiful or WorkloadKind.Monolith).Select(w => $"{w.Name}:{w.Concurrency}")];

    /// <summary>The name in the table and the JSON: plentiful, hot-sku, abort-heavy.</summary>
    public string Name => NameOf(Kind);

    /// <summary>Whether a <c>--workload</c> filter selects this one: <c>plentiful</c> (every concurrency) or <c>plentiful:64</c>.</summary>
    public bool Matches(string filter) =>
        filter == Name || filter == $"{Name}:{Concurrency.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

    /// <summary>Couriers to seed: each worker holds at most two (one order in flight, the previous delivery being completed); a little slack on top.</summary>
    public int Couriers => (Concurrency * 2) + 8;

    public static string NameOf(WorkloadKind kind) => kind switch
    {
        WorkloadKind.Plentiful => "plentiful",
        WorkloadKind.HotSku => "hot-sku",
        WorkloadKind.AbortHeavy => "abort-heavy",
        WorkloadKind.Monolith => "monolith",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };
}

/// <summary>
/// The SKUs one bench run creates, prefixed with the run's tag so a bench against running services never
/// touches (or is disturbed by) their other products, and the orders drawn from them.
/// </summary>
public sealed class BenchCatalog(string tag)
{
    /// <summary>SKUs the plentiful orders spread over: enough that two orders rarely want the same row at once.</summary>
    public const int PlentifulSkuCount = 50;

    /// <summary>Far more than any run can sell (1,000 orders/s x 20 s x 2 lines x 3 units is 120,000), far below the API's cap of 10^9.</summary>
    public const long LargeStock = 10_000_000;

    public IReadOnlyList<string> PlentifulSkus { get; } = [.. Enumerable.Range(0, PlentifulSkuCount).Select(i => $"{tag}-p{i:D2}")];

    public string HotSku { get; } = $"{tag}-hot";

    /// <summary>Exists with zero stock: known to the order service's catalog, refused by storage.</summary>
    public string EmptySku { get; } = $"{tag}-empty";

    /// <summary>Every product with its starting stock.</summary>
    public IEnumerable<(string Sku, long Stock)> Products =>
        PlentifulSkus.Select(s => (s, LargeStock)).Append((HotSku, LargeStock)).Append((EmptySku, 0L));

    /// <summary>
    /// The lines of a worker's <paramref name="sequence"/>-th order. Abort-heavy alternates per worker (offset by
    /// the worker's index), so exactly half the orders, not half on average, ask for the empty SKU.
    /// </summary>
    public IReadOnlyList<OrderLine> NextOrder(WorkloadKind kind, Random random, int worker, long sequence)
    {
        ArgumentNullException.ThrowIfNull(random);
        return kind switch
        {
            WorkloadKind.Plentiful or WorkloadKind.Monolith => PlentifulLines(random),
            WorkloadKind.HotSku => [new OrderLine(HotSku, 1)],
            WorkloadKind.AbortHeavy => (sequence + worker) % 2 == 0 ? [new OrderLine(EmptySku, 1)] : PlentifulLines(random),
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
        };
    }

    private List<OrderLine> PlentifulLines(Random random)
    {
        // 1-2 distinct SKUs (storage refuses an order naming one SKU twice), 1-3 units each.
        var first = random.Next(PlentifulSkus.Count);
        var lines = new List<OrderLine>(2) { new(PlentifulSkus[first], random.Next(1, 4)) };
        if (random.Next(2) == 1)
        {
            var second = (first + 1 + random.Next(PlentifulSkus.Count - 1)) % PlentifulSkus.Count;
            lines.Add(new OrderLine(PlentifulSkus[second], random.Next(1, 4)));
        }

        return lines;
    }
}
