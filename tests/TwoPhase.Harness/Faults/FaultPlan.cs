namespace TwoPhase.Harness;

/// <summary>The kinds of fault the chaos monkey injects.</summary>
public enum Nemesis
{
    /// <summary>SIGKILL of a service (its whole process tree), then a restart with the same store.</summary>
    ServiceKill,

    /// <summary><c>pg_ctl stop -m immediate</c> of a service's own PostgreSQL cluster, then a start with its data (crash recovery).</summary>
    DatabaseKill,

    /// <summary>SIGSTOP of a service for longer than the prepare deadline, then SIGCONT: a GC pause or a starved process.</summary>
    Pause,

    /// <summary>A message fault on the coordinator's link to one participant, through the fault proxy.</summary>
    MessageFault,
}

/// <summary>How many faults of each kind a run injects.</summary>
public sealed record FaultCounts(int Kills, int DatabaseKills, int Pauses, int MessageFaults)
{
    public int Total => Kills + DatabaseKills + Pauses + MessageFaults;

    public int Of(Nemesis nemesis) => nemesis switch
    {
        Nemesis.ServiceKill => Kills,
        Nemesis.DatabaseKill => DatabaseKills,
        Nemesis.Pause => Pauses,
        Nemesis.MessageFault => MessageFaults,
        _ => throw new ArgumentOutOfRangeException(nameof(nemesis), nemesis, null),
    };
}

/// <summary>One planned fault: it starts once the load has started order <see cref="AfterOrder"/> (0-based).</summary>
/// <param name="AfterOrder">Where in the load it falls.</param>
/// <param name="Nemesis">What kind of fault.</param>
/// <param name="Target">The service hit; for a database kill, the service whose cluster dies; for a message fault, the participant whose link misbehaves.</param>
/// <param name="Message">For a message fault, what happens to the messages.</param>
public sealed record PlannedFault(int AfterOrder, Nemesis Nemesis, ServiceKind Target, MessageFault? Message = null)
{
    public string Describe() => Message is { } m ? $"{Nemesis.Label()}: {m.Label()}" : Nemesis.Label();
}

/// <summary>Where in the load the faults fall, what each is and whom it hits; derived from a seed only.</summary>
public static class FaultPlan
{
    // Faults fall between these shares of the load: some orders run on a healthy system first, and the
    // last fault leaves a tail of orders on a healed system before the convergence clock stops.
    private const double FirstShare = 0.05;
    private const double LastShare = 0.90;

    private static readonly ServiceKind[] Participants = [ServiceKind.Storage, ServiceKind.Delivery];

    /// <summary>The smallest order count that leaves every fault its own order in the window.</summary>
    public static int MinOrders(int faults) => (int)Math.Ceiling(faults / (LastShare - FirstShare)) + 1;

    /// <summary>
    /// Each nemesis deals its faults round-robin over its targets (kills, database kills and pauses over the three
    /// services; message faults over the four kinds on each participant's link), so no target and no kind is
    /// spared; the whole list is then shuffled, so the kinds mix, and laid on the load stratified: the window is
    /// cut into equal slots and each fault falls at a random order within its own slot, random yet spread over the
    /// whole load, never all in one burst.
    /// </summary>
    public static IReadOnlyList<PlannedFault> Create(int orders, FaultCounts counts, Random random)
    {
        ArgumentNullException.ThrowIfNull(counts);
        ArgumentNullException.ThrowIfNull(random);
        var faults = new List<PlannedFault>(counts.Total);
        faults.AddRange(Deal(counts.Kills, ServiceKinds.All, random).Select(s => new PlannedFault(0, Nemesis.ServiceKill, s)));
        faults.AddRange(Deal(counts.DatabaseKills, ServiceKinds.All, random).Select(s => new PlannedFault(0, Nemesis.DatabaseKill, s)));
        faults.AddRange(Deal(counts.Pauses, ServiceKinds.All, random).Select(s => new PlannedFault(0, Nemesis.Pause, s)));
        var links = Participants.SelectMany(p => Enum.GetValues<MessageFault>().Select(m => (Participant: p, Message: m))).ToList();
        faults.AddRange(Deal(counts.MessageFaults, links, random).Select(l => new PlannedFault(0, Nemesis.MessageFault, l.Participant, l.Message)));
        if (faults.Count == 0)
        {
            return [];
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(orders, MinOrders(faults.Count));
        var shuffled = faults.ToArray();
        random.Shuffle(shuffled);
        var first = (int)(orders * FirstShare);
        var slot = (orders * LastShare - first) / shuffled.Length;
        var plan = new List<PlannedFault>(shuffled.Length);
        for (var k = 0; k < shuffled.Length; k++)
        {
            var from = first + (int)Math.Ceiling(k * slot);
            var to = Math.Max(from + 1, first + (int)Math.Ceiling((k + 1) * slot));
            plan.Add(shuffled[k] with { AfterOrder = random.Next(from, to) });
        }

        return plan;
    }

    /// <summary><paramref name="count"/> targets round-robin (each at least floor(count / targets)), the remainder to random ones.</summary>
    private static List<T> Deal<T>(int count, IReadOnlyList<T> targets, Random random)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var order = targets.ToArray();
        // Which targets get the remainder is random, not always the first ones.
        random.Shuffle(order);
        return Enumerable.Range(0, count).Select(i => order[i % order.Length]).ToList();
    }

    /// <summary>Short, for narrow tables: kill -9 (a service), db crash (pg_ctl stop -m immediate), pause (SIGSTOP), message (a proxy fault).</summary>
    public static string Label(this Nemesis nemesis) => nemesis switch
    {
        Nemesis.ServiceKill => "kill -9",
        Nemesis.DatabaseKill => "db crash",
        Nemesis.Pause => "pause",
        Nemesis.MessageFault => "message",
        _ => throw new ArgumentOutOfRangeException(nameof(nemesis), nemesis, null),
    };

    public static string Label(this MessageFault fault) => fault switch
    {
        MessageFault.DropRequest => "drop req",
        MessageFault.DropResponse => "drop resp",
        MessageFault.Duplicate => "duplicate",
        MessageFault.Delay => "delay",
        _ => throw new ArgumentOutOfRangeException(nameof(fault), fault, null),
    };
}
