using System.Diagnostics;
using HdrHistogram;

namespace TwoPhase.Cli.Bench;

/// <summary>
/// Latencies of an open-loop run, two ways: from each order's intended start on the schedule (corrected for coordinated
/// omission: a generator or client that fell behind does not hide the wait, the order counts from when it was due) and
/// from when it was actually sent (the service time only, what a closed-loop bench shows). The gap between the two is
/// the queueing the schedule saw.
/// </summary>
public sealed class LatencyRecorder
{
    /// <summary>Latencies above an hour are recorded as an hour; the histogram must have a bound.</summary>
    public const long MaxLatencyMicros = 3_600_000_000;

    /// <summary>From the intended start to the answer, in microseconds (coordinated omission corrected).</summary>
    public HistogramBase Corrected { get; } = new LongConcurrentHistogram(1, MaxLatencyMicros, 3);

    /// <summary>From the send to the answer, in microseconds (not corrected).</summary>
    public HistogramBase Service { get; } = new LongConcurrentHistogram(1, MaxLatencyMicros, 3);

    /// <summary>Records one answered order; all three are <see cref="Stopwatch.GetTimestamp"/> values.</summary>
    public void Record(long intended, long sent, long answered)
    {
        Corrected.RecordValue(Micros(intended, answered));
        Service.RecordValue(Micros(Math.Max(intended, sent), answered));
    }

    /// <summary>Percentile <paramref name="p"/> of the corrected latencies in milliseconds; 0 when nothing was recorded.</summary>
    public double CorrectedMs(double p) => Ms(Corrected, p);

    /// <summary>Percentile <paramref name="p"/> of the service times in milliseconds; 0 when nothing was recorded.</summary>
    public double ServiceMs(double p) => Ms(Service, p);

    private static double Ms(HistogramBase histogram, double p) =>
        histogram.TotalCount == 0 ? 0 : (p >= 100 ? histogram.GetMaxValue() : histogram.GetValueAtPercentile(p)) / 1000.0;

    private static long Micros(long from, long to) =>
        Math.Clamp((long)Stopwatch.GetElapsedTime(from, to).TotalMicroseconds, 1, MaxLatencyMicros);
}
