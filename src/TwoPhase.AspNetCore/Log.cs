using Microsoft.Extensions.Logging;

namespace TwoPhase.AspNetCore;

/// <summary>Every log line of the runtime, each carrying the transaction id where there is one.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Transaction {TransactionId} decided {State}: {Reason}")]
    public static partial void Decided(ILogger logger, string transactionId, string state, string? reason);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "Transaction {TransactionId}: {Participant} did not acknowledge {Decision}: {Detail}")]
    public static partial void DecisionNotAcknowledged(ILogger logger, string transactionId, string participant, string decision, string? detail);

    [LoggerMessage(EventId = 3, Level = LogLevel.Error, Message = "Transaction {TransactionId}: protocol violation: {Detail}")]
    public static partial void ProtocolViolation(ILogger logger, string transactionId, string detail);

    [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "Recovery touched {Count} transactions")]
    public static partial void Recovered(ILogger logger, int count);

    [LoggerMessage(EventId = 5, Level = LogLevel.Error, Message = "Recovery scan failed")]
    public static partial void RecoveryFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 6, Level = LogLevel.Information, Message = "Transaction {TransactionId} in doubt: coordinator says {Answer}")]
    public static partial void InDoubtResolved(ILogger logger, string transactionId, string answer);

    [LoggerMessage(EventId = 7, Level = LogLevel.Warning, Message = "Transaction {TransactionId} in doubt: cannot reach the coordinator: {Detail}")]
    public static partial void InDoubtUnreachable(ILogger logger, string transactionId, string detail);

    [LoggerMessage(EventId = 8, Level = LogLevel.Information, Message = "Transaction {TransactionId} prepare at {Participant}: voted {Vote} {Reason}")]
    public static partial void Voted(ILogger logger, string transactionId, string participant, string vote, string? reason);

    [LoggerMessage(EventId = 9, Level = LogLevel.Warning, Message = "Crash point {Point} reached for transaction {TransactionId}: exiting now")]
    public static partial void CrashPoint(ILogger logger, string point, string transactionId);

    [LoggerMessage(EventId = 10, Level = LogLevel.Information, Message = "Database ready: {Database}")]
    public static partial void DatabaseReady(ILogger logger, string database);

    [LoggerMessage(EventId = 11, Level = LogLevel.Warning, Message = "No TwoPhase:Secret configured: protocol and admin endpoints accept any caller while this service listens on loopback only, and refuse every caller otherwise. Set TwoPhase__Secret (or TWOPHASE_SECRET) on every service.")]
    public static partial void NoSecret(ILogger logger);

    [LoggerMessage(EventId = 60, Level = LogLevel.Warning, Message = "{Warning}")]
    public static partial void UnsafeDatabase(ILogger logger, string warning);

    [LoggerMessage(EventId = 40, Level = LogLevel.Warning, Message = "Telemetry refresh failed; the database gauges keep their last values until it succeeds")]
    public static partial void TelemetryRefreshFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 50, Level = LogLevel.Error, Message = "Unhandled exception in {Method} {Path}")]
    public static partial void UnhandledException(ILogger logger, string method, string path, Exception exception);
}
