using TwoPhase.Persistence;

namespace TwoPhase.Testing;

/// <summary>Start many operations together behind one gate, so they really race, and wait for all of them (bounded).</summary>
public static class Concurrently
{
    /// <summary>How long a suite waits for operations it started together before it fails.</summary>
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    /// <summary>Runs <paramref name="operation"/> <paramref name="count"/> times at once; the results in index order.</summary>
    public static async Task<T[]> RunAsync<T>(int count, Func<int, Task<T>> operation)
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var tasks = Enumerable.Range(0, count)
            .Select(i => Task.Run(async () =>
            {
                await gate.Task;
                return await operation(i);
            }))
            .ToArray();
        gate.SetResult();
        return await Task.WhenAll(tasks).WaitAsync(Bound);
    }

    /// <summary>
    /// Starts the writes in order and holds <paramref name="database"/>'s group commit until all of them are queued, so
    /// they run in one batch (one local transaction), in this order: each call must queue its write before it first
    /// waits, as <see cref="LedgerParticipant"/>'s PREPARE, COMMIT and ABORT do.
    /// </summary>
    public static async Task<T[]> InOneBatchAsync<T>(Database database, params Func<Task<T>>[] writes)
    {
        ArgumentNullException.ThrowIfNull(database);
        ArgumentNullException.ThrowIfNull(writes);
        database.HoldNextBatchUntil(writes.Length, Bound);
        var started = writes.Select(w => w()).ToArray();
        return await Task.WhenAll(started).WaitAsync(Bound);
    }
}
