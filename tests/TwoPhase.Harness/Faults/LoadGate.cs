namespace TwoPhase.Harness;

/// <summary>
/// Holds the load back at each planned kill until the kill has happened, so a slow restart cannot let
/// the load run ahead and finish before the kills: every kill lands while orders are in flight.
/// </summary>
public sealed class LoadGate
{
    private readonly Lock _gate = new();
    private TaskCompletionSource _opened = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _openThrough;
    private int _started;

    /// <param name="openThrough">The highest order index that may start before anything is opened.</param>
    public LoadGate(int openThrough) => _openThrough = openThrough;

    /// <summary>How many orders have passed the gate.</summary>
    public int Started => Volatile.Read(ref _started);

    /// <summary>Waits until order <paramref name="index"/> may start, then counts it as started.</summary>
    public async Task EnterAsync(int index, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task opened;
            lock (_gate)
            {
                if (index <= _openThrough)
                {
                    _started++;
                    return;
                }

                opened = _opened.Task;
            }

            await opened.WaitAsync(cancellationToken);
        }
    }

    /// <summary>Lets orders up to <paramref name="index"/> start.</summary>
    public void OpenThrough(int index)
    {
        TaskCompletionSource previous;
        lock (_gate)
        {
            if (index <= _openThrough)
            {
                return;
            }

            _openThrough = index;
            previous = _opened;
            _opened = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        previous.TrySetResult();
    }

    /// <summary>Lets every order start: the kills are done, or the chaos phase ran out of time.</summary>
    public void OpenAll() => OpenThrough(int.MaxValue);
}
