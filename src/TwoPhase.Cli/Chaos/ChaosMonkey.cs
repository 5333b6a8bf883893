using System.Diagnostics;
using TwoPhase.Cli.Hosting;

namespace TwoPhase.Cli.Chaos;

/// <summary>One kill as it happened; times are from the start of the load.</summary>
/// <param name="Number">1-based.</param>
/// <param name="Service">Who was killed.</param>
/// <param name="AfterOrder">The load had started this many orders.</param>
/// <param name="KilledAt">When SIGKILL was sent.</param>
/// <param name="Down">The planned pause between the kill and the restart.</param>
/// <param name="ReadyAt">When the restarted service answered its readiness probe again.</param>
public sealed record KillRecord(int Number, ServiceKind Service, int AfterOrder, TimeSpan KilledAt, TimeSpan Down, TimeSpan ReadyAt)
{
    /// <summary>From the kill until the service served again.</summary>
    public TimeSpan Outage => ReadyAt - KilledAt;
}

/// <summary>The monkey's bounds.</summary>
public sealed record ChaosTimings
{
    /// <summary>Shortest pause between a kill and the restart.</summary>
    public TimeSpan MinDown { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Longest pause between a kill and the restart.</summary>
    public TimeSpan MaxDown { get; init; } = TimeSpan.FromMilliseconds(1500);

    /// <summary>All kills must have happened by then; the rest are skipped (and the run fails).</summary>
    public TimeSpan MaxChaos { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// New orders that may start while a service is down (besides those already in flight). Bounded so
    /// that a slow restart does not turn the whole load into aborts: most orders should meet a healed
    /// system, the point being what the kills do to the orders they hit, not how many they hit.
    /// </summary>
    public int OrdersWhileDown { get; init; } = 16;

    /// <summary>A restart that fails (say, the port is briefly taken) is tried this many times in all.</summary>
    public int RestartAttempts { get; init; } = 3;
}

/// <summary>
/// Walks the kill plan against a running system: waits until the load reaches each planned order,
/// sends SIGKILL to the planned service, waits a random bounded pause, restarts it and waits until it
/// is ready. One service is down at a time. While it is down a bounded number of new orders may start;
/// once it is ready again the load runs on to the next planned kill.
/// </summary>
public sealed class ChaosMonkey(SystemUnderTest system, IReadOnlyList<PlannedKill> plan, LoadGate gate, ChaosTimings timings, Random random, Stopwatch clock)
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(10);

    /// <summary>The kills done so far, in order; complete once <see cref="RunAsync"/> returns.</summary>
    public List<KillRecord> Kills { get; } = [];

    /// <summary>Whether the time bound stopped the monkey before the plan was done.</summary>
    public bool TimedOut { get; private set; }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            for (var k = 0; k < plan.Count; k++)
            {
                var kill = plan[k];
                // AfterOrder is 0-based: the planned order itself has started once Started exceeds it.
                while (gate.Started <= kill.AfterOrder)
                {
                    if (clock.Elapsed >= timings.MaxChaos)
                    {
                        TimedOut = true;
                        return;
                    }

                    await Task.Delay(PollInterval, cancellationToken);
                }

                var killedAt = clock.Elapsed;
                var after = gate.Started;
                await system.KillAsync(kill.Service);
                var next = k + 1 < plan.Count ? plan[k + 1].AfterOrder : int.MaxValue;
                gate.OpenThrough(Math.Min(next, after - 1 + timings.OrdersWhileDown));

                var down = timings.MinDown + ((timings.MaxDown - timings.MinDown) * random.NextDouble());
                await Task.Delay(down, cancellationToken);
                await RestartAsync(kill.Service, cancellationToken);
                gate.OpenThrough(next);
                Kills.Add(new KillRecord(k + 1, kill.Service, after, killedAt, down, clock.Elapsed));
            }
        }
        finally
        {
            // Never leave the load parked at a gate, whatever ended the monkey.
            gate.OpenAll();
        }
    }

    private async Task RestartAsync(ServiceKind service, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await system.RestartAsync(service, cancellationToken);
                return;
            }
            catch (ServiceStartException) when (attempt < timings.RestartAttempts)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(500 * attempt), cancellationToken);
            }
        }
    }
}
