using System.Collections.Concurrent;
using System.Diagnostics;
using HdrHistogram;

namespace TwoPhase.Cli.Bench;

/// <summary>How one order ended, as the bench counts it.</summary>
public enum BenchOutcome
{
    Committed,
    Aborted,

    /// <summary>Decided but not yet answered as final (the coordinator's retry is waiting); neither a success nor an error.</summary>
    Pending,

    /// <summary>No outcome: transport failure, 4xx/5xx, an exception. Every one fails the run.</summary>
    Error,

    /// <summary>
    /// 503 with Retry-After: the coordinator refused to start the order (admission, load shedding). An open-loop
    /// overload run counts it; in a closed-loop run it is an error (the workloads stay below the admission limit).
    /// </summary>
    Shed,
}

/// <summary>One order's result: its outcome, the transaction to complete the delivery of, and what went wrong.</summary>
public sealed record Attempt(BenchOutcome Outcome, string? TransactionId, string? Error = null);

/// <summary>What a closed-loop run measured in its window, plus the errors of the whole run.</summary>
public sealed record WindowResult(
    int Concurrency,
    TimeSpan Window,
    long Committed,
    long Aborted,
    long Pending,
    long Errors,
    long Completions,
    long CompletionErrors,
    long OrdersTotal,
    IReadOnlyList<string> ErrorSamples,
    HistogramBase LatencyMicros,
    IReadOnlyDictionary<string, double?> CpuBefore,
    IReadOnlyDictionary<string, double?> CpuAfter)
{
    public double CommittedPerSecond => Committed / Window.TotalSeconds;

    public double AbortedPerSecond => Aborted / Window.TotalSeconds;

    public double Percentile(double p) => LatencyMicros.TotalCount == 0 ? 0 : LatencyMicros.GetValueAtPercentile(p) / 1000.0;

    public double MaxMs => LatencyMicros.TotalCount == 0 ? 0 : LatencyMicros.GetMaxValue() / 1000.0;

    /// <summary>CPU seconds one source spent per 1,000 committed orders in the window; null if unreadable or nothing committed.</summary>
    public double? CpuPerThousand(string source) =>
        CpuBefore.GetValueOrDefault(source) is { } before && CpuAfter.GetValueOrDefault(source) is { } after && Committed > 0
            ? (after - before) * 1000.0 / Committed
            : null;
}

/// <summary>
/// Closed-loop load: <c>concurrency</c> workers, each placing its next order as soon as the last one is
/// answered, for a warm-up and then a measured window. Only answers that arrive inside the window count
/// towards rates and latencies; errors count whenever they happen. CPU is sampled at the window's edges.
/// </summary>
/// <remarks>
/// After a commit the worker starts completing that delivery (freeing its courier) without waiting for it,
/// and waits for it only before starting the next completion. So the completion is not in the order's
/// latency, and a worker holds at most two couriers: one for the order in flight, one being completed.
/// </remarks>
public static class ClosedLoop
{
    // Latencies above an hour are recorded as an hour; the histogram must have a bound.
    private const long MaxLatencyMicros = 3_600_000_000;
    private const int MaxErrorSamples = 5;

    /// <param name="concurrency">Workers, each with one order in flight.</param>
    /// <param name="warmup">Time run but not measured (JIT, pools, caches).</param>
    /// <param name="duration">The measured window.</param>
    /// <param name="cpu">Sampled at the start and the end of the window.</param>
    /// <param name="place">Places one order for (worker, sequence number); exceptions become errors.</param>
    /// <param name="complete">Completes a committed order's delivery, true when done; null: nothing to complete.</param>
    /// <param name="cancellationToken">Stops everything (Ctrl+C).</param>
    public static async Task<WindowResult> RunAsync(
        int concurrency,
        TimeSpan warmup,
        TimeSpan duration,
        CpuMeter cpu,
        Func<int, long, CancellationToken, Task<Attempt>> place,
        Func<Attempt, CancellationToken, Task<bool>>? complete,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(cpu);
        ArgumentNullException.ThrowIfNull(place);
        var histogram = new LongConcurrentHistogram(1, MaxLatencyMicros, 3);
        var samples = new ConcurrentQueue<string>();
        long committed = 0, aborted = 0, pending = 0, errors = 0, completions = 0, completionErrors = 0, total = 0;
        long windowStart = long.MaxValue, windowEnd = long.MaxValue;
        var stop = 0;

        async Task WorkerAsync(int worker)
        {
            Task? completing = null;
            for (long sequence = 0; Volatile.Read(ref stop) == 0; sequence++)
            {
                var started = Stopwatch.GetTimestamp();
                Attempt attempt;
                try
                {
                    attempt = await place(worker, sequence, cancellationToken);
                }
                catch (Exception e) when (!cancellationToken.IsCancellationRequested)
                {
                    attempt = new Attempt(BenchOutcome.Error, null, $"{e.GetType().Name}: {e.Message}");
                }

                var finished = Stopwatch.GetTimestamp();
                Interlocked.Increment(ref total);
                if (attempt.Outcome is BenchOutcome.Error or BenchOutcome.Shed)
                {
                    Interlocked.Increment(ref errors);
                    Sample(attempt.Error ?? "error");
                }
                else if (finished >= Volatile.Read(ref windowStart) && finished < Volatile.Read(ref windowEnd))
                {
                    histogram.RecordValue(Math.Clamp((long)Stopwatch.GetElapsedTime(started, finished).TotalMicroseconds, 1, MaxLatencyMicros));
                    _ = attempt.Outcome switch
                    {
                        BenchOutcome.Committed => Interlocked.Increment(ref committed),
                        BenchOutcome.Aborted => Interlocked.Increment(ref aborted),
                        _ => Interlocked.Increment(ref pending),
                    };
                }

                if (attempt.Outcome == BenchOutcome.Committed && complete is not null)
                {
                    if (completing is not null)
                    {
                        await completing;
                    }

                    completing = CompleteAsync(attempt);
                }
            }

            if (completing is not null)
            {
                await completing;
            }
        }

        async Task CompleteAsync(Attempt attempt)
        {
            bool done;
            try
            {
                done = await complete!(attempt, cancellationToken);
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                Sample($"complete: {e.GetType().Name}: {e.Message}");
                done = false;
            }

            Interlocked.Increment(ref completions);
            if (!done)
            {
                Interlocked.Increment(ref completionErrors);
            }
        }

        void Sample(string text)
        {
            if (samples.Count < MaxErrorSamples)
            {
                samples.Enqueue(text);
            }
        }

        var workers = Enumerable.Range(0, concurrency).Select(w => Task.Run(() => WorkerAsync(w), CancellationToken.None)).ToList();
        IReadOnlyDictionary<string, double?> before, after;
        long startedAt, endedAt;
        try
        {
            await Task.Delay(warmup, cancellationToken);
            before = cpu.Sample();
            startedAt = Stopwatch.GetTimestamp();
            Volatile.Write(ref windowStart, startedAt);
            await Task.Delay(duration, cancellationToken);
            endedAt = Stopwatch.GetTimestamp();
            Volatile.Write(ref windowEnd, endedAt);
            after = cpu.Sample();
        }
        finally
        {
            // Workers finish the order in hand (and their last completion), then stop.
            Volatile.Write(ref stop, 1);
            await Task.WhenAll(workers);
        }

        return new WindowResult(
            concurrency,
            Stopwatch.GetElapsedTime(startedAt, endedAt),
            committed,
            aborted,
            pending,
            errors,
            completions,
            completionErrors,
            total,
            [.. samples],
            histogram,
            before,
            after);
    }
}
