using TwoPhase.Cli.Hosting;

namespace TwoPhase.Cli.Chaos;

/// <summary>One planned kill: it fires once the load has started order <see cref="AfterOrder"/> (0-based).</summary>
public sealed record PlannedKill(int AfterOrder, ServiceKind Service);

/// <summary>Where in the load the kills fall and which service each one hits; derived from a seed only.</summary>
public static class KillPlan
{
    // Kills fall between these shares of the load: some orders run on a healthy system first, and the
    // last restart leaves a tail of orders on a healed system before the convergence clock stops.
    private const double FirstShare = 0.05;
    private const double LastShare = 0.90;

    /// <summary>The smallest order count that leaves every kill its own order in the window.</summary>
    public static int MinOrders(int kills) => (int)Math.Ceiling(kills / (LastShare - FirstShare)) + 1;

    /// <summary>
    /// Stratified: the window is cut into <paramref name="kills"/> equal slots and each kill falls at a
    /// random order within its slot, so kills are random yet spread over the whole load (never all in
    /// one burst). Services are dealt round-robin (each gets at least floor(kills / 3)) and then
    /// shuffled, so no service is spared and the sequence is still random.
    /// </summary>
    public static IReadOnlyList<PlannedKill> Create(int orders, int kills, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        ArgumentOutOfRangeException.ThrowIfNegative(kills);
        if (kills == 0)
        {
            return [];
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(orders, MinOrders(kills));
        var first = (int)(orders * FirstShare);
        var slot = (orders * LastShare - first) / kills;
        var services = Enumerable.Range(0, kills).Select(i => ServiceKinds.All[i % ServiceKinds.All.Count]).ToArray();
        random.Shuffle(services);
        var plan = new List<PlannedKill>(kills);
        for (var k = 0; k < kills; k++)
        {
            var from = first + (int)Math.Ceiling(k * slot);
            var to = Math.Max(from + 1, first + (int)Math.Ceiling((k + 1) * slot));
            plan.Add(new PlannedKill(random.Next(from, to), services[k]));
        }

        return plan;
    }
}
