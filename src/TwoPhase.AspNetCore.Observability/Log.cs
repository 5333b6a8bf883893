using Microsoft.Extensions.Logging;

namespace TwoPhase.AspNetCore;

/// <summary>
/// The log lines of the exporters' package. Event ids 1000 and up, clear of the runtime's (TwoPhase.AspNetCore's
/// Log.cs), so a filter on an id means one message whichever package wrote it.
/// </summary>
internal static partial class ObservabilityLog
{
    [LoggerMessage(EventId = 1000, Level = LogLevel.Warning, Message = "Telemetry refresh failed; the database gauges keep their last values until it succeeds")]
    public static partial void TelemetryRefreshFailed(ILogger logger, Exception exception);
}
