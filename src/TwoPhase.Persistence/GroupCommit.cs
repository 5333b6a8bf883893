using System.Threading.Channels;

namespace TwoPhase.Persistence;

/// <summary>
/// Group commit: many small forced writes run back to back in one local transaction and share one commit,
/// so one fsync covers the whole batch and a hot row (the last units of a popular product) is locked once
/// per batch instead of once per order. Each unit must leave no partial change when it decides not to act
/// (no savepoints are used: on PostgreSQL more than 64 subtransactions in one transaction is a known cliff).
/// A unit that throws fails the whole batch; every unit of it then gets the exception, and its caller
/// answers an error that the protocol retries.
/// </summary>
internal sealed class GroupCommit : IAsyncDisposable
{
    private readonly Channel<Unit> _queue;
    private readonly Func<Func<LocalTransaction, Task<bool>>, CancellationToken, Task<bool>> _write;
    private readonly int _maxBatch;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task[] _writers;

    /// <param name="write">Runs one local transaction (the store's forced write path).</param>
    /// <param name="writers">Batches in flight at once: while one waits for its fsync, the next one runs.</param>
    /// <param name="maxBatch">Units per transaction at most.</param>
    /// <param name="capacity">Units waiting at most; beyond it callers wait (back-pressure, never an unbounded queue).</param>
    public GroupCommit(Func<Func<LocalTransaction, Task<bool>>, CancellationToken, Task<bool>> write, int writers, int maxBatch, int capacity)
    {
        _write = write;
        _maxBatch = maxBatch;
        _queue = Channel.CreateBounded<Unit>(new BoundedChannelOptions(capacity) { FullMode = BoundedChannelFullMode.Wait, SingleReader = writers == 1 });
        _writers = Enumerable.Range(0, writers).Select(_ => Task.Run(RunAsync)).ToArray();
    }

    public async Task<T> WriteAsync<T>(Func<LocalTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        var unit = new Unit<T>(work);
        await _queue.Writer.WriteAsync(unit, cancellationToken);
        return await unit.Completion.Task;
    }

    private async Task RunAsync()
    {
        var batch = new List<Unit>(_maxBatch);
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync(_stop.Token).ConfigureAwait(false))
        {
            batch.Clear();
            while (batch.Count < _maxBatch && reader.TryRead(out var unit))
            {
                batch.Add(unit);
            }

            if (batch.Count == 0)
            {
                continue;
            }

            try
            {
                await _write(
                    async tx =>
                    {
                        foreach (var unit in batch)
                        {
                            await unit.RunAsync(tx);
                        }

                        return true;
                    },
                    _stop.Token);
                foreach (var unit in batch)
                {
                    unit.Complete();
                }
            }
            catch (Exception e)
            {
                foreach (var unit in batch)
                {
                    unit.Fail(e);
                }
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _stop.CancelAsync();
        try
        {
            await Task.WhenAll(_writers);
        }
        catch (OperationCanceledException)
        {
            // Stopping: units still queued are abandoned; their callers' requests end with the process.
        }

        _stop.Dispose();
    }

    private abstract class Unit
    {
        public abstract Task RunAsync(LocalTransaction tx);

        public abstract void Complete();

        public abstract void Fail(Exception e);
    }

    private sealed class Unit<T>(Func<LocalTransaction, Task<T>> work) : Unit
    {
        private T? _result;

        public TaskCompletionSource<T> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override async Task RunAsync(LocalTransaction tx) => _result = await work(tx);

        // Only after the shared commit: a result must never be seen before it is durable.
        public override void Complete() => Completion.TrySetResult(_result!);

        public override void Fail(Exception e) => Completion.TrySetException(e);
    }
}
