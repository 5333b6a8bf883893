using System.Globalization;
using System.Text;
using ScottPlot;

namespace TwoPhase.Cli.Bench;

/// <summary>
/// <c>bench --sweep</c> (docs/performance.md): fixed arrival rates as percentages of the closed-loop peak, each offered
/// open loop for the measured duration, giving the latency-throughput curve.
/// </summary>
public static class SweepPlan
{
    /// <summary>The default rates, in percent of the peak.</summary>
    public static IReadOnlyList<int> DefaultPercents { get; } = [10, 25, 50, 75, 90, 100, 110];

    /// <summary>The most rates one sweep runs (each is a --duration long open-loop run).</summary>
    public const int MaxRates = 20;

    /// <summary>The highest percentage of the peak a sweep offers.</summary>
    public const int MaxPercent = 500;

    /// <summary>
    /// Parses <c>--sweep-rates</c>: comma-separated whole percentages of the peak, 1 to 500, at most 20, each once;
    /// returned in ascending order. Null and an error message when the text is not that.
    /// </summary>
    public static IReadOnlyList<int>? Parse(string? text, out string? error)
    {
        error = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            return DefaultPercents;
        }

        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var percents = new List<int>(parts.Length);
        foreach (var part in parts)
        {
            var number = part.EndsWith('%') ? part[..^1] : part;
            if (!int.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out var p) || p < 1 || p > MaxPercent)
            {
                error = $"--sweep-rates: '{part}' is not a whole percentage of the peak between 1 and {MaxPercent}.";
                return null;
            }

            if (percents.Contains(p))
            {
                error = $"--sweep-rates: {p} % is given twice.";
                return null;
            }

            percents.Add(p);
        }

        if (percents.Count > MaxRates)
        {
            error = $"--sweep-rates: at most {MaxRates} rates.";
            return null;
        }

        percents.Sort();
        return percents;
    }

    /// <summary>The offered rates in orders/s for a peak; at least 1/s each.</summary>
    public static IReadOnlyList<double> Rates(double peak, IReadOnlyList<int> percents)
    {
        ArgumentNullException.ThrowIfNull(percents);
        return [.. percents.Select(p => Math.Max(1, Math.Round(peak * p / 100.0, 1)))];
    }
}

/// <summary>One point of the curve.</summary>
/// <param name="Percent">Offered rate as a percentage of the peak.</param>
/// <param name="OfferedPerSecond">Orders scheduled per second.</param>
/// <param name="AchievedPerSecond">Committed orders per second: committed over the schedule's duration, or until the last answer when that came later.</param>
/// <param name="Committed">Committed answers.</param>
/// <param name="Aborted">Aborted answers.</param>
/// <param name="Shed">Refused with 503 (admission).</param>
/// <param name="Skipped">Due while the outstanding bound was reached: not sent, counted.</param>
/// <param name="Errors">No outcome (transport, timeout, 4xx/5xx).</param>
/// <param name="P50Ms">Median latency from the intended start (coordinated omission corrected).</param>
/// <param name="P99Ms">99th percentile, corrected.</param>
/// <param name="P999Ms">99.9th percentile, corrected.</param>
/// <param name="MaxMs">Largest, corrected.</param>
/// <param name="ServiceP99Ms">99th percentile from the actual send (not corrected), to show what a closed loop would hide.</param>
public sealed record SweepPoint(
    int Percent, double OfferedPerSecond, double AchievedPerSecond, long Committed, long Aborted, long Shed, long Skipped, long Errors,
    double P50Ms, double P99Ms, double P999Ms, double MaxMs, double ServiceP99Ms)
{
    /// <summary>The point of one open-loop run at one rate.</summary>
    public static SweepPoint Of(int percent, double offered, OpenLoopResult result, TimeSpan duration)
    {
        ArgumentNullException.ThrowIfNull(result);
        var recorder = result.Latencies.Values.Single();
        var seconds = Math.Max(duration.TotalSeconds, result.Elapsed.TotalSeconds);
        return new SweepPoint(
            percent,
            offered,
            Math.Round(result.Committed / seconds, 1),
            result.Committed,
            result.Seconds.Sum(s => s.Aborted),
            result.Seconds.Sum(s => s.Shed),
            result.Seconds.Sum(s => s.Skipped),
            result.Seconds.Sum(s => s.Errors),
            Math.Round(recorder.CorrectedMs(50), 2),
            Math.Round(recorder.CorrectedMs(99), 2),
            Math.Round(recorder.CorrectedMs(99.9), 2),
            Math.Round(recorder.CorrectedMs(100), 2),
            Math.Round(recorder.ServiceMs(99), 2));
    }
}

