using TwoPhase.Harness.Audit;
using TwoPhase.Harness;

namespace TwoPhase.Cli.Chaos;

/// <summary>The checks chaos adds to the audit's invariants: the faults really happened, the system healed in time, nobody broke the protocol.</summary>
public static class ChaosChecks
{
    private const int MaxListed = 10;

    /// <summary>
    /// Every planned fault happened; each service was killed as often as the plan dealt it; every kind
    /// of message fault that was planned hit at least one request (a fault whose window no message crossed proves nothing).
    /// </summary>
    public static InvariantResult Faults(IReadOnlyList<PlannedFault> plan, IReadOnlyList<FaultRecord> faults, bool timedOut)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(faults);
        var problems = new List<string>();
        if (faults.Count < plan.Count)
        {
            problems.Add($"{faults.Count} of {plan.Count} faults happened{(timedOut ? " (the chaos time bound ran out)" : "")}");
        }

        problems.AddRange(KillShare.Shortfalls(plan, faults));

        foreach (var kind in plan.Where(p => p.Message is not null).Select(p => p.Message!.Value).Distinct())
        {
            var mine = faults.Where(f => f.Fault.Message == kind).ToList();
            if (mine.Count > 0 && mine.Sum(f => f.Hits ?? 0) == 0)
            {
                problems.Add($"the {mine.Count} '{kind.Label()}' message fault(s) hit no request");
            }
        }

        var kinds = string.Join(", ", Enum.GetValues<Nemesis>().Select(n => $"{plan.Count(p => p.Nemesis == n)} {n.Label()}"));
        return new InvariantResult("faults injected",
            $"{plan.Count} faults ({kinds}), each service killed its planned share, every message fault kind hit a request", problems.Count, problems);
    }

    /// <summary>
    /// What the faults left behind (unfinished or prepared when the last one healed) was finished within
    /// <paramref name="bound"/> of the heal, and once the load ended the whole system converged (nothing unfinished,
    /// nothing prepared) within <paramref name="bound"/> of the later of the heal and the load's end.
    /// </summary>
    public static InvariantResult Convergence(LeftoverResult? leftovers, ConvergenceResult result, TimeSpan bound)
    {
        ArgumentNullException.ThrowIfNull(result);
        var problems = new List<string>();
        if (leftovers is { After: null })
        {
            problems.Add($"of the {leftovers.Count} transaction(s) unfinished or prepared when the last fault healed, some were still so at the timeout, e.g. {string.Join(", ", leftovers.Remaining)}");
        }
        else if (leftovers is { After: { } a } && a > bound)
        {
            problems.Add($"the {leftovers.Count} transaction(s) left unfinished or prepared by the faults were finished {a.TotalSeconds:0.00} s after the last fault healed, later than the bound of {bound.TotalSeconds:0} s");
        }

        if (result.After is not { } after)
        {
            var last = result.Last;
            problems.Add($"not converged: {last.Unfinished} unfinished transaction(s), {last.StoragePrepared} prepared at storage, {last.DeliveryPrepared} prepared at delivery{(last.Error is null ? "" : $" ({last.Error})")}");
        }
        else if (after > bound)
        {
            problems.Add($"converged {after.TotalSeconds:0.00} s after the last fault healed and the load ended, later than the bound of {bound.TotalSeconds:0} s");
        }

        return new InvariantResult("liveness",
            $"within {bound.TotalSeconds:0} s of the last fault healing, every transaction it left unfinished or prepared is finished; " +
            $"within {bound.TotalSeconds:0} s of that and the load's end, every transaction is completed and no participant row is prepared", problems.Count, problems);
    }

    /// <summary>No service logged a protocol violation (a COMMIT for a transaction not prepared, an ABORT after a commit).</summary>
    public static InvariantResult ProtocolViolationsLogged(IEnumerable<ServiceProcess> services)
    {
        var count = 0;
        var listed = new List<string>();
        foreach (var service in services)
        {
            foreach (var line in service.ReadLog().Split('\n'))
            {
                if (line.Contains("protocol violation", StringComparison.OrdinalIgnoreCase))
                {
                    count++;
                    if (listed.Count < MaxListed)
                    {
                        listed.Add($"{service.Kind.ShortName()}: {(line.Length > 300 ? line[..300] + "..." : line)}");
                    }
                }
            }
        }

        return new InvariantResult("no protocol violation logged",
            "no service logged a refused COMMIT or ABORT (a message that contradicts its ledger)", count, listed);
    }
}
