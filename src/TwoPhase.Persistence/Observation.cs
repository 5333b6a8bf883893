using Dapper;

namespace TwoPhase.Persistence;

/// <summary>How much of the decision log is not completed, and since when.</summary>
public sealed record UnfinishedSummary(long Count, DateTimeOffset? Oldest);

/// <summary>How many ledger rows are prepared, how many of them are in doubt, and the oldest.</summary>
public sealed record PreparedSummary(long Count, long InDoubt, DateTimeOffset? Oldest);

/// <summary>
/// The cheap reads behind the gauges. Each is one statement over a partial index (unfinished transactions,
/// prepared rows), so it costs the size of the backlog, not of the history, and runs every few seconds from
/// a background refresher, never per scrape.
/// </summary>
public static class Observation
{
    /// <summary>How many transactions the decision log has not completed, and when the oldest began.</summary>
    public static Task<UnfinishedSummary> UnfinishedAsync(Database db, CancellationToken cancellationToken) =>
        db.ReadAsync(
            async connection =>
            {
                var (count, oldest) = await connection.QuerySingleAsync<(long, long?)>(new CommandDefinition(
                    "SELECT COUNT(*), MIN(created_ms) FROM tp_transactions WHERE completed_ms IS NULL",
                    cancellationToken: cancellationToken));
                return new UnfinishedSummary(count, UnixMs.To(oldest));
            },
            cancellationToken);

    /// <summary>How many ledger rows are prepared, how many of them since before <paramref name="inDoubtBefore"/> (in doubt), and the oldest.</summary>
    public static Task<PreparedSummary> PreparedAsync(Database db, DateTimeOffset inDoubtBefore, CancellationToken cancellationToken) =>
        db.ReadAsync(
            async connection =>
            {
                var (count, inDoubt, oldest) = await connection.QuerySingleAsync<(long, long, long?)>(new CommandDefinition(
                    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN created_ms <= @Before THEN 1 ELSE 0 END), 0), MIN(created_ms) FROM tp_ledger WHERE state = 'prepared'",
                    new { Before = UnixMs.From(inDoubtBefore) },
                    cancellationToken: cancellationToken));
                return new PreparedSummary(count, inDoubt, UnixMs.To(oldest));
            },
            cancellationToken);
}
