using Microsoft.Extensions.Logging;
using TwoPhase.Protocol;

namespace TwoPhase.AspNetCore;

/// <summary>
/// Test-only: makes the process die, as abruptly as kill -9, the first time it reaches a named protocol point.
/// Enabled only by the environment variable <c>TWOPHASE_CRASH_AT</c> (a <see cref="ProtocolPoint"/> name);
/// without it the service uses <see cref="NoProtocolHooks"/>.
/// </summary>
internal sealed class CrashPointHooks(ProtocolPoint point, ILogger<CrashPointHooks> logger) : IProtocolHooks
{
    public const string EnvironmentVariable = "TWOPHASE_CRASH_AT";

    public static ProtocolPoint? FromEnvironment()
    {
        var value = Environment.GetEnvironmentVariable(EnvironmentVariable);
        return string.IsNullOrWhiteSpace(value) ? null
            : Enum.TryParse<ProtocolPoint>(value, ignoreCase: false, out var point) ? point
            : throw new InvalidOperationException($"{EnvironmentVariable}={value} names no protocol point; use one of {string.Join(", ", Enum.GetNames<ProtocolPoint>())}.");
    }

    public async ValueTask AtAsync(ProtocolPoint reached, string transactionId, CancellationToken cancellationToken)
    {
        if (reached != point)
        {
            return;
        }

        Log.CrashPoint(logger, point.ToString(), transactionId);
        if (reached == ProtocolPoint.CoordinatorAfterPreparesSent)
        {
            // Let the requests reach the wire, so participants really are prepared when we die.
            await Task.Delay(TimeSpan.FromMilliseconds(100), CancellationToken.None);
        }

        Environment.FailFast($"TwoPhase crash point {point} for transaction {transactionId}");
    }
}
