using System.Diagnostics;
using Xunit;

namespace TwoPhase.EndToEnd.Tests.Harness;

/// <summary>
/// docs/design.md §2's invariants, judged by the harness's one <see cref="Auditor"/> on a snapshot read through the public
/// APIs (admin listings included) once the system is quiet.
/// </summary>
public static class Invariants
{
    public static readonly TimeSpan DefaultQuietTimeout = TimeSpan.FromSeconds(30);

    // Every violation listed, not a sample: a failing test should show all of them.
    private static readonly Auditor Judge = new() { MaxViolationsListed = int.MaxValue };

    /// <summary>The system's state as the APIs show it; the test's client carries the secret the admin listings need.</summary>
    public static Task<SystemSnapshot> SnapshotAsync(Api api) =>
        new ServiceSnapshotReader(api.Http, api.Endpoints, secret: null) { ReadAdminListings = true }.ReadAsync(CancellationToken.None);

    /// <summary>
    /// Waits (bounded, polling) until the system is quiet, then asserts every invariant on a fresh snapshot.
    /// Returns that snapshot for the test's own assertions.
    /// </summary>
    public static async Task<SystemSnapshot> AssertConvergedAsync(TestSystem system, TimeSpan? within = null)
    {
        var timeout = within ?? DefaultQuietTimeout;
        var clock = Stopwatch.StartNew();
        SystemSnapshot? snapshot = null;
        string? lastError = null;
        while (clock.Elapsed < timeout)
        {
            try
            {
                snapshot = await SnapshotAsync(system.Api);
                if (snapshot.IsQuiet)
                {
                    break;
                }
            }
            catch (Exception e) when (e is HttpRequestException or ApiException)
            {
                // A service still restarting; ask again.
                lastError = e.Message;
                snapshot = null;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100));
        }

        system.Log(snapshot?.IsQuiet == true ? $"quiet after {clock.Elapsed.TotalSeconds:0.0} s" : $"NOT quiet after {timeout.TotalSeconds:0} s");
        if (snapshot is null)
        {
            Assert.Fail($"The services did not answer within {timeout.TotalSeconds:0} s: {lastError}\n{system.Tails()}");
        }

        // Check a fresh snapshot, not the one the loop liked: everything must still hold a moment later.
        snapshot = await SnapshotAsync(system.Api);
        var violations = Check(snapshot);
        if (violations.Count > 0)
        {
            Assert.Fail($"{violations.Count} invariant violation(s) after waiting up to {timeout.TotalSeconds:0} s for the system to be quiet:\n  "
                + string.Join("\n  ", violations.Take(50)) + "\n" + system.Tails());
        }

        return snapshot;
    }

    /// <summary>Every violation in <paramref name="s"/>, in words ("invariant: what"); empty when all invariants hold.</summary>
    public static List<string> Check(SystemSnapshot s) =>
        Judge.Check(s).Results.SelectMany(r => r.Violations.Select(v => $"{r.Name}: {v}")).ToList();
}
