using System.Diagnostics;

namespace TwoPhase.Harness;

/// <summary>One fault as it happened; times are from the start of the load.</summary>
/// <param name="Number">1-based.</param>
/// <param name="Fault">What was planned.</param>
/// <param name="AfterOrder">The load had started this many orders.</param>
/// <param name="StartedAt">When the fault began (SIGKILL, immediate stop, SIGSTOP, the proxy armed).</param>
/// <param name="Planned">How long it was meant to last: the pause before a restart, the SIGSTOP, the proxy's window.</param>
/// <param name="HealedAt">When it was over: the service ready again, the cluster accepting connections, SIGCONT sent, the proxy delivering every message again.</param>
/// <param name="Hits">For a message fault, the requests it hit (a batch is one request).</param>
public sealed record FaultRecord(int Number, PlannedFault Fault, int AfterOrder, TimeSpan StartedAt, TimeSpan Planned, TimeSpan HealedAt, int? Hits = null)
{
    /// <summary>From the start of the fault until it healed.</summary>
    public TimeSpan Outage => HealedAt - StartedAt;
}

/// <summary>The monkey's bounds.</summary>
public sealed record ChaosTimings
{
    /// <summary>Shortest pause between a kill (of a service or a database) and the restart.</summary>
    public TimeSpan MinDown { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Longest pause between a kill and the restart.</summary>
    public TimeSpan MaxDown { get; init; } = TimeSpan.FromMilliseconds(1500);

    /// <summary>Shortest SIGSTOP; longer than the prepare deadline (2 s in chaos), so the stalled side misses it.</summary>
    public TimeSpan MinPause { get; init; } = TimeSpan.FromMilliseconds(2500);

    public TimeSpan MaxPause { get; init; } = TimeSpan.FromMilliseconds(4000);

    /// <summary>A message fault is armed for a random window between these.</summary>
    public TimeSpan MinWindow { get; init; } = TimeSpan.FromMilliseconds(500);

    public TimeSpan MaxWindow { get; init; } = TimeSpan.FromMilliseconds(2000);

    /// <summary>A message fault hits at most a random 1 to this many requests within its window.</summary>
    public int MaxRequestsPerMessageFault { get; init; } = 8;

    /// <summary>A delayed message arrives this long after it was sent: past the prepare deadline, plus up to 1.5 s.</summary>
    public TimeSpan MinMessageDelay { get; init; } = TimeSpan.FromMilliseconds(2500);

    public TimeSpan MaxMessageDelay { get; init; } = TimeSpan.FromMilliseconds(4000);

    /// <summary>All faults must have happened by then; the rest are skipped (and the run fails).</summary>
    public TimeSpan MaxChaos { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// New orders that may start while a fault lasts (besides those already in flight). Bounded so that a slow
    /// restart does not turn the whole load into aborts: most orders should meet a healed system, the point being
    /// what the faults do to the orders they hit, not how many they hit.
    /// </summary>
    public int OrdersWhileDown { get; init; } = 16;

    /// <summary>A restart that fails (say, the port is briefly taken) is tried this many times in all.</summary>
    public int RestartAttempts { get; init; } = 3;
}

/// <summary>What the monkey can hit: the services, their own PostgreSQL clusters (none on SQLite), the proxies on the coordinator's links.</summary>
public sealed record ChaosTargets(ReferenceSystem System, IReadOnlyDictionary<ServiceKind, PostgresCluster> Clusters);

/// <summary>
/// Walks the fault plan against a running system: waits until the load reaches each planned order, injects the
/// fault, waits until it has healed, and goes on. One fault at a time, so each finding can be laid at one fault's
/// door. While a fault lasts a bounded number of new orders may start; once it has healed the load runs on to the
/// next planned fault.
/// </summary>
public sealed class ChaosMonkey(ChaosTargets targets, IReadOnlyList<PlannedFault> plan, LoadGate gate, ChaosTimings timings, Random random, Stopwatch clock)
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(10);

    // A message fault's window plus its longest delay plus the proxy's forward bound: the heal comes well before.
    private static readonly TimeSpan HealBound = TimeSpan.FromSeconds(60);

    /// <summary>The faults done so far, in order; complete once <see cref="RunAsync"/> returns.</summary>
    public List<FaultRecord> Faults { get; } = [];

    /// <summary>Whether the time bound stopped the monkey before the plan was done.</summary>
    public bool TimedOut { get; private set; }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            for (var k = 0; k < plan.Count; k++)
            {
                var fault = plan[k];
                // AfterOrder is 0-based: the planned order itself has started once Started exceeds it.
                while (gate.Started <= fault.AfterOrder)
                {
                    if (clock.Elapsed >= timings.MaxChaos)
                    {
                        TimedOut = true;
                        return;
                    }

                    await Task.Delay(PollInterval, cancellationToken);
                }

                var startedAt = clock.Elapsed;
                var after = gate.Started;
                var next = k + 1 < plan.Count ? plan[k + 1].AfterOrder : int.MaxValue;
                var (planned, hits) = await InjectAsync(fault, () => gate.OpenThrough(Math.Min(next, after - 1 + timings.OrdersWhileDown)), cancellationToken);
                gate.OpenThrough(next);
                Faults.Add(new FaultRecord(k + 1, fault, after, startedAt, planned, clock.Elapsed, hits));
            }
        }
        finally
        {
            // Never leave the load parked at a gate, whatever ended the monkey.
            gate.OpenAll();
        }
    }

    /// <summary>Injects one fault and returns once it has healed: its planned length and, for a message fault, the requests it hit.</summary>
    private async Task<(TimeSpan Planned, int? Hits)> InjectAsync(PlannedFault fault, Action injected, CancellationToken ct)
    {
        switch (fault.Nemesis)
        {
            case Nemesis.ServiceKill:
            {
                await targets.System.KillAsync(fault.Target);
                injected();
                var down = Between(timings.MinDown, timings.MaxDown);
                await Task.Delay(down, ct);
                await RestartAsync(fault.Target, ct);
                return (down, null);
            }

            case Nemesis.DatabaseKill:
            {
                var cluster = targets.Clusters.GetValueOrDefault(fault.Target)
                    ?? throw new InvalidOperationException($"A database kill was planned for {fault.Target.ShortName()}, which has no cluster of its own.");
                await cluster.StopImmediateAsync(ct);
                injected();
                var down = Between(timings.MinDown, timings.MaxDown);
                try
                {
                    await Task.Delay(down, ct);
                }
                finally
                {
                    // Also when interrupted: the services' stores must be there for the cleanup and the audit.
                    await cluster.StartAsync(CancellationToken.None);
                }

                return (down, null);
            }

            case Nemesis.Pause:
            {
                targets.System.Pause(fault.Target);
                injected();
                var pause = Between(timings.MinPause, timings.MaxPause);
                try
                {
                    await Task.Delay(pause, ct);
                }
                finally
                {
                    targets.System.Resume(fault.Target);
                }

                return (pause, null);
            }

            case Nemesis.MessageFault:
            {
                var proxy = targets.System.Proxy(fault.Target);
                var window = Between(timings.MinWindow, timings.MaxWindow);
                var delay = Between(timings.MinMessageDelay, timings.MaxMessageDelay);
                var armed = proxy.Arm(fault.Message!.Value, random.Next(1, timings.MaxRequestsPerMessageFault + 1), window, delay);
                injected();
                await armed.Healed.WaitAsync(HealBound, ct);
                return (window, armed.Hits);
            }

            default:
                throw new ArgumentOutOfRangeException(nameof(fault), fault.Nemesis, null);
        }
    }

    private TimeSpan Between(TimeSpan min, TimeSpan max) => min + ((max - min) * random.NextDouble());

    private async Task RestartAsync(ServiceKind service, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await targets.System.RestartAsync(service, cancellationToken);
                return;
            }
            catch (ServiceStartException) when (attempt < timings.RestartAttempts)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(500 * attempt), cancellationToken);
            }
        }
    }
}
