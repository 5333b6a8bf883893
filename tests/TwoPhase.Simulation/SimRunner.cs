using System.Diagnostics;

namespace TwoPhase.Simulation;

/// <summary>What a range of seeds gave.</summary>
public sealed record SimSummary(int From, int Count, BrokenVariant Variant, int Passed, IReadOnlyList<SimResult> Failures, long Steps, long Transactions, TimeSpan Elapsed)
{
    public double HistoriesPerSecond => Count / Math.Max(Elapsed.TotalSeconds, 1e-9);
}

/// <summary>Runs ranges of seeds, each history on one thread of its own; histories share nothing.</summary>
public static class SimRunner
{
    /// <summary>
    /// Run seeds <paramref name="from"/> to <paramref name="from"/> + <paramref name="count"/> - 1. Failures are run
    /// again with the trace on (the same seed is the same history), and kept in seed order.
    /// </summary>
    public static SimSummary Run(int from, int count, BrokenVariant variant = BrokenVariant.None, int? parallelism = null, Action<int>? progress = null, CancellationToken cancellationToken = default)
    {
        var stopwatch = Stopwatch.StartNew();
        var failures = new List<SimResult>();
        long steps = 0, transactions = 0;
        var passed = 0;
        var done = 0;
        var gate = new Lock();
        Parallel.For(
            0,
            count,
            new ParallelOptions { MaxDegreeOfParallelism = parallelism ?? Environment.ProcessorCount, CancellationToken = cancellationToken },
            i =>
            {
                var result = World.Run(from + i, variant);
                lock (gate)
                {
                    steps += result.Steps;
                    transactions += result.Transactions;
                    if (result.Passed)
                    {
                        passed++;
                    }
                    else
                    {
                        failures.Add(result);
                    }

                    done++;
                    progress?.Invoke(done);
                }
            });
        stopwatch.Stop();
        var traced = failures.OrderBy(f => f.Seed).Select(f => World.Run(f.Seed, variant, trace: true)).ToList();
        return new SimSummary(from, count, variant, passed, traced, steps, transactions, stopwatch.Elapsed);
    }

    /// <summary>The first seed of the range whose history fails under <paramref name="variant"/>, traced; null when none does.</summary>
    public static SimResult? FirstFailure(int from, int count, BrokenVariant variant)
    {
        for (var seed = from; seed < from + count; seed++)
        {
            if (!World.Run(seed, variant).Passed)
            {
                return World.Run(seed, variant, trace: true);
            }
        }

        return null;
    }
}
