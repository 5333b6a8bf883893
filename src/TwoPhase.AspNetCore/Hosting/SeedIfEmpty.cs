using Dapper;
using TwoPhase.Persistence;

namespace TwoPhase.AspNetCore;

/// <summary>
/// Fills a service's table on its first start, so the reference system works out of the box; a table that holds any
/// row is left as it is, so a restart never re-seeds what orders have changed. Runs after the schema (order 1).
/// </summary>
/// <param name="db">The service's database.</param>
/// <param name="table">The table, a constant of the service (never input).</param>
/// <param name="insertSql">The service's insert of one row, with the row's properties as parameters.</param>
public abstract class SeedIfEmpty<TRow>(Database db, string table, string insertSql) : IStartupTask
{
    /// <summary>Runs after the schema tasks (order 0), which create the table it fills.</summary>
    public int Order => 1;

    /// <summary>Whether seeding is configured on (<c>Seed:Enabled</c>).</summary>
    protected abstract bool Enabled { get; }

    /// <summary>The rows an empty table gets.</summary>
    protected abstract IEnumerable<TRow> Rows { get; }

    /// <summary>Inserts <see cref="Rows"/> when seeding is on and the table is empty; a table with rows is left alone.</summary>
    public Task RunAsync(CancellationToken cancellationToken) => !Enabled
        ? Task.CompletedTask
        : db.WriteAsync(
            async tx =>
            {
                // Counted and filled in one local transaction: two services never both find it empty and both fill it.
                var existing = await tx.Connection.ExecuteScalarAsync<long>(new CommandDefinition($"SELECT COUNT(*) FROM {table}", transaction: tx.Transaction, cancellationToken: cancellationToken));
                if (existing == 0)
                {
                    foreach (var row in Rows)
                    {
                        await tx.ExecuteAsync(insertSql, row, cancellationToken);
                    }
                }
            },
            cancellationToken);
}
