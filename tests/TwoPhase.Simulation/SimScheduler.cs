namespace TwoPhase.Simulation;

/// <summary>
/// Runs every task of a history on the calling thread, one at a time, in an order drawn from the seed. The
/// coordinator's awaits capture this scheduler (<see cref="TaskScheduler.Current"/>), so its continuations,
/// its <c>Parallel.ForEachAsync</c> workers and its timers' callbacks all come back here and nothing runs on the
/// thread pool. When nothing is ready the clock jumps to the next timer.
/// </summary>
public sealed class SimScheduler(SimClock clock, Random random) : TaskScheduler
{
    private readonly List<Task> _ready = [];
    private int _thread = -1;

    /// <summary>Steps run so far (tasks executed and timers fired).</summary>
    public long Steps { get; private set; }

    public override int MaximumConcurrencyLevel => 1;

    /// <summary>Start <paramref name="work"/> as a task of this scheduler; its awaits stay on it.</summary>
    public Task Spawn(Func<Task> work) =>
        Task.Factory.StartNew(work, CancellationToken.None, TaskCreationOptions.DenyChildAttach, this).Unwrap();

    /// <inheritdoc cref="Spawn(Func{Task})"/>
    public Task<T> Spawn<T>(Func<Task<T>> work) =>
        Task.Factory.StartNew(work, CancellationToken.None, TaskCreationOptions.DenyChildAttach, this).Unwrap();

    /// <summary>
    /// Run until <paramref name="stop"/> says so or nothing is left, at most until <paramref name="until"/> of simulated
    /// time. <paramref name="beforeStep"/> runs before each step, where a fault may strike. False when the time ran out.
    /// </summary>
    public bool Run(long until, Func<bool> stop, Action beforeStep)
    {
        _thread = Environment.CurrentManagedThreadId;
        // An await captures a synchronization context before the task scheduler: a test runner's would carry the
        // continuations off to its own threads.
        var context = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(null);
        try
        {
            return Loop(until, stop, beforeStep);
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(context);
        }
    }

    private bool Loop(long until, Func<bool> stop, Action beforeStep)
    {
        while (!stop())
        {
            beforeStep();
            if (_ready.Count > 0)
            {
                // Which ready task runs next is the seed's choice: every interleaving of the awaits is reachable.
                var index = random.Next(_ready.Count);
                var task = _ready[index];
                _ready[index] = _ready[^1];
                _ready.RemoveAt(_ready.Count - 1);
                Steps++;
                TryExecuteTask(task);
                continue;
            }

            if (!clock.TryTakeNext(out var timer))
            {
                return true;
            }

            if (clock.Now > until)
            {
                return false;
            }

            Steps++;
            // The callback runs as a task of this scheduler, so what it completes continues here too.
            Spawn(() =>
            {
                timer.Invoke();
                return Task.CompletedTask;
            });
        }

        return true;
    }

    protected override void QueueTask(Task task)
    {
        if (_thread != -1 && Environment.CurrentManagedThreadId != _thread)
        {
            // Something escaped to another thread: the history would no longer be one seed's.
            throw new InvalidOperationException("A task was queued from outside the simulation's thread.");
        }

        _ready.Add(task);
    }

    // Never inline: every step is the scheduler's choice.
    protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued) => false;

    protected override IEnumerable<Task> GetScheduledTasks() => [.. _ready];
}
