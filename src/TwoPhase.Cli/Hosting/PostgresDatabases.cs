using Npgsql;

namespace TwoPhase.Cli.Hosting;

/// <summary>
/// Three fresh databases on one PostgreSQL server, one per service, created through the
/// <c>postgres</c> maintenance database and dropped again at the end of a run.
/// </summary>
public sealed class PostgresDatabases
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(30);
    private readonly string _adminConnectionString;

    private PostgresDatabases(string adminConnectionString, IReadOnlyDictionary<ServiceKind, string> names, IReadOnlyDictionary<ServiceKind, string> connectionStrings)
    {
        _adminConnectionString = adminConnectionString;
        Names = names;
        ConnectionStrings = connectionStrings;
    }

    public IReadOnlyDictionary<ServiceKind, string> Names { get; }

    /// <summary>The server's <c>max_connections</c> less its reserved superuser slots: what all three services share.</summary>
    public int AvailableConnections { get; private set; }

    /// <summary>
    /// A <c>Database:MaxPoolSize</c> for each service so the three together stay under the server's
    /// connection limit. Each service opens up to 1.5 pools' worth (a durable pool and a relaxed one
    /// half its size), and some headroom is left for psql, the CLI and anyone else on the server.
    /// Capped at the services' own default of 64.
    /// </summary>
    public int PoolSizePerService => Math.Clamp((AvailableConnections - 10) / ServiceKinds.All.Count * 2 / 3, 4, 64);

    /// <summary>The user's connection string with <c>Database</c> set to each service's database.</summary>
    public IReadOnlyDictionary<ServiceKind, string> ConnectionStrings { get; }

    /// <summary>Creates <c>{prefix}_order</c>, <c>{prefix}_storage</c> and <c>{prefix}_delivery</c>.</summary>
    /// <param name="connectionString">Host, port and credentials; any Database in it is replaced.</param>
    /// <param name="prefix">Lowercase letters, digits and underscores only: it becomes part of an identifier.</param>
    /// <param name="cancellationToken">Cancels the creation.</param>
    public static async Task<PostgresDatabases> CreateAsync(string connectionString, string prefix, CancellationToken cancellationToken)
    {
        if (prefix.Length == 0 || prefix.Length > 50 || !prefix.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_'))
        {
            throw new ArgumentException($"'{prefix}' is not a safe database name prefix.", nameof(prefix));
        }

        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (ArgumentException ex)
        {
            throw new ServiceStartException($"--postgres: not a valid connection string: {ex.Message}", ex);
        }

        var admin = new NpgsqlConnectionStringBuilder(builder.ConnectionString) { Database = "postgres", Pooling = false };
        var names = ServiceKinds.All.ToDictionary(k => k, k => $"{prefix}_{k.ShortName()}");
        var strings = names.ToDictionary(
            kv => kv.Key,
            kv => new NpgsqlConnectionStringBuilder(builder.ConnectionString) { Database = kv.Value }.ConnectionString);
        var databases = new PostgresDatabases(admin.ConnectionString, names, strings);
        try
        {
            databases.AvailableConnections = await databases.QueryIntAsync(
                "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int", cancellationToken);
            foreach (var name in names.Values)
            {
                // Names are built from a checked prefix above, so quoting them is enough.
                await databases.ExecuteAsync($"CREATE DATABASE \"{name}\"", cancellationToken);
            }
        }
        catch (NpgsqlException ex)
        {
            await databases.DropAsync(CancellationToken.None);
            throw new ServiceStartException($"PostgreSQL at {builder.Host}:{builder.Port}: could not create the demo databases: {ex.Message}", ex);
        }

        return databases;
    }

    /// <summary>Drops the three databases, disconnecting anyone still on them. Errors are collected, not thrown half-way.</summary>
    public async Task<IReadOnlyList<string>> DropAsync(CancellationToken cancellationToken)
    {
        var problems = new List<string>();
        foreach (var name in Names.Values)
        {
            try
            {
                await ExecuteAsync($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", cancellationToken);
            }
            catch (NpgsqlException ex)
            {
                problems.Add($"{name}: {ex.Message}");
            }
        }

        return problems;
    }

    private async Task<int> QueryIntAsync(string sql, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(_adminConnectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = (int)CommandTimeout.TotalSeconds };
        return Convert.ToInt32(await command.ExecuteScalarAsync(ct), System.Globalization.CultureInfo.InvariantCulture);
    }

    private async Task ExecuteAsync(string sql, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(_adminConnectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = (int)CommandTimeout.TotalSeconds };
        await command.ExecuteNonQueryAsync(ct);
    }
}
