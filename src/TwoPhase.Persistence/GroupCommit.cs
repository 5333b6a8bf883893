using System.Threading.Channels;

namespace TwoPhase.Persistence;

/// <summary>
/// Group commit: many small forced writes run back to back in one local transaction and share one commit,
/// so one fsync covers the whole batch and a hot row (the last units of a popular product) is locked once
/// per batch instead of once per order. Each unit must leave no partial change when it decides not to act
/// (no savepoints are used: on PostgreSQL more than 64 subtransactions in one transaction is a known cliff).
/// A unit that throws fails the whole batch; every unit of it then gets the exception, and its caller
/// answers an error that the protocol retries.
/// Units of one <see cref="SetWrite{TItem, TResult}"/> in a batch run together, as one call for all their items
/// (a few set-oriented statements instead of a few per item): on PostgreSQL every statement is a round trip,
/// and round trips, not the SQL, were most of the database's CPU per order.
/// </summary>
internal sealed class GroupCommit : IAsyncDisposable
{
    private readonly Channel<Unit> _queue;
    private readonly Func<Func<LocalTransaction, Task<bool>>, CancellationToken, Task<bool>> _write;
    private readonly int _maxBatch;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task[] _writers;

    // Test seam (HoldNextBatchUntil): the next batch waits until this many units are queued.
    private TaskCompletionSource? _hold;
    private int _holdUntil;

    /// <param name="write">Runs one local transaction (the store's forced write path).</param>
    /// <param name="writers">Batches in flight at once: while one waits for its fsync, the next one runs.</param>
    /// <param name="maxBatch">Units per transaction at most.</param>
    /// <param name="capacity">Units waiting at most; beyond it callers wait (back-pressure, never an unbounded queue).</param>
    public GroupCommit(Func<Func<LocalTransaction, Task<bool>>, CancellationToken, Task<bool>> write, int writers, int maxBatch, int capacity)
    {
        _write = write;
        _maxBatch = maxBatch;
        _queue = Channel.CreateBounded<Unit>(new BoundedChannelOptions(capacity) { FullMode = BoundedChannelFullMode.Wait, SingleReader = writers == 1 });
        // Created on first use, inside some request: its trace and logging scope must not flow into the writers.
        using (ExecutionContext.SuppressFlow())
        {
            _writers = Enumerable.Range(0, writers).Select(_ => Task.Run(RunAsync)).ToArray();
        }
    }

    public async Task<T> WriteAsync<T>(Func<LocalTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        var unit = new SingleUnit<T>(work);
        await EnqueueAsync(unit, cancellationToken);
        return await unit.Completion.Task;
    }

    public async Task<TResult> WriteAsync<TItem, TResult>(SetWrite<TItem, TResult> kind, TItem item, CancellationToken cancellationToken)
    {
        var unit = new SetUnit<TItem, TResult>(kind, item);
        await EnqueueAsync(unit, cancellationToken);
        return await unit.Completion.Task;
    }

    /// <summary>
    /// For tests: the next batch starts only once <paramref name="units"/> units are queued (at most
    /// <paramref name="bound"/> later), so chosen writes share one batch without relying on timing. Call it while
    /// nothing is queued.
    /// </summary>
    internal void HoldNextBatchUntil(int units, TimeSpan bound)
    {
        var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _holdUntil, units);
        Volatile.Write(ref _hold, hold);
        // Bounded: a test that never queues enough units gets its batches late, never a writer stuck for good.
        _ = Task.Delay(bound, _stop.Token).ContinueWith(_ => hold.TrySetResult(), TaskScheduler.Default);
    }

    private async ValueTask EnqueueAsync(Unit unit, CancellationToken cancellationToken)
    {
        await _queue.Writer.WriteAsync(unit, cancellationToken);
        if (Volatile.Read(ref _hold) is { } hold && _queue.Reader.Count >= Volatile.Read(ref _holdUntil))
        {
            hold.TrySetResult();
        }
    }

    private async Task RunAsync()
    {
        var batch = new List<Unit>(_maxBatch);
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync(_stop.Token).ConfigureAwait(false))
        {
            if (Volatile.Read(ref _hold) is { } hold)
            {
                await hold.Task.ConfigureAwait(false);
                Interlocked.CompareExchange(ref _hold, null, hold);
            }

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
                        // In order of first arrival; the units of one set write together.
                        foreach (var group in batch.GroupBy(u => u.Group))
                        {
                            var members = group.ToList();
                            await members[0].RunAsync(tx, members);
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
        /// <summary>Units with the same group run in one call: a set write's units share their kind; any other unit runs alone.</summary>
        public abstract object Group { get; }

        /// <summary>Run this unit and the rest of its group (<paramref name="members"/> starts with this one).</summary>
        public abstract Task RunAsync(LocalTransaction tx, List<Unit> members);

        public abstract void Complete();

        public abstract void Fail(Exception e);
    }

    private abstract class ResultUnit<T> : Unit
    {
        protected T? Result { get; set; }

        public TaskCompletionSource<T> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        // Only after the shared commit: a result must never be seen before it is durable.
        public override void Complete() => Completion.TrySetResult(Result!);

        public override void Fail(Exception e) => Completion.TrySetException(e);
    }

    private sealed class SingleUnit<T>(Func<LocalTransaction, Task<T>> work) : ResultUnit<T>
    {
        public override object Group => this;

        public override async Task RunAsync(LocalTransaction tx, List<Unit> members) => Result = await work(tx);
    }

    private sealed class SetUnit<TItem, TResult>(SetWrite<TItem, TResult> kind, TItem item) : ResultUnit<TResult>
    {
        public override object Group => kind;

        public override async Task RunAsync(LocalTransaction tx, List<Unit> members)
        {
            var units = members.Cast<SetUnit<TItem, TResult>>().ToList();
            var results = await kind.RunAsync(tx, units.Select(u => u.Item).ToList());
            if (results.Count != units.Count)
            {
                throw new InvalidOperationException($"A set write answered {results.Count} results for {units.Count} items.");
            }

            for (var i = 0; i < units.Count; i++)
            {
                units[i].Result = results[i];
            }
        }

        private TItem Item => item;
    }
}

/// <summary>
/// A kind of write that many callers make at the same moment and that can run for all of them at once, inside
/// the shared local transaction of a group commit. <c>one</c> writes one item; <c>all</c>, when given, writes every
/// item of the batch in a few set-oriented statements and is used on PostgreSQL, where each statement is a round
/// trip (on SQLite, in process, the items simply run one after the other). <c>all</c> gets the items in arrival
/// order (the same item may come twice) and answers one result per item, in the same order; like any group-commit
/// unit, both must leave no partial change for an item they decide not to act on.
/// </summary>
public sealed class SetWrite<TItem, TResult>(
    Func<LocalTransaction, TItem, Task<TResult>> one,
    Func<LocalTransaction, IReadOnlyList<TItem>, Task<IReadOnlyList<TResult>>>? all = null)
{
    internal async Task<IReadOnlyList<TResult>> RunAsync(LocalTransaction tx, IReadOnlyList<TItem> items)
    {
        if (all is not null && tx.Dialect == Dialect.Postgres)
        {
            return await all(tx, items);
        }

        var results = new List<TResult>(items.Count);
        foreach (var item in items)
        {
            results.Add(await one(tx, item));
        }

        return results;
    }
}
