using Dapper;
using TwoPhase.Persistence;

namespace TwoPhase.Contract.Tests;

/// <summary>The few statements the contracts' fixtures run on their databases.</summary>
internal static class Sql
{
    public static Task ExecuteAsync(Database database, string sql, object? args = null) =>
        database.WriteAsync(tx => tx.Connection.ExecuteAsync(new CommandDefinition(sql, args, tx.Transaction)), CancellationToken.None);

    public static Task<int> ScalarAsync(Database database, string sql) =>
        database.ReadAsync(c => c.ExecuteScalarAsync<int>(new CommandDefinition(sql)), CancellationToken.None);

    /// <summary>One line per row of a query that returns one text column, in the query's order.</summary>
    public static async Task<string> SnapshotAsync(Database database, string sql) =>
        string.Join('\n', await database.ReadAsync(c => c.QueryAsync<string>(new CommandDefinition(sql)), CancellationToken.None));
}
