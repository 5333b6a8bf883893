using System.Globalization;

namespace TwoPhase.Cli.Bench;

/// <summary>One working-set sample of every watched process, in MiB (null: not readable, e.g. the process is gone).</summary>
public sealed record MemorySample(double AtSeconds, IReadOnlyDictionary<string, double?> MiB);

/// <summary>What the samples of one process say: first, last, max, and the least-squares slope in MiB per minute.</summary>
public sealed record MemoryTrend(string Source, double? FirstMiB, double? LastMiB, double? MaxMiB, double? SlopeMiBPerMinute, int Samples)
{
    /// <summary>The trend of one source over the samples (those where it was readable).</summary>
    public static MemoryTrend Of(string source, IReadOnlyList<MemorySample> samples)
    {
        ArgumentNullException.ThrowIfNull(samples);
        var points = samples.Where(s => s.MiB.GetValueOrDefault(source) is not null).Select(s => (X: s.AtSeconds, Y: s.MiB[source]!.Value)).ToList();
        if (points.Count == 0)
        {
            return new MemoryTrend(source, null, null, null, null, 0);
        }

        double? slope = null;
        if (points.Count >= 2)
        {
            var meanX = points.Average(p => p.X);
            var meanY = points.Average(p => p.Y);
            var sxx = points.Sum(p => (p.X - meanX) * (p.X - meanX));
            slope = sxx > 0 ? Math.Round(points.Sum(p => (p.X - meanX) * (p.Y - meanY)) / sxx * 60, 3) : null;
        }

        return new MemoryTrend(source, points[0].Y, points[^1].Y, points.Max(p => p.Y), slope, points.Count);
    }
}

/// <summary>
/// Working sets (VmRSS from /proc/PID/status) of the services, sampled on a fixed period while a load runs. Bounded:
/// at most <see cref="MaxSamples"/> samples are kept.
/// </summary>
public sealed class MemorySampler
{
    /// <summary>Samples kept at most (a 10-minute soak every 10 s is 61).</summary>
    public const int MaxSamples = 10_000;

    private readonly Dictionary<string, int?> _processes = new(StringComparer.Ordinal);
    private readonly List<MemorySample> _samples = [];
    private readonly DateTime _origin = DateTime.UtcNow;

    /// <summary>Watches one process by name; a null id is reported as not readable.</summary>
    public MemorySampler Add(string source, int? processId)
    {
        _processes[source] = processId;
        return this;
    }

    public IReadOnlyList<string> Sources => [.. _processes.Keys];

    public IReadOnlyList<MemorySample> Samples
    {
        get
        {
            lock (_samples)
            {
                return [.. _samples];
            }
        }
    }

    /// <summary>Takes one sample now and keeps it.</summary>
    public MemorySample Sample()
    {
        var sample = new MemorySample(
            Math.Round((DateTime.UtcNow - _origin).TotalSeconds, 1),
            _processes.ToDictionary(p => p.Key, p => p.Value is { } pid ? WorkingSetMiB(pid) : null, StringComparer.Ordinal));
        lock (_samples)
        {
            if (_samples.Count < MaxSamples)
            {
                _samples.Add(sample);
            }
        }

        return sample;
    }

    /// <summary>Samples every <paramref name="period"/> until <paramref name="cancellationToken"/> is cancelled (returns normally then).</summary>
    public async Task RunAsync(TimeSpan period, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(period);
        try
        {
            Sample();
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                Sample();
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>VmRSS of a process in MiB; null when it cannot be read.</summary>
    public static double? WorkingSetMiB(int processId)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{processId.ToString(CultureInfo.InvariantCulture)}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    var kb = line["VmRSS:".Length..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];
                    return Math.Round(long.Parse(kb, CultureInfo.InvariantCulture) / 1024.0, 1);
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
        }

        return null;
    }
}
