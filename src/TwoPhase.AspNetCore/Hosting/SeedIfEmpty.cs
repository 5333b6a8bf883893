using Dapper;
using TwoPhase.Persistence;

namespace TwoPhase.AspNetCore;

/// <summary>
/// Fills a service's table on its first start, so the reference system works out of the box; a table that holds any
/// row is left as it is, so a restart never re-seeds what orders have changed. Runs after the schema (order 1).
/// </summary>
public abstract class SeedIfEmpty(Database db, string table) : IStartupTask
{
    public int Order => 1;

    /// <summary>Whether seeding is configured on (<c>Seed:Enabled</c>).</summary>
    protected abstract bool Enabled { get; }

    /// <summary>Inserts the seed rows, inside the same local transaction that found the table empty.</summary>
    protected abstract Task InsertAsync(LocalTransaction tx, CancellationToken cancellationToken);

    public Task RunAsync(CancellationToken cancellationToken) => !Enabled
        ? Task.CompletedTask
        : db.WriteAsync(
            async tx =>
            {
                // The table name is the service's constant, never input.
                var existing = await tx.Connection.ExecuteScalarAsync<long>(new CommandDefinition($"SELECT COUNT(*) FROM {table}", transaction: tx.Transaction, cancellationToken: cancellationToken));
                if (existing == 0)
                {
                    await InsertAsync(tx, cancellationToken);
                }
            },
            cancellationToken);
}
