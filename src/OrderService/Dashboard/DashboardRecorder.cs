using System.Diagnostics.Metrics;
using TwoPhase.Protocol;

namespace OrderService.Dashboard;

/// <summary>Percentiles of one latency series over the window, in milliseconds; null when nothing was measured.</summary>
public sealed record LatencySummary(string Series, long Count, double? P50, double? P90, double? P99, double? Max);

/// <summary>The live figures: per second for the last minutes, and percentiles over the last minute.</summary>
public sealed record DashboardFigures(
    long StartedAtMs,
    long CommittedTotal,
    long AbortedTotal,
    long[] Seconds,
    int[] Committed,
    int[] Aborted,
    IReadOnlyDictionary<string, long> AbortReasons,
    IReadOnlyList<LatencySummary> Latency);

/// <summary>
/// Keeps the dashboard's rolling figures in memory: it listens to this service's own <see cref="TwoPhaseMetrics"/>
/// instruments in process (a <see cref="MeterListener"/>), so the protocol records each fact once and both
/// Prometheus and the dashboard see it. Bounded: one slot per second for <see cref="WindowSeconds"/> seconds,
/// latencies as fixed log-scale histograms. Recording takes a short lock and allocates nothing.
/// </summary>
public sealed class DashboardRecorder : IDisposable
{
    public const int WindowSeconds = 300;
    public const int PercentileSeconds = 60;

    // Log-scale buckets from 0.1 ms, each 20% wider than the last: 72 buckets reach past 50 s; a percentile is
    // reported as its bucket's upper bound, so it errs by at most 20% and never under-reports.
    private const int Buckets = 72;
    private const double FirstBoundMs = 0.1;
    private const double Growth = 1.2;

    private static readonly string[] SeriesNames = ["total", "prepare", "decide", "phase2"];
    private static readonly string[] ReasonNames = ["refused", "no_answer", "deadline", "abandoned", "unknown"];

    private readonly Lock _gate = new();
    private readonly Slot[] _slots = new Slot[WindowSeconds];
    private readonly MeterListener _listener = new();
    private readonly TimeProvider _time;
    private readonly long _startedAtMs;
    private long _committedTotal;
    private long _abortedTotal;

