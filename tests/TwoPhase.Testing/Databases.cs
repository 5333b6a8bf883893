using Microsoft.Data.Sqlite;
using Npgsql;
using TwoPhase.Persistence;

namespace TwoPhase.Testing;

/// <summary>Where a suite gets its fresh, empty databases: <see cref="SqliteTarget"/> or <see cref="PostgresServerFixture"/>.</summary>
public interface IDatabaseTarget
{
    /// <summary>A new, empty database of this store, with <paramref name="configure"/> applied to its options.</summary>
    Task<Database> CreateDatabaseAsync(Action<DatabaseOptions>? configure = null);
}

/// <summary>
/// Fresh SQLite databases in temp files, deleted when the target is disposed (a suite that takes it disposes it
/// with the test, since xunit makes one test class instance per test).
/// </summary>
public sealed class SqliteTarget : IDatabaseTarget, IAsyncDisposable
{
    private readonly List<string> _files = [];

    /// <inheritdoc />
    public Task<Database> CreateDatabaseAsync(Action<DatabaseOptions>? configure = null)
    {
        var file = Path.Combine(Path.GetTempPath(), $"twophase-test-{Guid.NewGuid():N}.db");
        _files.Add(file);
        var options = new DatabaseOptions { Provider = "sqlite", ConnectionString = $"Data Source={file}" };
        configure?.Invoke(options);
        return Task.FromResult(Database.Create(options, file));
    }

    /// <summary>Closes pooled connections and deletes every file this target created.</summary>
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
public sealed class PostgresServerFixture : IDatabaseTarget, IAsyncLifetime
{
    /// <summary>The environment variable naming the server: an Npgsql connection string of a user that may create databases.</summary>
    public const string Variable = "TWOPHASE_TEST_POSTGRES";

    private string? _server;
    private string? _database;
    private int _schemas;
    private readonly List<string> _own = [];

    /// <summary>Creates this fixture's database; fails with instructions when <see cref="Variable"/> is unset.</summary>
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

    /// <summary>A new, empty schema in this fixture's database, as a <see cref="Database"/> whose search path is that schema.</summary>
    public async Task<Database> CreateDatabaseAsync(Action<DatabaseOptions>? configure = null)
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
        var options = new DatabaseOptions { Provider = "postgres", ConnectionString = builder.ConnectionString };
        configure?.Invoke(options);
        return Database.Create(options, "unused.db");
    }

    /// <summary>
    /// Another new database on the server, for a test that changes database-level settings (<c>ALTER DATABASE ... SET</c>)
    /// and so must not share one; dropped with the fixture. Returns its name and connection string.
    /// </summary>
    public async Task<(string Name, string ConnectionString)> CreateOwnDatabaseAsync()
    {
        var name = $"{_database}_{Interlocked.Increment(ref _schemas)}";
        _own.Add(name);
        await AdminAsync($"CREATE DATABASE {name}");
        return (name, new NpgsqlConnectionStringBuilder(_server) { Database = name }.ConnectionString);
    }

    /// <summary>A statement run on the maintenance database as the fixture's user.</summary>
    public async Task AdminAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(Admin());
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Drops every database this fixture created.</summary>
    public async Task DisposeAsync()
    {
        if (_database is null)
        {
            return;
        }

        NpgsqlConnection.ClearAllPools();
        foreach (var name in _own.Append(_database))
        {
            await AdminAsync($"DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        }
    }

    private string Admin() =>
        new NpgsqlConnectionStringBuilder(_server) { Database = string.IsNullOrEmpty(new NpgsqlConnectionStringBuilder(_server).Database) ? "postgres" : new NpgsqlConnectionStringBuilder(_server).Database, Pooling = false }.ConnectionString;
}
