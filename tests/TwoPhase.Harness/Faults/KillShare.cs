namespace TwoPhase.Harness;

/// <summary>Whether every service took the kills the plan dealt it.</summary>
public static class KillShare
{
    /// <summary>
    /// One line per service killed fewer times than the plan dealt it. The plan deals kills round-robin, so with N
    /// kills a service gets N/3 rounded down or up; comparing with its own share (not a fixed fraction of N) is what
    /// lets every N pass when every service was hit as planned.
    /// </summary>
    public static IReadOnlyList<string> Shortfalls(IReadOnlyList<PlannedFault> plan, IReadOnlyList<FaultRecord> faults)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(faults);
        var problems = new List<string>();
        foreach (var kind in ServiceKinds.All)
        {
            var planned = plan.Count(p => p.Nemesis == Nemesis.ServiceKill && p.Target == kind);
            var count = faults.Count(f => f.Fault.Nemesis == Nemesis.ServiceKill && f.Fault.Target == kind);
            if (count < planned)
            {
                problems.Add($"{kind.ShortName()} was killed {count} times, fewer than the {planned} the plan dealt it");
            }
        }

        return problems;
    }
}
