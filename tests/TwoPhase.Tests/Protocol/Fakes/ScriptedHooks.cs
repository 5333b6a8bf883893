using System.Collections.Concurrent;
using TwoPhase.Protocol;

namespace TwoPhase.Tests.Protocol.Fakes;

/// <summary>Protocol hooks that record every point reached and run a test's action at chosen points.</summary>
public sealed class ScriptedHooks(Journal journal) : IProtocolHooks
{
    private readonly ConcurrentDictionary<ProtocolPoint, Func<string, CancellationToken, ValueTask>> _actions = new();

    public void At(ProtocolPoint point, Func<string, CancellationToken, ValueTask> action) => _actions[point] = action;

    public ValueTask AtAsync(ProtocolPoint point, string transactionId, CancellationToken cancellationToken)
    {
        journal.Add($"hook:{point}");
        return _actions.TryGetValue(point, out var action) ? action(transactionId, cancellationToken) : ValueTask.CompletedTask;
    }
}
