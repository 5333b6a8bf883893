using System.Diagnostics;
using TwoPhase.Harness.Topology;

namespace TwoPhase.Harness.Faults;

/// <summary>What the runner acts on: a <see cref="TopologySystem"/> (<see cref="TopologyNemesisTarget"/>), or a recorder in the runner's own tests.</summary>
public interface INemesisTarget
{
    IReadOnlyList<NemesisNode> Nodes { get; }

    Task CutBothAsync(string a, string b, CancellationToken cancellationToken);

    Task LossAsync(string a, string b, int percent, CancellationToken cancellationToken);

    Task SlowAsync(string node, int kilobitsPerSecond, CancellationToken cancellationToken);

    Task HealLinksAsync(CancellationToken cancellationToken);

    Task KillAsync(string node, CancellationToken cancellationToken);

    Task RestartAsync(string node, CancellationToken cancellationToken);

    void Pause(string node);

    void Resume(string node);
}

/// <summary>The nemeses' acts on a running topology.</summary>
public sealed class TopologyNemesisTarget(TopologySystem system) : INemesisTarget
{
    private LinkFaults Links => system.Links ?? throw new InvalidOperationException("The topology runs without network namespaces: no link faults.");

    public IReadOnlyList<NemesisNode> Nodes { get; } = [.. system.Nodes.Select(NemesisNode.From)];

    public Task CutBothAsync(string a, string b, CancellationToken cancellationToken) => Links.CutBothAsync(a, b, cancellationToken);

    public Task LossAsync(string a, string b, int percent, CancellationToken cancellationToken) => Links.LossAsync(a, b, percent, cancellationToken);

    public Task SlowAsync(string node, int kilobitsPerSecond, CancellationToken cancellationToken) => Links.SlowAsync(node, kilobitsPerSecond, cancellationToken);

    public Task HealLinksAsync(CancellationToken cancellationToken) => Links.HealAsync(cancellationToken);

    public Task KillAsync(string node, CancellationToken cancellationToken) => system.KillAsync(system[node], cancellationToken);

    public Task RestartAsync(string node, CancellationToken cancellationToken) => system.RestartAsync(system[node], cancellationToken);

    public void Pause(string node) => system.Pause(system[node]);

    public void Resume(string node) => system.Resume(system[node]);
}

/// <summary>One fault as it happened; times on the run's clock.</summary>
/// <param name="Number">1-based, in schedule order.</param>
/// <param name="Event">What was planned.</param>
/// <param name="StartedOrders">How many orders the load had started when it began.</param>
/// <param name="StartedAt">When it was injected.</param>
/// <param name="HealedAt">When it was over: rules removed, process restarted and ready, SIGCONT sent.</param>
/// <param name="Concurrent">How many faults were active when it began, itself included.</param>
/// <param name="Error">Why injecting or healing it failed, if it did.</param>
public sealed record NemesisRecord(int Number, NemesisEvent Event, int StartedOrders, TimeSpan StartedAt, TimeSpan HealedAt, int Concurrent, string? Error)
{
    public TimeSpan Outage => HealedAt - StartedAt;
}

