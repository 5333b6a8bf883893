using System.Globalization;

namespace TwoPhase.Cli.Bench;

/// <summary>
/// The bench's options that combine or need more than a range: checked before anything starts, so a bad command line
/// gets one clear message and exit code 2 and runs nothing.
/// </summary>
public sealed record BenchArguments(
    bool HasPostgres, bool HasUrls, bool Sqlite, bool Overload, bool Sweep, int? PeakRate, string? SweepRates, string? Plot,
    int? Soak, int SoakRate, int SoakSample, int Coordinators, string? Alternate, int Runs, IReadOnlyList<string> Workloads)
{
    /// <summary>Most order-service replicas (the topology's own bound).</summary>
    public const int MaxCoordinators = 9;

    /// <summary>The first problem, or null when the options make sense.</summary>
    public string? Check()
    {
        var modes = new[] { (Overload, "--overload"), (Sweep, "--sweep"), (Soak is not null, "--soak"), (Coordinators > 1 || Alternate is not null, "--coordinators/--alternate") }
            .Where(m => m.Item1).Select(m => m.Item2).ToList();
        if (modes.Count > 1)
        {
            return $"Choose one of {string.Join(", ", modes)}: they are separate runs.";
        }

        var topology = Coordinators > 1 || Alternate is not null;
        if (!HasPostgres && !HasUrls && !Sqlite && !topology)
        {
            return "bench needs --postgres (start the services on it), --sqlite (start them on SQLite files) or --urls (bench running services).";
        }

        if (Sqlite && HasUrls)
        {
            return "--sqlite starts the services; it cannot be combined with --urls.";
        }

        if (!Sweep && (PeakRate is not null || SweepRates is not null || Plot is not null))
        {
            return "--peak-rate, --sweep-rates and --plot belong to --sweep.";
        }

        if (PeakRate is { } peak && (peak < 1 || peak > 100_000))
        {
            return "--peak-rate must be between 1 and 100,000 committed/s.";
        }

        if (SweepRates is not null && SweepPlan.Parse(SweepRates, out var rateError) is null)
        {
            return rateError;
        }

        if (Plot is { } plot && !plot.EndsWith(".svg", StringComparison.OrdinalIgnoreCase) && !plot.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
        {
            return "--plot must name a .svg or .png file.";
        }

        if (Soak is { } soak && (soak < 10 || soak > 86_400))
        {
            return "--soak must be between 10 and 86,400 seconds.";
        }

        if (Soak is null && (SoakRate != 100 || SoakSample != 10))
        {
            return "--soak-rate and --soak-sample belong to --soak.";
        }

        if (SoakRate < 1 || SoakRate > 100_000)
        {
            return "--soak-rate must be between 1 and 100,000 orders/s.";
        }

        if (SoakSample < 1 || SoakSample > 3600 || (Soak is { } s && SoakSample > s))
        {
            return "--soak-sample must be between 1 and 3,600 seconds and not longer than the soak.";
        }

        if (Coordinators < 1 || Coordinators > MaxCoordinators)
        {
            return $"--coordinators must be between 1 and {MaxCoordinators}.";
        }

        if (Alternate is not null)
        {
            if (Coordinators != 1)
            {
                return "--alternate names the replica counts itself; do not give --coordinators with it.";
            }

            if (ParseReplicaCounts(Alternate) is null)
            {
                return $"--alternate must be two or more distinct replica counts between 1 and {MaxCoordinators}, comma-separated (e.g. 1,3).";
            }
        }

        if (Runs < 1 || Runs > 20)
        {
            return "--runs must be between 1 and 20.";
        }

        if (Alternate is null && Runs != 3)
        {
            return "--runs belongs to --alternate.";
        }

        if (topology && (HasUrls || Sqlite))
        {
            return "--coordinators and --alternate start their own topology (PostgreSQL clusters included); not with --urls or --sqlite.";
        }

        var unknown = Workloads.Where(n => !Workload.Names.Contains(n, StringComparer.Ordinal)).ToList();
        if (unknown.Count > 0)
        {
            return $"Unknown workload(s): {string.Join(", ", unknown)}; choose from {string.Join(", ", Workload.Names)}.";
        }

        if (Workloads.Any(w => w.StartsWith("monolith", StringComparison.Ordinal)) && (!HasPostgres || Sqlite))
        {
            return "The monolith workload runs on PostgreSQL: give --postgres (and not --sqlite).";
        }

        if (Workloads.Count > 0 && (Overload || Sweep || Soak is not null || topology))
        {
            return "--workload selects the standard runs; --overload, --sweep, --soak and --coordinators run plentiful at 64 themselves.";
        }

        return null;
    }

    /// <summary>"1,3" as [1, 3]; null unless two or more distinct counts in 1..<see cref="MaxCoordinators"/>.</summary>
    public static IReadOnlyList<int>? ParseReplicaCounts(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var counts = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n < 1 || n > MaxCoordinators || counts.Contains(n))
            {
                return null;
            }

            counts.Add(n);
        }

        return counts.Count >= 2 ? counts : null;
    }
}
