namespace TwoPhase.Simulation;

/// <summary>
/// Messages between nodes, each delivered by a timer of the history's clock. While faults are on, a message may be
/// dropped, duplicated, or delayed long enough to arrive after later ones; a partitioned node sends and receives
/// nothing. A request is one message, its answer another, each with its own fate.
/// </summary>
public sealed class SimNetwork(World world)
{
    private readonly HashSet<string> _isolated = [];

    public void Isolate(string node, TimeSpan length)
    {
        if (_isolated.Add(node))
        {
            world.Note($"net partition {node} for {length.TotalMilliseconds:0} ms");
            world.Clock.At(length, () => Heal(node));
        }
    }

    public void Heal(string node)
    {
        if (_isolated.Remove(node))
        {
            world.Note($"net heal {node}");
        }
    }

    public void HealAll()
    {
        foreach (var node in _isolated.ToList())
        {
            Heal(node);
        }
    }

    /// <summary>
    /// Send a request to <paramref name="to"/> and wait for its answer. <paramref name="serve"/> runs at the destination
    /// when the request arrives (null when the destination is down: nothing answers). Ends only by the answer arriving
    /// or <paramref name="cancellationToken"/>, as an HTTP call ends by its answer or its timeout.
    /// </summary>
    public async Task<T> CallAsync<T>(string from, string to, string what, Func<Task<T>?> serve, CancellationToken cancellationToken)
    {
        var answer = new TaskCompletionSource<T>();
        Send(from, to, what, () =>
        {
            var serving = serve();
            if (serving is null)
            {
                world.Note($"net {what} {from}->{to}: {to} is down");
                return;
            }

            _ = world.Scheduler.Spawn(async () =>
            {
                T result;
                try
                {
                    result = await serving;
                }
                catch (OperationCanceledException)
                {
                    // The destination crashed while serving: no answer.
                    return;
                }

                Send(to, from, $"{what} -> {result}", () => answer.TrySetResult(result));
            });
        });
        return await answer.Task.WaitAsync(cancellationToken);
    }

    private void Send(string from, string to, string what, Action arrive)
    {
        var faults = world.FaultsOn;
        if (_isolated.Contains(from) || _isolated.Contains(to))
        {
            world.Note($"net {what} {from}->{to}: cut by partition");
            return;
        }

        var random = world.Random;
        if (faults && random.NextDouble() < world.Faults.Drop)
        {
            world.Note($"net {what} {from}->{to}: dropped");
            return;
        }

        var copies = faults && random.NextDouble() < world.Faults.Duplicate ? 2 : 1;
        for (var i = 0; i < copies; i++)
        {
            var delay = Delay(random, faults);
            var copy = i == 0 ? "" : " (duplicate)";
            world.Clock.At(delay, () =>
            {
                if (_isolated.Contains(to))
                {
                    world.Note($"net {what} {from}->{to}{copy}: cut by partition on arrival");
                    return;
                }

                world.Note($"net {what} {from}->{to}{copy}: delivered");
                arrive();
            });
        }
    }

    private TimeSpan Delay(Random random, bool faults)
    {
        var roll = random.NextDouble();
        // Mostly a LAN round; while faults are on, now and then a slow path long enough to reorder messages.
        var ms = !faults || roll < 1 - world.Faults.Slow
            ? 1 + random.Next(20)
            : 20 + random.Next(3000);
        return TimeSpan.FromMilliseconds(ms);
    }
}