/// <summary>
/// Applies a schedule: waits until the load reaches each event's order and a slot is free (at most
/// <see cref="NemesisScheduleOptions.MaxConcurrent"/> at once, only combinations <see cref="NemesisSchedule.CanOverlap"/> allows),
/// injects it, heals it after its duration in the background, and holds the load at the next event's order until that
/// event has been injected (so every fault lands while orders are in flight). A restart that fails is tried again (3 tries).
/// </summary>
public sealed class NemesisRunner(INemesisTarget target, IReadOnlyList<NemesisEvent> schedule, LoadGate gate, Stopwatch clock, int maxConcurrent = 2)
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(10);
    private const int RestartAttempts = 3;

    private readonly Lock _lock = new();
    private readonly List<NemesisRecord> _records = [];
    private readonly List<(NemesisEvent Event, Task Healed)> _active = [];

    /// <summary>The faults done so far, in the order they healed.</summary>
    public IReadOnlyList<NemesisRecord> Records
    {
        get
        {
            lock (_lock)
            {
                return [.. _records.OrderBy(r => r.Number)];
            }
        }
    }

    /// <summary>When the last fault healed (null before any did).</summary>
    public TimeSpan? LastHealedAt
    {
        get
        {
            lock (_lock)
            {
                return _records.Count == 0 ? null : _records.Max(r => r.HealedAt);
            }
        }
    }

    /// <summary>The most faults that were active at once.</summary>
    public int PeakConcurrent
    {
        get
        {
            lock (_lock)
            {
                return _records.Count == 0 ? 0 : _records.Max(r => r.Concurrent);
            }
        }
    }

    /// <summary>Whether the time bound stopped the runner before the schedule was done.</summary>
    public bool TimedOut { get; private set; }

    /// <summary>Runs the whole schedule; returns once every fault has healed, or <paramref name="timeBound"/> has passed (then the rest is skipped).</summary>
    public async Task RunAsync(TimeSpan timeBound, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        var nodes = target.Nodes;
        try
        {
            for (var k = 0; k < schedule.Count; k++)
            {
                var e = schedule[k];
                while (gate.Started <= e.AfterOrder || !SlotFree(e, nodes))
                {
                    if (clock.Elapsed >= timeBound)
                    {
                        TimedOut = true;
                        return;
                    }

                    ForgetHealed();
                    await Task.Delay(PollInterval, cancellationToken);
                }

                var started = gate.Started;
                var startedAt = clock.Elapsed;
                int concurrent;
                var injected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                Task healed;
                lock (_lock)
                {
                    concurrent = _active.Count + 1;
                    healed = RunOneAsync(k + 1, e, started, startedAt, concurrent, injected, cancellationToken);
                    _active.Add((e, healed));
                }

                await injected.Task;
                gate.OpenThrough(k + 1 < schedule.Count ? schedule[k + 1].AfterOrder : int.MaxValue);
            }
        }
        finally
        {
            gate.OpenAll();
            Task[] pending;
            lock (_lock)
            {
                pending = [.. _active.Select(a => a.Healed)];
            }

            await Task.WhenAll(pending);
        }
    }

    private bool SlotFree(NemesisEvent next, IReadOnlyList<NemesisNode> nodes)
    {
        lock (_lock)
        {
            _active.RemoveAll(a => a.Healed.IsCompleted);
            return _active.Count < maxConcurrent && _active.All(a => NemesisSchedule.CanOverlap(a.Event, next, nodes));
        }
    }

    private void ForgetHealed()
    {
        lock (_lock)
        {
            _active.RemoveAll(a => a.Healed.IsCompleted);
        }
    }

    private async Task RunOneAsync(int number, NemesisEvent e, int started, TimeSpan startedAt, int concurrent, TaskCompletionSource injected, CancellationToken ct)
    {
        await Task.Yield();
        string? error = null;
        try
        {
            await InjectAsync(e, ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            error = $"inject: {ex.GetType().Name}: {ex.Message}";
        }
        finally
        {
            injected.TrySetResult();
        }

        try
        {
            if (error is null)
            {
                await Task.Delay(e.Duration, ct);
            }
        }
        catch (OperationCanceledException)
        {
            // Healed below all the same.
        }

        try
        {
            // Not the run's token: a fault is always healed, also after Ctrl+C.
            await HealAsync(e, CancellationToken.None);
        }
        catch (Exception ex)
        {
            error = (error is null ? "" : error + "; ") + $"heal: {ex.GetType().Name}: {ex.Message}";
        }

        lock (_lock)
        {
            _records.Add(new NemesisRecord(number, e, started, startedAt, clock.Elapsed, concurrent, error));
        }
    }

    private async Task InjectAsync(NemesisEvent e, CancellationToken ct)
    {
        switch (e.Kind)
        {
            case NemesisKind.Isolate:
                foreach (var other in target.Nodes.Where(n => n.Name != e.Nodes[0]).Select(n => n.Name).Append(LinkFaults.Harness))
                {
                    await target.CutBothAsync(e.Nodes[0], other, ct);
                }

                break;
            case NemesisKind.Split:
            case NemesisKind.Bridge:
                foreach (var a in e.HalfA)
                {
                    foreach (var b in e.HalfB)
                    {
                        await target.CutBothAsync(a, b, ct);
                    }
                }

                break;
            case NemesisKind.FlakyLink:
                await target.LossAsync(e.Nodes[0], e.Nodes[1], e.LossPercent, ct);
                break;
            case NemesisKind.SlowLink:
                await target.SlowAsync(e.Nodes[0], e.KilobitsPerSecond, ct);
                break;
            case NemesisKind.Kill:
            case NemesisKind.DatabaseKill:
                await target.KillAsync(e.Nodes[0], ct);
                break;
            case NemesisKind.Pause:
                target.Pause(e.Nodes[0]);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(e), e.Kind, null);
        }
    }

    private async Task HealAsync(NemesisEvent e, CancellationToken ct)
    {
        switch (e.Kind)
        {
            case NemesisKind.Kill:
            case NemesisKind.DatabaseKill:
                for (var attempt = 1; ; attempt++)
                {
                    try
                    {
                        await target.RestartAsync(e.Nodes[0], ct);
                        return;
                    }
                    catch (Exception) when (attempt < RestartAttempts)
                    {
                        await Task.Delay(TimeSpan.FromMilliseconds(500 * attempt), ct);
                    }
                }

            case NemesisKind.Pause:
                target.Resume(e.Nodes[0]);
                return;
            default:
                await target.HealLinksAsync(ct);
                return;
        }
    }
}
