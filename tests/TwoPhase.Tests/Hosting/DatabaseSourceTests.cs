using Dapper;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using TwoPhase.AspNetCore;
using TwoPhase.Persistence;

namespace TwoPhase.Tests.Hosting;

/// <summary>
/// Where <c>AddTwoPhase</c> takes its connection from, in order: <c>TwoPhase:Database:ConnectionString</c>, else
/// <c>ConnectionStrings:&lt;name&gt;</c>, else an <see cref="NpgsqlDataSource"/> the host registered, else the SQLite file
/// under the content root.
/// </summary>
public sealed class DatabaseSourceTests(PostgresServerFixture server) : IClassFixture<PostgresServerFixture>, IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "twophase-sources-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    [Fact]
    public async Task ConnectionString_WinsOverConnectionStringsAndARegisteredDataSource()
    {
        await using var registered = NpgsqlDataSource.Create("Host=127.0.0.1;Database=third");
        using var host = Build(registered, ("TwoPhase:Database:ConnectionString", "Host=127.0.0.1;Database=first"), ("ConnectionStrings:TwoPhase", "Host=127.0.0.1;Database=second"));

        Assert.Equal("postgres 127.0.0.1/first", host.Services.GetRequiredService<Database>().Describe());
    }

    [Theory]
    [InlineData(null, "TwoPhase")]
    [InlineData("Ledger", "Ledger")]
    public async Task ConnectionStringsEntry_IsUsedWhenNoConnectionStringIsSet(string? name, string entry)
    {
        await using var registered = NpgsqlDataSource.Create("Host=127.0.0.1;Database=third");
        using var host = Build(registered, ("TwoPhase:Database:ConnectionStringName", name), ($"ConnectionStrings:{entry}", "Host=127.0.0.1;Database=second"));

        Assert.Equal("postgres 127.0.0.1/second", host.Services.GetRequiredService<Database>().Describe());
    }

    [Fact]
    public async Task RegisteredDataSource_IsUsedWithTwoPhasesSessionSettings_AndLeftToItsOwner()
    {
        var (name, connection) = await server.CreateOwnDatabaseAsync();
        await using var registered = NpgsqlDataSource.Create(connection);
        using (var host = Build(registered, ("TwoPhase:Database:LockTimeoutMs", "1234")))
        {
            var db = host.Services.GetRequiredService<Database>();
            Assert.Equal($"postgres 127.0.0.1/{name}", db.Describe());
            // The durable pool's sessions keep what the protocol forces, and the configured bounds.
            Assert.Null(await db.VerifyAsync(CancellationToken.None));
            Assert.Equal("1234ms", await db.ReadAsync(c => c.ExecuteScalarAsync<string>("SHOW lock_timeout"), CancellationToken.None));
            Assert.Equal("on", await db.ReadAsync(c => c.ExecuteScalarAsync<string>("SHOW synchronous_commit"), CancellationToken.None));
            await db.WriteAsync(tx => tx.ExecuteAsync("CREATE TABLE IF NOT EXISTS source_probe (id int)", null, CancellationToken.None), CancellationToken.None);
        }

        // The host's data source outlives TwoPhase's use of it: disposing the host's Database did not dispose it, and
        // Npgsql's reset on return gave the host back its own session settings.
        await using var own = await registered.OpenConnectionAsync();
        Assert.NotEqual("1234ms", await own.ExecuteScalarAsync<string>("SHOW lock_timeout"));
        Assert.Equal(0L, await own.ExecuteScalarAsync<long>("SELECT count(*) FROM source_probe"));
    }

    [Fact]
    public void NothingConfigured_UsesTheSqliteFileUnderTheContentRoot()
    {
        using var host = Build(null, ("TwoPhase:Database:SqliteFile", "data/own.db"));

        Assert.Equal($"sqlite {Path.Combine(_root, "data", "own.db")}", host.Services.GetRequiredService<Database>().Describe());
    }

    [Fact]
    public void ProviderPostgresWithoutAConnection_IsRefused_NamingTheKeys()
    {
        using var host = Build(null, ("TwoPhase:Database:Provider", "postgres"));

        var refused = Assert.Throws<InvalidOperationException>(() => host.Services.GetRequiredService<Database>());

        Assert.Contains("TwoPhase:Database:ConnectionString or ConnectionStrings:TwoPhase", refused.Message, StringComparison.Ordinal);
    }

    private IHost Build(NpgsqlDataSource? registered, params (string Key, string? Value)[] settings)
    {
        Directory.CreateDirectory(_root);
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { ContentRootPath = _root });
        builder.Configuration.AddInMemoryCollection(settings.Where(s => s.Value is not null).Select(s => new KeyValuePair<string, string?>(s.Key, s.Value)).Append(new("TwoPhase:Secret", "sources-test")));
        if (registered is not null)
        {
            builder.Services.AddSingleton(registered);
        }

        builder.AddTwoPhase();
        return builder.Build();
    }
}
