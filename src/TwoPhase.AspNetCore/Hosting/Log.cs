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

    [LoggerMessage(EventId = 30, Level = LogLevel.Information, Message = "Shared secret: configured (TwoPhase:Secret)")]
    public static partial void SecretConfigured(ILogger logger);

    [LoggerMessage(EventId = 31, Level = LogLevel.Information, Message = "Shared secret: from the environment (TWOPHASE_SECRET)")]
    public static partial void SecretFromEnvironment(ILogger logger);

    [LoggerMessage(EventId = 32, Level = LogLevel.Information, Message = "Shared secret: none configured, so generated and stored owner-only in {Path}, for this user's services on this machine")]
    public static partial void SecretCookieCreated(ILogger logger, string path);

    [LoggerMessage(EventId = 33, Level = LogLevel.Information, Message = "Shared secret: none configured, so read from {Path}")]
    public static partial void SecretCookieRead(ILogger logger, string path);

    [LoggerMessage(EventId = 60, Level = LogLevel.Warning, Message = "{Warning}")]
    public static partial void UnsafeDatabase(ILogger logger, string warning);

    [LoggerMessage(EventId = 50, Level = LogLevel.Error, Message = "Unhandled exception in {Method} {Path}")]
    public static partial void UnhandledException(ILogger logger, string method, string path, Exception exception);
}