/// <summary>The sweep's table and picture.</summary>
public static class SweepReport
{
    /// <summary>A Markdown table of the curve.</summary>
    public static string Table(double peak, IReadOnlyList<SweepPoint> points)
    {
        ArgumentNullException.ThrowIfNull(points);
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"Open-loop sweep, peak {peak:0.0} committed/s; latency from each order's intended start (coordinated omission corrected).");
        text.AppendLine();
        text.AppendLine("| % of peak | offered/s | achieved committed/s | aborted | shed | skipped | errors | p50 ms | p99 ms | p99.9 ms | max ms | p99 from send ms |");
        text.AppendLine("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        foreach (var p in points)
        {
            text.AppendLine(CultureInfo.InvariantCulture,
                $"| {p.Percent} | {p.OfferedPerSecond:0.0} | {p.AchievedPerSecond:0.0} | {p.Aborted} | {p.Shed} | {p.Skipped} | {p.Errors} | {p.P50Ms:0.0} | {p.P99Ms:0.0} | {p.P999Ms:0.0} | {p.MaxMs:0.0} | {p.ServiceP99Ms:0.0} |");
        }

        return text.ToString();
    }

    /// <summary>
    /// Writes the curve as a picture: p50, p99 and p99.9 (log scale, left) and the achieved rate (right) against the
    /// offered rate. SVG when the file name ends in .svg, else PNG.
    /// </summary>
    public static void Plot(string path, double peak, IReadOnlyList<SweepPoint> points, string caption)
    {
        ArgumentNullException.ThrowIfNull(points);
        if (points.Count == 0)
        {
            throw new ArgumentException("No points to plot.", nameof(points));
        }

        using var plot = new Plot();
        var offered = points.Select(p => p.OfferedPerSecond).ToArray();
        static double Log(double ms) => Math.Log10(Math.Max(ms, 0.1));
        foreach (var (name, values) in new[]
                 {
                     ("p50", points.Select(p => Log(p.P50Ms)).ToArray()),
                     ("p99", points.Select(p => Log(p.P99Ms)).ToArray()),
                     ("p99.9", points.Select(p => Log(p.P999Ms)).ToArray()),
                 })
        {
            var line = plot.Add.Scatter(offered, values);
            line.LegendText = $"{name} latency (ms, left)";
            line.MarkerSize = 6;
        }

        var achieved = plot.Add.Scatter(offered, points.Select(p => p.AchievedPerSecond).ToArray());
        achieved.LegendText = "achieved committed/s (right)";
        achieved.LineWidth = 2;
        achieved.MarkerShape = MarkerShape.OpenSquare;
        achieved.Color = Colors.Black;
        achieved.Axes.YAxis = plot.Axes.Right;

        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
        {
            MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
            IntegerTicksOnly = true,
            LabelFormatter = y => Math.Pow(10, y).ToString("0.#", CultureInfo.InvariantCulture),
        };
        plot.Axes.Left.Label.Text = "latency from intended start, ms (log)";
        plot.Axes.Right.Label.Text = "achieved committed orders/s";
        plot.Axes.Bottom.Label.Text = string.Create(CultureInfo.InvariantCulture, $"offered orders/s (peak {peak:0})");
        plot.Axes.Title.Label.Text = caption;
        plot.Axes.Title.Label.FontSize = 13;
        plot.Axes.SetLimitsY(bottom: 0, top: points.Max(p => p.AchievedPerSecond) * 1.1 + 1, yAxis: plot.Axes.Right);
        plot.ShowLegend(Alignment.UpperLeft);
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null)
        {
            Directory.CreateDirectory(directory);
        }

        if (path.EndsWith(".svg", StringComparison.OrdinalIgnoreCase))
        {
            plot.SaveSvg(path, 900, 540);
        }
        else
        {
            plot.SavePng(path, 900, 540);
        }
    }
}
