using Microsoft.Data.Sqlite;
using Npgsql;
using TwoPhase.Persistence;

namespace TwoPhase.Tests.Storage;

/// <summary>Fresh SQLite databases in temp files, deleted with the test.</summary>
public sealed class SqliteTarget : IAsyncDisposable
{
    private readonly List<string> _files = [];

    public Task<Database> CreateDatabaseAsync()
    {
        var file = Path.Combine(Path.GetTempPath(), $"twophase-test-{Guid.NewGuid():N}.db");
        _files.Add(file);
        return Task.FromResult(Database.Create(new DatabaseOptions { Provider = "sqlite", ConnectionString = $"Data Source={file}" }, file));
    }

    public ValueTask DisposeAsync()
    {
        SqliteConnection.ClearAllPools();
        foreach (var file in _files)
        {
            foreach (var suffix in new[] { string.Empty, "-wal", "-shm" })
            {
                File.Delete(file + suffix);
            }
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// A fresh PostgreSQL database per test class on the server named by <c>TWOPHASE_TEST_POSTGRES</c>, and a fresh
/// schema in it per database asked for, so every test starts from empty tables. A missing variable fails
/// every PostgreSQL test with instructions: the suite never skips them and never falls back to SQLite.
/// </summary>
public sealed class PostgresServerFixture : IAsyncLifetime
{
    public const string Variable = "TWOPHASE_TEST_POSTGRES";

    private string? _server;
    private string? _database;
    private int _schemas;

    public async Task InitializeAsync()
    {
        _server = Environment.GetEnvironmentVariable(Variable);
        if (string.IsNullOrWhiteSpace(_server))
        {
            throw new InvalidOperationException(
                $"The PostgreSQL storage tests need a server: set {Variable} to an Npgsql connection string of a user that may create databases, "
                + $"e.g. `export {Variable}=\"$(scripts/pg-start.sh 5433)\"` "
                + $"(starts a throwaway PostgreSQL 15 on 127.0.0.1:5433 and prints Host=127.0.0.1;Port=5433;Username=postgres). .ci/run does this for you.");
        }

        _database = $"tp_test_{Guid.NewGuid():N}";
        await using var connection = new NpgsqlConnection(Admin());
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE {_database}", connection);
        await command.ExecuteNonQueryAsync();
    }

    public async Task<Database> CreateDatabaseAsync()
    {
        var schema = $"t{Interlocked.Increment(ref _schemas)}";
        var builder = new NpgsqlConnectionStringBuilder(_server) { Database = _database, Pooling = false };
        await using (var connection = new NpgsqlConnection(builder.ConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE SCHEMA {schema}", connection);
            await command.ExecuteNonQueryAsync();
        }

        builder.Pooling = true;
        builder.SearchPath = schema;
        return Database.Create(new DatabaseOptions { Provider = "postgres", ConnectionString = builder.ConnectionString }, "unused.db");
    }

    public async Task DisposeAsync()
    {
        if (_database is null)
        {
            return;
        }

        NpgsqlConnection.ClearAllPools();
        await using var connection = new NpgsqlConnection(Admin());
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS {_database} WITH (FORCE)", connection);
        await command.ExecuteNonQueryAsync();
    }

    private string Admin() =>
        new NpgsqlConnectionStringBuilder(_server) { Database = string.IsNullOrEmpty(new NpgsqlConnectionStringBuilder(_server).Database) ? "postgres" : new NpgsqlConnectionStringBuilder(_server).Database, Pooling = false }.ConnectionString;
}
