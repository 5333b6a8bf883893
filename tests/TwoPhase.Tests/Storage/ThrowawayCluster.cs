using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace TwoPhase.Tests.Storage;

/// <summary>
/// A PostgreSQL cluster of the test's own: initdb in a temporary folder, started on a free loopback port with the
/// server settings given, stopped and removed at dispose. For server-wide settings (fsync) that a test must not
/// change on the shared server. Needs the PostgreSQL 15 binaries (<c>PG_BIN</c>, default /usr/lib/postgresql/15/bin),
/// as scripts/pg-start.sh does; as root it runs them as the postgres user.
/// </summary>
public sealed class ThrowawayCluster : IAsyncDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(120);
    private readonly string _folder;
    private readonly string _bin;

    private ThrowawayCluster(string folder, string bin, int port)
    {
        _folder = folder;
        _bin = bin;
        Port = port;
    }

    public int Port { get; }

    public string ConnectionString => $"Host=127.0.0.1;Port={Port};Username=postgres;Pooling=false";

    public static async Task<ThrowawayCluster> StartAsync(params string[] settings)
    {
        var bin = Environment.GetEnvironmentVariable("PG_BIN") ?? "/usr/lib/postgresql/15/bin";
        if (!File.Exists(Path.Combine(bin, "initdb")))
        {
            throw new InvalidOperationException($"This test starts a PostgreSQL cluster of its own and needs {bin}/initdb: install the 'postgresql' package, or set PG_BIN.");
        }

        var folder = Directory.CreateTempSubdirectory("twophase-pg-own-").FullName;
        var cluster = new ThrowawayCluster(folder, bin, FreePort());
        try
        {
            if (Environment.UserName == "root")
            {
                await RunAsync("chown", "postgres:", folder);
            }

            await cluster.AsPostgresAsync("initdb", "-D", $"{folder}/data", "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8");
            var options = string.Join(' ', new[] { "-c listen_addresses=127.0.0.1", $"-c port={cluster.Port}", $"-c unix_socket_directories={folder}" }
                .Concat(settings.Select(s => $"-c {s}")));
            await cluster.AsPostgresAsync("pg_ctl", "-D", $"{folder}/data", "-l", $"{folder}/server.log", "-w", "-t", "60", "-o", options, "start");
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (File.Exists(Path.Combine(_folder, "data", "postmaster.pid")))
        {
            await AsPostgresAsync("pg_ctl", "-D", $"{_folder}/data", "-m", "immediate", "-w", "stop");
        }

        Directory.Delete(_folder, recursive: true);
    }

    private Task AsPostgresAsync(string tool, params string[] args) =>
        Environment.UserName == "root"
            ? RunAsync("runuser", ["-u", "postgres", "--", Path.Combine(_bin, tool), .. args])
            : RunAsync(Path.Combine(_bin, tool), args);

    private static async Task RunAsync(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var bound = new CancellationTokenSource(Bound);
        try
        {
            await process.WaitForExitAsync(bound.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish within {Bound.TotalSeconds:0} s");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited with {process.ExitCode}: {await output}{await error}");
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
