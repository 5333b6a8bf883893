using System.Diagnostics;
using TwoPhase.Protocol;

namespace TwoPhase.AspNetCore;

/// <summary>
/// Times every message to a participant and opens its span, as a child of the phase's span; the HTTP client
/// instrumentation then carries the trace context (W3C <c>traceparent</c>) to the participant.
/// </summary>
internal sealed class InstrumentedTransport(IParticipantTransport inner, TwoPhaseMetrics? metrics, TimeProvider time) : IParticipantTransport
{
    public async Task<Vote> PrepareAsync(ParticipantRef participant, string transactionId, string payload, CancellationToken cancellationToken)
    {
        using var activity = TwoPhaseDiagnostics.StartCall("prepare", participant.Name, transactionId);
        var started = time.GetTimestamp();
        var vote = await inner.PrepareAsync(participant, transactionId, payload, cancellationToken);
        var result = vote.Kind.ToWire();
        metrics?.RecordCall(participant.Name, "prepare", result, time.GetElapsedTime(started));
        activity?.SetTag("twophase.vote", result);
        return vote;
    }

    public async Task<Ack> SendDecisionAsync(ParticipantRef participant, string transactionId, Decision decision, string payload, CancellationToken cancellationToken)
    {
        var message = decision == Decision.Commit ? "commit" : "abort";
        using var activity = TwoPhaseDiagnostics.StartCall(message, participant.Name, transactionId);
        var started = time.GetTimestamp();
        var ack = await inner.SendDecisionAsync(participant, transactionId, decision, payload, cancellationToken);
        var result = ack.Kind switch
        {
            AckKind.Acknowledged => "acknowledged",
            AckKind.Conflict => "conflict",
            _ => "failed",
        };
        metrics?.RecordCall(participant.Name, message, result, time.GetElapsedTime(started));
        activity?.SetTag("twophase.ack", result);
        if (ack.Kind != AckKind.Acknowledged)
        {
            activity?.SetStatus(ActivityStatusCode.Error, ack.Detail);
        }

        return ack;
    }
}
