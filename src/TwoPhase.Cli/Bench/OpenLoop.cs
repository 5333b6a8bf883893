using System.Collections.Concurrent;
using System.Diagnostics;
using HdrHistogram;

namespace TwoPhase.Cli.Bench;

/// <summary>One stretch of an open-loop run: orders start at a fixed rate for a while, whatever the answers do.</summary>
/// <param name="Name">Shown in the table: before, overload, after.</param>
/// <param name="OrdersPerSecond">The arrival rate.</param>
/// <param name="Duration">How long orders keep arriving at that rate.</param>
public sealed record RatePhase(string Name, double OrdersPerSecond, TimeSpan Duration);

/// <summary>One second of an open-loop run. Started and skipped count by intended start; the outcomes by when the answer came.</summary>
public sealed record SecondCounts(int Second, string Phase, long Started, long Skipped, long Committed, long Aborted, long Shed, long Errors);

/// <summary>What an open-loop run measured.</summary>
/// <param name="Phases">The schedule it ran.</param>
/// <param name="Seconds">Every second from the first arrival until the last answer (bounded by the request timeout).</param>
/// <param name="LatencyMicrosByPhase">
/// Per phase (by intended start), committed and aborted orders only, from each order's intended start time to its answer:
/// corrected for coordinated omission, so a generator that fell behind does not hide the wait.
/// </param>
/// <param name="Completions">Delivery completions run for committed orders.</param>
/// <param name="CompletionErrors">Completions that failed.</param>
/// <param name="ErrorSamples">A few errors, for the report.</param>
public sealed record OpenLoopResult(
    IReadOnlyList<RatePhase> Phases,
    IReadOnlyList<SecondCounts> Seconds,
    IReadOnlyDictionary<string, HistogramBase> LatencyMicrosByPhase,
    long Completions,
    long CompletionErrors,
    IReadOnlyList<string> ErrorSamples)
{
    /// <summary>Per phase: corrected and uncorrected latencies (see <see cref="LatencyRecorder"/>).</summary>
    public IReadOnlyDictionary<string, LatencyRecorder> Latencies { get; init; } = new Dictionary<string, LatencyRecorder>();

    /// <summary>From the first intended start to the last answer.</summary>
    public TimeSpan Elapsed { get; init; }

    /// <summary>Committed answers over the whole run (drain included).</summary>
    public long Committed => Seconds.Sum(s => s.Committed);

    /// <summary>The phase that covers second <paramref name="second"/> of the schedule; the last one for the drain after it.</summary>
    public static string PhaseAt(IReadOnlyList<RatePhase> phases, double second)
    {
        ArgumentNullException.ThrowIfNull(phases);
        var end = 0.0;
        foreach (var phase in phases)
        {
            end += phase.Duration.TotalSeconds;
            if (second < end)
            {
                return phase.Name;
            }
        }

        return phases[^1].Name;
    }
}

/// <summary>
/// Open-loop load: orders start on a schedule (a fixed rate per phase), not when the previous one is answered, so
/// an overloaded system meets the load its clients would really send instead of slowing the generator down with it.
/// Bounded: at most <c>maxOutstanding</c> orders (with their delivery completions) at once, and each order's own time
/// is bounded by the place function; an order due while the bound is reached is skipped and counted, not queued.
/// Reusable for a latency-versus-rate sweep: one phase per rate, latencies from the intended start.
/// </summary>
public static class OpenLoop
{
    private const int MaxErrorSamples = 5;

    // Seconds of table kept after the schedule for answers still arriving; each order's own timeout is far shorter.
    private const int DrainSeconds = 120;

    /// <param name="phases">The schedule, in order.</param>
    /// <param name="maxOutstanding">Orders in flight at most (each counted until its delivery completion is done).</param>
    /// <param name="place">Places order number n (0-based over the whole run); exceptions become errors.</param>
    /// <param name="complete">Completes a committed order's delivery (frees its courier); null: nothing to complete.</param>
    /// <param name="cancellationToken">Stops everything (Ctrl+C).</param>
    public static async Task<OpenLoopResult> RunAsync(
        IReadOnlyList<RatePhase> phases,
        int maxOutstanding,
        Func<long, CancellationToken, Task<Attempt>> place,
        Func<Attempt, CancellationToken, Task<bool>>? complete,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(phases);
        ArgumentNullException.ThrowIfNull(place);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxOutstanding, 1);
        if (phases.Count == 0 || phases.Any(p => p.OrdersPerSecond <= 0 || p.Duration <= TimeSpan.Zero))
        {
            throw new ArgumentException("Every phase needs a positive rate and duration.", nameof(phases));
        }

        var scheduled = (int)Math.Ceiling(phases.Sum(p => p.Duration.TotalSeconds));
        var slots = scheduled + DrainSeconds;
        var started = new long[slots];
        var skipped = new long[slots];
        var committed = new long[slots];
        var aborted = new long[slots];
        var shed = new long[slots];
        var errors = new long[slots];
        var recorders = phases.Select(p => p.Name).Distinct(StringComparer.Ordinal)
            .ToDictionary(n => n, _ => new LatencyRecorder(), StringComparer.Ordinal);
        var samples = new ConcurrentQueue<string>();
        long completions = 0, completionErrors = 0, outstanding = 0, lastSecond = 0, lastAnswer = 0;
        var inFlight = new ConcurrentDictionary<long, Task>();
        var origin = Stopwatch.GetTimestamp();

