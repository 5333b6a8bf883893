using Microsoft.Extensions.Logging;
using TwoPhase.Protocol;

namespace TwoPhase.AspNetCore;

/// <summary>Logs what participants say that is not a plain success; the protocol engine stays free of logging.</summary>
internal sealed class LoggingTransport(IParticipantTransport inner, ILogger<LoggingTransport> logger) : IParticipantTransport
{
    public async Task<Vote> PrepareAsync(ParticipantRef participant, string transactionId, string payload, CancellationToken cancellationToken)
    {
        var vote = await inner.PrepareAsync(participant, transactionId, payload, cancellationToken);
        if (vote.Kind != VoteKind.Yes)
        {
            Log.Voted(logger, transactionId, participant.Name, vote.Kind.ToWire(), vote.Reason);
        }

        return vote;
    }

    public async Task<Ack> SendDecisionAsync(ParticipantRef participant, string transactionId, Decision decision, string payload, CancellationToken cancellationToken)
    {
        var ack = await inner.SendDecisionAsync(participant, transactionId, decision, payload, cancellationToken);
        if (ack.Kind == AckKind.Conflict)
        {
            Log.ProtocolViolation(logger, transactionId, $"{participant.Name} refused {decision}: {ack.Detail}");
        }
        else if (ack.Kind == AckKind.Failed)
        {
            Log.DecisionNotAcknowledged(logger, transactionId, participant.Name, decision.ToString(), ack.Detail);
        }

        return ack;
    }
}
