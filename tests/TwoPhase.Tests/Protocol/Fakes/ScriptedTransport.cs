using System.Collections.Concurrent;
using TwoPhase.Protocol;

namespace TwoPhase.Tests.Protocol.Fakes;

/// <summary>
/// An <see cref="IParticipantTransport"/> whose answers each test scripts per participant. By default every
/// participant votes yes and acknowledges. Every message sent lands in the journal as
/// <c>prepare:NAME</c>, <c>commit:NAME</c> or <c>abort:NAME</c>, before the scripted answer runs.
/// </summary>
public sealed class ScriptedTransport(Journal journal) : IParticipantTransport
{
    private readonly ConcurrentDictionary<string, Func<CancellationToken, Task<Vote>>> _prepare = new();
    private readonly ConcurrentDictionary<string, Func<Decision, CancellationToken, Task<Ack>>> _decision = new();
    private int _preparesInFlight;
    private int _maxPreparesInFlight;

    /// <summary>The most PREPAREs that were in flight at once.</summary>
    public int MaxPreparesInFlight => Volatile.Read(ref _maxPreparesInFlight);

    public void OnPrepare(string participant, Func<CancellationToken, Task<Vote>> answer) => _prepare[participant] = answer;

    public void OnDecision(string participant, Func<Decision, CancellationToken, Task<Ack>> answer) => _decision[participant] = answer;

    public async Task<Vote> PrepareAsync(ParticipantRef participant, string transactionId, string payload, CancellationToken cancellationToken)
    {
        journal.Add($"prepare:{participant.Name}");
        var now = Interlocked.Increment(ref _preparesInFlight);
        var seen = Volatile.Read(ref _maxPreparesInFlight);
        while (now > seen && Interlocked.CompareExchange(ref _maxPreparesInFlight, now, seen) != seen)
        {
            seen = Volatile.Read(ref _maxPreparesInFlight);
        }

        try
        {
            return _prepare.TryGetValue(participant.Name, out var answer)
                ? await answer(cancellationToken)
                : new Vote(participant.Name, VoteKind.Yes);
        }
        finally
        {
            Interlocked.Decrement(ref _preparesInFlight);
        }
    }

    public async Task<Ack> SendDecisionAsync(ParticipantRef participant, string transactionId, Decision decision, string payload, CancellationToken cancellationToken)
    {
        journal.Add($"{(decision == Decision.Commit ? "commit" : "abort")}:{participant.Name}");
        return _decision.TryGetValue(participant.Name, out var answer)
            ? await answer(decision, cancellationToken)
            : new Ack(participant.Name, AckKind.Acknowledged);
    }
}
