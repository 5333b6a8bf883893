using Npgsql;

namespace TwoPhase.EndToEnd.Tests.Harness;

/// <summary>The database every service of a test system runs on; every scenario runs on both.</summary>
public enum Store
{
    Sqlite,
    Postgres,
}

/// <summary>
/// Fresh PostgreSQL databases on the server named by <c>TWOPHASE_TEST_POSTGRES</c>, one per service per test,
/// dropped afterwards. A missing variable fails the test: PostgreSQL tests never skip and never fall back to SQLite.
/// </summary>
public static class PostgresServer
{
    public const string EnvironmentVariable = "TWOPHASE_TEST_POSTGRES";

    public static string ServerConnectionString()
    {
        var value = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (string.IsNullOrWhiteSpace(value))
        {
            throw new InvalidOperationException(
                $"{EnvironmentVariable} is not set, so the PostgreSQL end-to-end tests cannot run (they never skip and never fall back to SQLite). " +
                $"Point it at a PostgreSQL server the tests may create databases on, e.g. {EnvironmentVariable}=\"Host=127.0.0.1;Port=5433;Username=postgres\" " +
                "(scripts/pg-start.sh starts a throwaway server; .ci/run exports the variable).");
        }

        return value;
    }

    /// <summary>Creates an empty database (on <paramref name="server"/>, else the shared server) and returns a connection string for it.</summary>
    public static async Task<string> CreateDatabaseAsync(string name, string? server = null)
    {
        server ??= ServerConnectionString();
        await using (var connection = new NpgsqlConnection(Admin(server)))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await command.ExecuteNonQueryAsync();
        }

        return new NpgsqlConnectionStringBuilder(server) { Database = name, Timeout = 10 }.ConnectionString;
    }

    public static async Task DropDatabaseAsync(string name, string? server = null)
    {
        await using var connection = new NpgsqlConnection(Admin(server ?? ServerConnectionString()));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", connection);
        await command.ExecuteNonQueryAsync();
    }

    private static string Admin(string server) =>
        new NpgsqlConnectionStringBuilder(server) { Database = "postgres", Pooling = false, Timeout = 10 }.ConnectionString;
}
