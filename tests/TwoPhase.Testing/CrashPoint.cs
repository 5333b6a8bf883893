using TwoPhase.Protocol;

namespace TwoPhase.Testing;

/// <summary>
/// In-process stand-in for kill -9 at one <see cref="ProtocolPoint"/>: the first time a participant reaches it, the
/// call throws <see cref="SimulatedCrashException"/> and the participant instance is thrown away. What was durable
/// before the point stays; what came after never happens. A suite then builds a new participant over the same
/// database (a restart) and goes on.
/// </summary>
public sealed class CrashPoint : IProtocolHooks
{
    private ProtocolPoint? _armed;

    /// <summary>Crash the next time <paramref name="point"/> is reached (once).</summary>
    public void Arm(ProtocolPoint point) => _armed = point;

    /// <inheritdoc />
    public ValueTask AtAsync(ProtocolPoint point, string transactionId, CancellationToken cancellationToken)
    {
        if (_armed == point)
        {
            _armed = null;
            throw new SimulatedCrashException(point, transactionId);
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>A participant "died" at <see cref="Point"/> (<see cref="CrashPoint"/>).</summary>
public sealed class SimulatedCrashException : Exception
{
    /// <summary>A crash at <paramref name="point"/> while handling <paramref name="transactionId"/>.</summary>
    public SimulatedCrashException(ProtocolPoint point, string transactionId)
        : base($"simulated crash at {point} for {transactionId}") => Point = point;

    /// <summary>A crash at no particular point.</summary>
    public SimulatedCrashException()
    {
    }

    /// <summary>A crash with a message.</summary>
    public SimulatedCrashException(string message)
        : base(message)
    {
    }

    /// <summary>A crash with a message and a cause.</summary>
    public SimulatedCrashException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Where the participant died.</summary>
    public ProtocolPoint? Point { get; }
}
