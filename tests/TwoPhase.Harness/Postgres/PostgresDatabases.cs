using System.Globalization;
using Npgsql;

namespace TwoPhase.Harness;

/// <summary>
/// A fresh database per service, <c>{prefix}_order</c>, <c>{prefix}_delivery</c> and <c>{prefix}_storage</c>, created
/// through each server's <c>postgres</c> maintenance database and dropped again at the end of a run. The services may
/// share one server or each have their own (a test that crashes a server, chaos's throwaway clusters).
/// </summary>
public sealed class PostgresDatabases
{
    /// <summary>The server (a connection string without Database) the PostgreSQL tests create their databases on.</summary>
    public const string TestServerVariable = "TWOPHASE_TEST_POSTGRES";

    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(30);

    private PostgresDatabases(IReadOnlyDictionary<ServiceKind, string> servers, IReadOnlyDictionary<ServiceKind, string> names, IReadOnlyDictionary<ServiceKind, string> connectionStrings)
    {
        Servers = servers;
        Names = names;
        ConnectionStrings = connectionStrings;
    }

    /// <summary>Each service's server, as given.</summary>
    public IReadOnlyDictionary<ServiceKind, string> Servers { get; }

    public IReadOnlyDictionary<ServiceKind, string> Names { get; }

    /// <summary>The server's connection string with <c>Database</c> set to each service's database.</summary>
    public IReadOnlyDictionary<ServiceKind, string> ConnectionStrings { get; }

    /// <summary>The smallest <c>max_connections</c> less its reserved superuser slots among the servers.</summary>
    public int AvailableConnections { get; private set; }

    /// <summary>
    /// A <c>Database:MaxPoolSize</c> for each service so the services on one server together stay under its connection
    /// limit. Each service opens up to 1.5 pools' worth (a durable pool and a relaxed one half its size), and some
    /// headroom is left for psql, the CLI and anyone else on the server. Capped at the services' own default of 64.
    /// </summary>
    public int PoolSizePerService { get; private set; }

    /// <summary><c>$TWOPHASE_TEST_POSTGRES</c>; a missing variable fails the test: PostgreSQL tests never skip and never fall back to SQLite.</summary>
    public static string TestServer()
    {
        var value = Environment.GetEnvironmentVariable(TestServerVariable);
        return string.IsNullOrWhiteSpace(value)
            ? throw new InvalidOperationException(
                $"{TestServerVariable} is not set, so the PostgreSQL tests cannot run (they never skip and never fall back to SQLite). " +
                $"Point it at a PostgreSQL server the tests may create databases on, e.g. {TestServerVariable}=\"Host=127.0.0.1;Port=5433;Username=postgres\" " +
                "(scripts/pg-start.sh starts a throwaway server; .ci/run exports the variable).")
            : value;
    }

    /// <summary>Creates the three databases on one server.</summary>
    public static Task<PostgresDatabases> CreateAsync(string server, string prefix, CancellationToken cancellationToken) =>
        CreateAsync(ServiceKinds.All.ToDictionary(k => k, _ => server), prefix, cancellationToken);

    /// <summary>Creates each service's database on its server.</summary>
    /// <param name="servers">Host, port and credentials per service; any Database in them is replaced.</param>
    /// <param name="prefix">Lowercase letters, digits and underscores only: it becomes part of an identifier.</param>
    /// <param name="cancellationToken">Cancels the creation; what was made is dropped.</param>
    public static async Task<PostgresDatabases> CreateAsync(IReadOnlyDictionary<ServiceKind, string> servers, string prefix, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(servers);
        if (prefix.Length == 0 || prefix.Length > 50 || !prefix.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_'))
        {
            throw new ArgumentException($"'{prefix}' is not a safe database name prefix.", nameof(prefix));
        }

        var builders = new Dictionary<ServiceKind, NpgsqlConnectionStringBuilder>();
        foreach (var (kind, server) in servers)
        {
            try
            {
                builders[kind] = new NpgsqlConnectionStringBuilder(server);
            }
            catch (ArgumentException ex)
            {
                throw new ServiceStartException($"PostgreSQL: not a valid connection string: {ex.Message}", ex);
            }
        }

        var names = servers.Keys.ToDictionary(k => k, k => $"{prefix}_{k.ShortName()}");
        var strings = names.ToDictionary(kv => kv.Key, kv => new NpgsqlConnectionStringBuilder(builders[kv.Key].ConnectionString) { Database = kv.Value }.ConnectionString);
        var databases = new PostgresDatabases(servers, names, strings);
        try
        {
            var available = new List<int>();
            var pools = new List<int>();
            foreach (var group in servers.Keys.GroupBy(k => Admin(servers[k]), StringComparer.Ordinal))
            {
                var connections = await QueryIntAsync(group.Key,
                    "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int", cancellationToken);
                available.Add(connections);
                pools.Add(Math.Clamp((connections - 10) / group.Count() * 2 / 3, 4, 64));
            }

            databases.AvailableConnections = available.Min();
            databases.PoolSizePerService = pools.Min();
            foreach (var (kind, name) in names)
            {
                // Names are built from a checked prefix above, so quoting them is enough.
                await ExecuteAsync(Admin(servers[kind]), $"CREATE DATABASE \"{name}\"", cancellationToken);
            }
        }
        catch (NpgsqlException ex)
        {
            await databases.DropAsync(CancellationToken.None);
            var where = string.Join(", ", builders.Values.Select(b => $"{b.Host}:{b.Port}").Distinct());
            throw new ServiceStartException($"PostgreSQL at {where}: could not create the services' databases: {ex.Message}", ex);
        }

        return databases;
    }

    /// <summary>Drops the databases, disconnecting anyone still on them. Errors are collected, not thrown half-way.</summary>
    public async Task<IReadOnlyList<string>> DropAsync(CancellationToken cancellationToken)
    {
        var problems = new List<string>();
        foreach (var (kind, name) in Names)
        {
            try
            {
                await ExecuteAsync(Admin(Servers[kind]), $"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", cancellationToken);
            }
            catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException)
            {
                problems.Add($"{name}: {ex.Message}");
            }
        }

        return problems;
    }

    private static string Admin(string server) =>
        new NpgsqlConnectionStringBuilder(server) { Database = "postgres", Pooling = false }.ConnectionString;

    private static async Task<int> QueryIntAsync(string admin, string sql, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(admin);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = (int)CommandTimeout.TotalSeconds };
        return Convert.ToInt32(await command.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture);
    }

    private static async Task ExecuteAsync(string admin, string sql, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(admin);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = (int)CommandTimeout.TotalSeconds };
        await command.ExecuteNonQueryAsync(ct);
    }
}
