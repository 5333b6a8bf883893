using System.Globalization;
using System.Text;
using HdrHistogram;

namespace TwoPhase.Cli.Bench;

/// <summary>
/// <c>bench --overload</c> (docs/performance.md): the peak measured closed-loop, then open-loop arrivals at the peak,
/// at a multiple of it, and at the peak again; the verdict is how much of the peak survives the overload and how soon
/// the peak is back after it.
/// </summary>
public sealed record OverloadPlan(double Factor, TimeSpan Before, TimeSpan Overload, TimeSpan After)
{
    public const string BeforePhase = "before";
    public const string OverloadPhase = "overload";
    public const string AfterPhase = "after";

    /// <summary>The plan: 3x the peak for 30 s, then the peak for 15 s; 10 s at the peak before, to compare.</summary>
    public static OverloadPlan Standard(double factor) => new(factor, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(15));

    /// <summary>What a window must reach to count as back at the peak.</summary>
    public const double RecoveredShare = 0.9;

    /// <summary>The pass line of the issue: committed/s during the overload as a share of the peak.</summary>
    public const double DuringShareTarget = 0.7;

    /// <summary>The pass line of the issue: seconds after the overload until a window is back at the peak.</summary>
    public const int RecoverySecondsTarget = 10;

    public IReadOnlyList<RatePhase> Phases(double peak) =>
    [
        new(BeforePhase, peak, Before),
        new(OverloadPhase, peak * Factor, Overload),
        new(AfterPhase, peak, After),
    ];

    /// <summary>
    /// Orders in flight at most: all that the overload rate can have outstanding when each waits its whole request
    /// timeout, so the generator does not throttle itself into a closed loop; capped for the client's sockets.
    /// </summary>
    public static int MaxOutstanding(double peak, double factor, TimeSpan requestTimeout) =>
        (int)Math.Clamp(peak * factor * requestTimeout.TotalSeconds, 1024, 16_384);
}

/// <summary>The verdict of one overload run.</summary>
/// <param name="Peak">Committed/s of the closed-loop measurement.</param>
/// <param name="During">Mean committed/s over the overload phase's one-second windows.</param>
/// <param name="RecoverySeconds">Seconds from the end of the overload until the first window at >= 90 % of the peak; null if none came.</param>
public sealed record OverloadVerdict(double Peak, double During, int? RecoverySeconds)
{
    public double DuringShare => Peak > 0 ? During / Peak : 0;

    public bool Passed => DuringShare >= OverloadPlan.DuringShareTarget && RecoverySeconds is { } s && s <= OverloadPlan.RecoverySecondsTarget;

    public static OverloadVerdict Of(OpenLoopResult result, double peak)
    {
        ArgumentNullException.ThrowIfNull(result);
        var overload = result.Seconds.Where(s => s.Phase == OverloadPlan.OverloadPhase).ToList();
        var during = overload.Count == 0 ? 0 : overload.Average(s => (double)s.Committed);
        var end = overload.Count == 0 ? 0 : overload[^1].Second + 1;
        var back = result.Seconds.FirstOrDefault(s => s.Second >= end && s.Phase != "drain" && s.Committed >= peak * OverloadPlan.RecoveredShare);
        return new OverloadVerdict(peak, during, back is null ? null : back.Second - end + 1);
    }

    public string Line() => string.Create(CultureInfo.InvariantCulture,
        $"overload verdict: during the overload {During:0} committed/s = {DuringShare:P0} of the peak {Peak:0}/s (target >= {OverloadPlan.DuringShareTarget:P0}); " +
        $"back at >= {OverloadPlan.RecoveredShare:P0} of the peak {(RecoverySeconds is { } s ? $"{s} s after it" : "never")} (target <= {OverloadPlan.RecoverySecondsTarget} s): {(Passed ? "PASS" : "FAIL")}");
}

/// <summary>The overload run's tables.</summary>
public static class OverloadReport
{
    /// <summary>One row per second: the schedule's phase, orders started and skipped (generator bound), answers by kind.</summary>
    public static string Seconds(OpenLoopResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var text = new StringBuilder();
        text.AppendLine("| s | phase | started | skipped | committed | aborted | shed (503) | errors |");
        text.AppendLine("|--:|---|--:|--:|--:|--:|--:|--:|");
        foreach (var s in result.Seconds)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"| {s.Second} | {s.Phase} | {s.Started} | {s.Skipped} | {s.Committed} | {s.Aborted} | {s.Shed} | {s.Errors} |");
        }

        return text.ToString();
    }

    /// <summary>Per phase (by when answers came): totals and mean committed/s, and latency from the intended start.</summary>
    public static string Phases(OpenLoopResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var text = new StringBuilder();
        text.AppendLine("| phase | offered/s | committed/s | aborted | shed (503) | errors | skipped | p50 ms | p99 ms | max ms (from intended start) |");
        text.AppendLine("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        foreach (var phase in result.Phases)
        {
            var rows = result.Seconds.Where(s => s.Phase == phase.Name).ToList();
            var latency = result.LatencyMicrosByPhase[phase.Name];
            double Ms(double p) => latency.TotalCount == 0 ? 0 : latency.GetValueAtPercentile(p) / 1000.0;
            text.AppendLine(CultureInfo.InvariantCulture,
                $"| {phase.Name} | {phase.OrdersPerSecond:0} | {(rows.Count == 0 ? 0 : rows.Average(s => (double)s.Committed)):0} | {rows.Sum(s => s.Aborted)} | {rows.Sum(s => s.Shed)} | {rows.Sum(s => s.Errors)} | {rows.Sum(s => s.Skipped)} | {Ms(50):0} | {Ms(99):0} | {(latency.TotalCount == 0 ? 0 : latency.GetMaxValue() / 1000.0):0} |");
        }

        return text.ToString();
    }
}
