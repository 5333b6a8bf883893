using Npgsql;

namespace TwoPhase.Cli.Bench;

/// <summary>What the bench needs to know about the PostgreSQL server before trusting its figures.</summary>
/// <param name="Version">server_version.</param>
/// <param name="Fsync">The fsync setting; durable means on.</param>
/// <param name="SynchronousCommit">The server default; durable means on (or remote_*): the services' forced writes rely on it.</param>
/// <param name="PostmasterPid">The cluster's postmaster, when it runs on this machine and /proc shows it; else null (CPU n/a).</param>
public sealed record PostgresServer(string Version, string Fsync, string SynchronousCommit, int? PostmasterPid)
{
    private const int CommandTimeoutSeconds = 10;

    public bool Durable => Fsync == "on" && SynchronousCommit is "on" or "remote_write" or "remote_apply";

    /// <summary>Connects once (to the maintenance database) and reads the settings and the backend's parent.</summary>
    public static async Task<PostgresServer> InspectAsync(string connectionString, CancellationToken cancellationToken)
    {
        var admin = new NpgsqlConnectionStringBuilder(connectionString) { Database = "postgres", Pooling = false };
        await using var connection = new NpgsqlConnection(admin.ConnectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(
            "SELECT current_setting('server_version'), current_setting('fsync'), current_setting('synchronous_commit'), pg_backend_pid()",
            connection) { CommandTimeout = CommandTimeoutSeconds };
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        var backend = reader.GetInt32(3);
        return new PostgresServer(reader.GetString(0), reader.GetString(1), reader.GetString(2), FindPostmaster(backend));
    }

    /// <summary>
    /// Our backend's parent is the postmaster. Both must be named postgres here: a pid from a remote server
    /// could name an unrelated local process.
    /// </summary>
    private static int? FindPostmaster(int backendPid) =>
        CpuMeter.ParentOf(backendPid) is { Command: "postgres", ParentPid: var parent }
        && CpuMeter.ParentOf(parent) is { Command: "postgres" }
            ? parent
            : null;
}
