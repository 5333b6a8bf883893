namespace TwoPhase.Tests.Storage;

/// <summary>Start many operations together behind one gate, so they really race, and wait for all of them (bounded).</summary>
public static class Concurrently
{
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

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
}