        int SlotOf(long timestamp) => (int)Math.Clamp(Stopwatch.GetElapsedTime(origin, timestamp).TotalSeconds, 0, slots - 1);

        void Sample(string text)
        {
            if (samples.Count < MaxErrorSamples)
            {
                samples.Enqueue(text);
            }
        }

        async Task OneAsync(long sequence, long intended, LatencyRecorder recorder)
        {
            var sent = Stopwatch.GetTimestamp();
            Attempt attempt;
            try
            {
                attempt = await place(sequence, cancellationToken);
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                attempt = new Attempt(BenchOutcome.Error, null, $"{e.GetType().Name}: {e.Message}");
            }

            var answered = Stopwatch.GetTimestamp();
            var slot = SlotOf(answered);
            InterlockedMax(ref lastSecond, slot);
            InterlockedMax(ref lastAnswer, answered - origin);
            switch (attempt.Outcome)
            {
                case BenchOutcome.Committed:
                    Interlocked.Increment(ref committed[slot]);
                    break;
                case BenchOutcome.Aborted:
                    Interlocked.Increment(ref aborted[slot]);
                    break;
                case BenchOutcome.Shed:
                    Interlocked.Increment(ref shed[slot]);
                    break;
                default:
                    Interlocked.Increment(ref errors[slot]);
                    Sample(attempt.Error ?? attempt.Outcome.ToString());
                    break;
            }

            if (attempt.Outcome is BenchOutcome.Committed or BenchOutcome.Aborted)
            {
                recorder.Record(intended, sent, answered);
            }

            if (attempt.Outcome == BenchOutcome.Committed && complete is not null)
            {
                try
                {
                    if (!await complete(attempt, cancellationToken))
                    {
                        Interlocked.Increment(ref completionErrors);
                    }
                }
                catch (Exception e) when (!cancellationToken.IsCancellationRequested)
                {
                    Interlocked.Increment(ref completionErrors);
                    Sample($"complete: {e.GetType().Name}: {e.Message}");
                }

                Interlocked.Increment(ref completions);
            }
        }

        long next = 0;
        var phaseStart = 0.0;
        try
        {
            foreach (var phase in phases)
            {
                var count = (long)Math.Round(phase.OrdersPerSecond * phase.Duration.TotalSeconds);
                var recorder = recorders[phase.Name];
                for (long k = 0; k < count; k++)
                {
                    // The intended start on the schedule: the generator may be late, the latency still counts from here.
                    var offset = phaseStart + (k / phase.OrdersPerSecond);
                    var intended = origin + (long)(offset * Stopwatch.Frequency);
                    var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), intended);
                    if (wait > TimeSpan.FromMilliseconds(1))
                    {
                        await Task.Delay(wait, cancellationToken);
                    }

                    var slot = SlotOf(intended);
                    if (Interlocked.Read(ref outstanding) >= maxOutstanding)
                    {
                        Interlocked.Increment(ref skipped[slot]);
                        continue;
                    }

                    Interlocked.Increment(ref outstanding);
                    Interlocked.Increment(ref started[slot]);
                    var sequence = next++;
                    // On the thread pool: the schedule must not wait for a request to be built and sent.
                    var task = Task.Run(() => OneAsync(sequence, intended, recorder), CancellationToken.None);
                    inFlight[sequence] = task;
                    _ = task.ContinueWith(
                        _ =>
                        {
                            inFlight.TryRemove(sequence, out Task? _);
                            Interlocked.Decrement(ref outstanding);
                        },
                        CancellationToken.None,
                        TaskContinuationOptions.ExecuteSynchronously,
                        TaskScheduler.Default);
                }

                phaseStart += phase.Duration.TotalSeconds;
            }
        }
        finally
        {
            // Every order is bounded by its own timeout; wait for the stragglers so their answers count.
            await Task.WhenAll(inFlight.Values.ToArray());
        }

        var rows = new List<SecondCounts>();
        var last = Math.Max(scheduled - 1, (int)Interlocked.Read(ref lastSecond));
        for (var s = 0; s <= last; s++)
        {
            rows.Add(new SecondCounts(s, s < scheduled ? OpenLoopResult.PhaseAt(phases, s) : "drain", started[s], skipped[s], committed[s], aborted[s], shed[s], errors[s]));
        }

        return new OpenLoopResult(
            phases, rows, recorders.ToDictionary(r => r.Key, HistogramBase (r) => r.Value.Corrected, StringComparer.Ordinal), completions, completionErrors, [.. samples])
        {
            Latencies = recorders,
            Elapsed = TimeSpan.FromSeconds(Interlocked.Read(ref lastAnswer) / (double)Stopwatch.Frequency),
        };
    }

    private static void InterlockedMax(ref long target, long value)
    {
        var current = Interlocked.Read(ref target);
        while (value > current)
        {
            var seen = Interlocked.CompareExchange(ref target, value, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }
}