    public DashboardRecorder(TwoPhaseMetrics metrics, TimeProvider time)
    {
        _time = time;
        _startedAtMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        for (var i = 0; i < _slots.Length; i++)
        {
            _slots[i] = new Slot();
        }

        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter, metrics.Meter) && instrument.Name is "twophase.transactions.committed" or "twophase.transactions.aborted"
                or "twophase.transaction.duration" or "twophase.phase.duration")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => OnCount(instrument.Name, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => OnDuration(instrument.Name, value, tags));
        _listener.Start();
    }

    private void OnCount(string name, long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var committed = name == "twophase.transactions.committed";
        var reason = committed ? -1 : Array.IndexOf(ReasonNames, Tag(tags, "reason") ?? "unknown");
        lock (_gate)
        {
            var slot = Current();
            if (committed)
            {
                slot.Committed += (int)value;
                _committedTotal += value;
            }
            else
            {
                slot.Aborted += (int)value;
                slot.Reasons[reason < 0 ? ReasonNames.Length - 1 : reason] += (int)value;
                _abortedTotal += value;
            }
        }
    }

    private void OnDuration(string name, double seconds, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var series = name == "twophase.transaction.duration" ? 0 : Tag(tags, "phase") switch
        {
            "prepare" => 1,
            "decide" => 2,
            _ => 3,
        };
        var ms = seconds * 1000;
        var bucket = ms <= FirstBoundMs ? 0 : Math.Min(Buckets - 1, (int)Math.Ceiling(Math.Log(ms / FirstBoundMs, Growth)));
        lock (_gate)
        {
            Current().Latency[(series * Buckets) + bucket]++;
        }
    }

    /// <summary>A consistent copy of the window, oldest second first.</summary>
    public DashboardFigures Snapshot()
    {
        var now = NowSecond();
        var seconds = new long[WindowSeconds];
        var committed = new int[WindowSeconds];
        var aborted = new int[WindowSeconds];
        var reasons = new long[ReasonNames.Length];
        var latency = new long[SeriesNames.Length * Buckets];
        long committedTotal, abortedTotal;
        lock (_gate)
        {
            committedTotal = _committedTotal;
            abortedTotal = _abortedTotal;
            for (var i = 0; i < WindowSeconds; i++)
            {
                var second = now - WindowSeconds + 1 + i;
                seconds[i] = second;
                var slot = _slots[second % WindowSeconds];
                if (slot.Second != second)
                {
                    continue;
                }

                committed[i] = slot.Committed;
                aborted[i] = slot.Aborted;
                if (second > now - PercentileSeconds)
                {
                    for (var r = 0; r < reasons.Length; r++)
                    {
                        reasons[r] += slot.Reasons[r];
                    }

                    for (var b = 0; b < latency.Length; b++)
                    {
                        latency[b] += slot.Latency[b];
                    }
                }
            }
        }

        var byReason = new Dictionary<string, long>();
        for (var r = 0; r < reasons.Length; r++)
        {
            if (reasons[r] > 0)
            {
                byReason[ReasonNames[r]] = reasons[r];
            }
        }

        var summaries = SeriesNames.Select((name, s) => Summarize(name, latency.AsSpan(s * Buckets, Buckets))).ToList();
        return new DashboardFigures(_startedAtMs, committedTotal, abortedTotal, seconds, committed, aborted, byReason, summaries);
    }

    public void Dispose() => _listener.Dispose();

    private static LatencySummary Summarize(string name, ReadOnlySpan<long> histogram)
    {
        long count = 0;
        var max = -1;
        for (var b = 0; b < histogram.Length; b++)
        {
            count += histogram[b];
            if (histogram[b] > 0)
            {
                max = b;
            }
        }

        if (count == 0)
        {
            return new LatencySummary(name, 0, null, null, null, null);
        }

        return new LatencySummary(name, count, Quantile(histogram, count, 0.50), Quantile(histogram, count, 0.90), Quantile(histogram, count, 0.99), UpperBound(max));
    }

    private static double Quantile(ReadOnlySpan<long> histogram, long count, double q)
    {
        var rank = (long)Math.Ceiling(q * count);
        long seen = 0;
        for (var b = 0; b < histogram.Length; b++)
        {
            seen += histogram[b];
            if (seen >= rank)
            {
                return UpperBound(b);
            }
        }

        return UpperBound(histogram.Length - 1);
    }

    private static double UpperBound(int bucket) => Math.Round(FirstBoundMs * Math.Pow(Growth, bucket), 2);

    private static string? Tag(ReadOnlySpan<KeyValuePair<string, object?>> tags, string key)
    {
        foreach (var tag in tags)
        {
            if (tag.Key == key)
            {
                return tag.Value as string;
            }
        }

        return null;
    }

    private long NowSecond() => _time.GetUtcNow().ToUnixTimeSeconds();

    /// <summary>The slot of the current second, emptied first if it still holds a second from a lap ago. Under the lock.</summary>
    private Slot Current()
    {
        var second = NowSecond();
        var slot = _slots[second % WindowSeconds];
        if (slot.Second != second)
        {
            slot.Reset(second);
        }

        return slot;
    }

    private sealed class Slot
    {
        public long Second { get; private set; } = -1;

        public int Committed { get; set; }

        public int Aborted { get; set; }

        public int[] Reasons { get; } = new int[ReasonNames.Length];

        public int[] Latency { get; } = new int[SeriesNames.Length * Buckets];

        public void Reset(long second)
        {
            Second = second;
            Committed = 0;
            Aborted = 0;
            Array.Clear(Reasons);
            Array.Clear(Latency);
        }
    }
}
