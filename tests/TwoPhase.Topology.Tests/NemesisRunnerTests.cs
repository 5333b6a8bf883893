using System.Collections.Concurrent;
using System.Diagnostics;

namespace TwoPhase.Topology.Tests;

/// <summary>The runner against a recorder: what it does to a topology, in what order, how many at once.</summary>
public sealed class NemesisRunnerTests
{
    private static readonly IReadOnlyList<NemesisNode> Nodes = NemesisNode.Layout(3, 2, 2);

    [Fact]
    public async Task Runs_every_fault_heals_each_never_more_than_two_at_once_nor_two_network_faults()
    {
        var schedule = NemesisSchedule.Create(Nodes, new NemesisScheduleOptions
        {
            Faults = 24, Orders = 200, MinDuration = TimeSpan.FromMilliseconds(20), MaxDuration = TimeSpan.FromMilliseconds(80),
        }, seed: 3);
        var target = new Recorder();
        var gate = new LoadGate(schedule[0].AfterOrder);
        var clock = Stopwatch.StartNew();
        var runner = new NemesisRunner(target, schedule, gate, clock);
        var run = runner.RunAsync(TimeSpan.FromSeconds(60), CancellationToken.None);
        // A load of 200 orders that passes the gate one by one.
        var load = Task.Run(async () =>
        {
            for (var i = 0; i < 200; i++)
            {
                await gate.EnterAsync(i, CancellationToken.None);
                await Task.Delay(1);
            }
        });
        await Task.WhenAll(run, load).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.False(runner.TimedOut);
        Assert.Equal(schedule.Count, runner.Records.Count);
        Assert.All(runner.Records, r => Assert.Null(r.Error));
        Assert.InRange(target.PeakActive, 1, 2);
        Assert.InRange(runner.PeakConcurrent, 1, 2);
        Assert.Equal(0, target.Active);
        Assert.Equal(0, target.LinkFaultsActive);
        Assert.Empty(target.Paused);
        Assert.Empty(target.Down);
        Assert.All(runner.Records, r => Assert.True(r.StartedOrders > r.Event.AfterOrder));
        Assert.Equal(runner.Records.Max(r => r.HealedAt), runner.LastHealedAt);
        // Isolate cut the node from every other node and from the harness.
        var isolate = schedule.First(e => e.Kind == NemesisKind.Isolate);
        foreach (var other in Nodes.Where(n => n.Name != isolate.Nodes[0]).Select(n => n.Name).Append(LinkFaults.Harness))
        {
            Assert.Contains((isolate.Nodes[0], other), target.Cuts);
        }
    }

    [Fact]
    public async Task A_restart_that_fails_twice_is_tried_again_and_one_that_always_fails_is_reported()
    {
        var kill = new NemesisEvent(NemesisKind.Kill, ["storage-1"], "kill -9 storage-1", TimeSpan.FromMilliseconds(10)) { AfterOrder = 0 };
        var target = new Recorder { RestartFailures = 2 };
        var gate = new LoadGate(0);
        await gate.EnterAsync(0, CancellationToken.None);
        var runner = new NemesisRunner(target, [kill], gate, Stopwatch.StartNew());
        await runner.RunAsync(TimeSpan.FromSeconds(30), CancellationToken.None);
        Assert.Null(Assert.Single(runner.Records).Error);
        Assert.Equal(3, target.Restarts);

        var always = new Recorder { RestartFailures = 100 };
        var gate2 = new LoadGate(0);
        await gate2.EnterAsync(0, CancellationToken.None);
        var runner2 = new NemesisRunner(always, [kill], gate2, Stopwatch.StartNew());
        await runner2.RunAsync(TimeSpan.FromSeconds(30), CancellationToken.None);
        Assert.Contains("heal", Assert.Single(runner2.Records).Error);
    }

    private sealed class Recorder : INemesisTarget
    {
        private readonly Lock _lock = new();
        private int _active;

        public IReadOnlyList<NemesisNode> Nodes => NemesisRunnerTests.Nodes;

        public ConcurrentBag<(string A, string B)> Cuts { get; } = [];

        public ConcurrentDictionary<string, bool> Paused { get; } = new();

        public ConcurrentDictionary<string, bool> Down { get; } = new();

        public int LinkFaultsActive { get; private set; }

        public int Active => _active;

        public int PeakActive { get; private set; }

        public int RestartFailures { get; init; }

        public int Restarts { get; private set; }

        public Task CutBothAsync(string a, string b, CancellationToken cancellationToken)
        {
            Cuts.Add((a, b));
            return LinkAsync();
        }

        public Task LossAsync(string a, string b, int percent, CancellationToken cancellationToken) => LinkAsync();

        public Task SlowAsync(string node, int kilobitsPerSecond, CancellationToken cancellationToken) => LinkAsync();

        public Task HealLinksAsync(CancellationToken cancellationToken)
        {
            lock (_lock)
            {
                Assert.True(LinkFaultsActive == 1, "a heal without exactly one network fault active");
                LinkFaultsActive = 0;
                _active--;
            }

            return Task.CompletedTask;
        }

        public Task KillAsync(string node, CancellationToken cancellationToken)
        {
            Assert.True(Down.TryAdd(node, true), $"{node} killed twice");
            Begin();
            return Task.CompletedTask;
        }

        public Task RestartAsync(string node, CancellationToken cancellationToken)
        {
            lock (_lock)
            {
                Restarts++;
                if (Restarts <= RestartFailures)
                {
                    throw new TopologyException($"{node} did not come up");
                }
            }

            Assert.True(Down.TryRemove(node, out _));
            End();
            return Task.CompletedTask;
        }

        public void Pause(string node)
        {
            Assert.True(Paused.TryAdd(node, true));
            Begin();
        }

        public void Resume(string node)
        {
            Assert.True(Paused.TryRemove(node, out _));
            End();
        }

        private Task LinkAsync()
        {
            lock (_lock)
            {
                // One network fault may make several calls (every cut of a split); count the fault once.
                if (LinkFaultsActive == 0)
                {
                    LinkFaultsActive = 1;
                    _active++;
                    PeakActive = Math.Max(PeakActive, _active);
                }
            }

            return Task.CompletedTask;
        }

        private void Begin()
        {
            lock (_lock)
            {
                _active++;
                PeakActive = Math.Max(PeakActive, _active);
            }
        }

        private void End()
        {
            lock (_lock)
            {
                _active--;
            }
        }
    }
}
