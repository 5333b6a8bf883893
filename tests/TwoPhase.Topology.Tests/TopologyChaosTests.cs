using TwoPhase.Cli.Chaos;
using Xunit.Abstractions;

namespace TwoPhase.Topology.Tests;

/// <summary>
/// A short chaos --topology run through the command's own run class: 3 coordinators, 2 storage, 2 delivery, a
/// PostgreSQL cluster and an HAProxy per service, each in its own network namespace; 600 orders and 16 faults, two of
/// every nemesis. Needs root (network namespaces); fails with the reason otherwise.
/// </summary>
public sealed class TopologyChaosTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_short_run_under_every_nemesis_audits_clean_and_converges_within_the_lease_plus_10_s()
    {
        var preflight = TopologyChaosRun.Preflight();
        Assert.True(preflight is null, $"The topology test cannot run here: {preflight}");
        var settings = new TopologyChaosSettings
        {
            Orders = 600,
            Faults = 16,
            Concurrency = 16,
            Seed = 14,
            MaxChaos = TimeSpan.FromMinutes(4),
        };
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(8));
        var result = await TopologyChaosRun.RunAsync(settings, line => output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {line}"), null, timeout.Token);

        foreach (var f in result.Faults)
        {
            output.WriteLine($"#{f.Number} {f.Event.Kind} {f.Event.Description} at {f.StartedAt.TotalSeconds:0.0}s healed {f.HealedAt.TotalSeconds:0.0}s {f.Error}");
        }

        foreach (var i in result.Audit.Results)
        {
            output.WriteLine($"{(i.Passed ? "PASS" : "FAIL")} {i.Name}: {i.ViolationCount} {string.Join(" | ", i.Violations.Take(5))}");
        }

        Assert.Equal(settings.Orders, result.Load.Final.Count);
        foreach (var kind in Enum.GetValues<NemesisKind>())
        {
            Assert.True(result.Faults.Any(f => f.Event.Kind == kind && f.Error is null), $"no {kind} fault ran cleanly");
        }

        Assert.All(result.Faults, f => Assert.Null(f.Error));
        Assert.False(result.ChaosTimedOut);
        Assert.NotNull(result.Converged.After);
        Assert.True(result.Converged.After <= settings.ConvergeBound, $"converged {result.Converged.After} after the last heal, bound {settings.ConvergeBound}");
        Assert.True(result.Leftovers is { After: { } l } && l <= settings.ConvergeBound, $"what the faults left was not finished within {settings.ConvergeBound}");
        // Some orders went through the faults and committed: a run where nothing committed proves nothing.
        Assert.Contains(result.Load.Final, a => a.Outcome == TwoPhase.Harness.Audit.AnswerOutcome.Committed);
        var failed = result.Audit.Results.Where(r => !r.Passed).Select(r => $"{r.Name}: {string.Join("; ", r.Violations.Take(5))}").ToList();
        Assert.True(failed.Count == 0, "audit failed: " + string.Join("\n", failed));
    }
}
