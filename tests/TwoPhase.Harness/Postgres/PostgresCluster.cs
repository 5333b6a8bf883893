using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace TwoPhase.Harness;

/// <summary>PostgreSQL is not installed where we looked, or the cluster could not be created or started.</summary>
public sealed class PostgresClusterException : Exception
{
    public PostgresClusterException()
    {
    }

    public PostgresClusterException(string message)
        : base(message)
    {
    }

    public PostgresClusterException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>How a throwaway cluster is made.</summary>
public sealed record PostgresClusterOptions
{
    /// <summary>
    /// Folder with initdb and pg_ctl. Default: <c>$PG_BIN</c>, else the newest <c>/usr/lib/postgresql/*/bin</c>
    /// (Debian, Ubuntu), else <c>/usr/bin</c> or <c>/usr/local/pgsql/bin</c>.
    /// </summary>
    public string? BinDirectory { get; init; }

    /// <summary>The cluster's folder is made under this one.</summary>
    public string ParentFolder { get; init; } = Path.GetTempPath();

    /// <summary>Start of the folder's name (a random suffix follows).</summary>
    public string Name { get; init; } = "twophase-pg";

    /// <summary>
    /// The first port tried; the next free one from here on 127.0.0.1 is taken. Below the kernel's ephemeral range
    /// (32768+ on Linux) on purpose: while the cluster is down for a restart, a port from that range can be taken as
    /// the source port of one of our own connections, and the restart would fail on "address in use".
    /// </summary>
    public int FirstPort { get; init; } = 15432;

    /// <summary>Ports tried from <see cref="FirstPort"/> on.</summary>
    public int PortTries { get; init; } = 200;

    public int MaxConnections { get; init; } = 100;

    public string SharedBuffers { get; init; } = "32MB";

    /// <summary>
    /// More server settings as <c>name = value</c> lines, written after the durable defaults so they win (a test of
    /// how the services meet an unsafe server, e.g. <c>fsync = off</c>).
    /// </summary>
    public IReadOnlyList<string> ExtraSettings { get; init; } = [];

    /// <summary>
    /// The network namespace the server runs in (its tools run through <c>ip netns exec &lt;ns&gt; runuser -u postgres --</c>);
    /// null: the caller's. In a namespace of its own the port is not checked on this host's loopback: it is free there.
    /// </summary>
    public string? Namespace { get; init; }

    /// <summary>The one address the server listens on (<c>listen_addresses</c>) and its connection string names.</summary>
    public string ListenAddress { get; init; } = "127.0.0.1";

    /// <summary>A network (CIDR) whose clients get trust authentication besides loopback, e.g. the topology's 10.211.0.0/24.</summary>
    public string? TrustedNetwork { get; init; }

    /// <summary>Bound of initdb, and of each start and stop.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(60);
}

/// <summary>
/// A throwaway PostgreSQL cluster of its own, in a temporary folder, listening on 127.0.0.1 only, trust auth for
/// the <c>postgres</c> user, durable as in production (<c>fsync</c> and <c>synchronous_commit</c> on). Run as the
/// <c>postgres</c> user (runuser) when we are root, since PostgreSQL refuses to run as root. It can be stopped the
/// way a crash stops it (<see cref="StopImmediateAsync"/>: no checkpoint, unwritten WAL buffers lost, crash recovery
/// at the next start) and started again with its data. Disposal stops it and removes the folder.
/// </summary>
public sealed class PostgresCluster : IAsyncDisposable
{
    private readonly PostgresClusterOptions _options;
    private readonly string _bin;
    private readonly Lock _gate = new();
    private bool _running;
    private bool _disposed;

    private PostgresCluster(PostgresClusterOptions options, string bin, string folder)
    {
        _options = options;
        _bin = bin;
        Folder = folder;
    }

    /// <summary>The cluster's folder: data/, server.log, the Unix socket.</summary>
    public string Folder { get; }

    public string DataDirectory => Path.Combine(Folder, "data");

    public string LogPath => Path.Combine(Folder, "server.log");

    public int Port { get; private set; }

    /// <summary>Connects to the maintenance database as postgres; set Database for others.</summary>
    public string ConnectionString => $"Host={_options.ListenAddress};Port={Port};Username=postgres;Database=postgres";

    /// <summary>The postmaster's process id (the first line of postmaster.pid), or null when it is not running.</summary>
    public int? PostmasterProcessId
    {
        get
        {
            try
            {
                var first = File.ReadLines(Path.Combine(DataDirectory, "postmaster.pid")).FirstOrDefault();
                return int.TryParse(first, CultureInfo.InvariantCulture, out var pid) && Directory.Exists($"/proc/{pid}") ? pid : null;
            }
            catch (IOException)
            {
                return null;
            }
        }
    }

    public bool IsRunning
    {
        get
        {
            lock (_gate)
            {
                return _running;
            }
        }
    }

    /// <summary>Where initdb and pg_ctl are, or a message that says PostgreSQL is missing and what to do.</summary>
    public static string FindBinDirectory(string? configured = null)
    {
        var candidates = new List<string>();
        if ((configured ?? Environment.GetEnvironmentVariable("PG_BIN")) is { Length: > 0 } given)
        {
            candidates.Add(given);
        }
        else
        {
            const string debian = "/usr/lib/postgresql";
            if (Directory.Exists(debian))
            {
                candidates.AddRange(Directory.GetDirectories(debian)
                    .Select(d => (Dir: d, Version: int.TryParse(Path.GetFileName(d), CultureInfo.InvariantCulture, out var v) ? v : -1))
                    .OrderByDescending(x => x.Version)
                    .Select(x => Path.Combine(x.Dir, "bin")));
            }

            candidates.AddRange(["/usr/bin", "/usr/local/pgsql/bin"]);
        }

        return candidates.FirstOrDefault(d => File.Exists(Path.Combine(d, "initdb")) && File.Exists(Path.Combine(d, "pg_ctl")))
            ?? throw new PostgresClusterException(
                $"PostgreSQL is not installed: no initdb and pg_ctl in {string.Join(", ", candidates)}. " +
                "Install the PostgreSQL server (Debian: apt-get install postgresql) or set PG_BIN to the folder that holds initdb.");
    }

    /// <summary>initdb, configure, start on the first free port from <see cref="PostgresClusterOptions.FirstPort"/>, and wait until it accepts connections.</summary>
    public static async Task<PostgresCluster> CreateAsync(PostgresClusterOptions? options, CancellationToken cancellationToken)
    {
        options ??= new PostgresClusterOptions();
        var bin = FindBinDirectory(options.BinDirectory);
        if (IsRoot && !UserExists("postgres"))
        {
            throw new PostgresClusterException("Running as root, PostgreSQL must run as the 'postgres' user, and there is none (the postgresql package creates it).");
        }

        var folder = Path.Combine(options.ParentFolder, $"{options.Name}-{Guid.NewGuid():N}"[..(options.Name.Length + 9)]);
        Directory.CreateDirectory(folder);
        var cluster = new PostgresCluster(options, bin, folder);
        try
        {
            if (OperatingSystem.IsWindows())
            {
                throw new PostgresClusterException("Throwaway PostgreSQL clusters are made on Linux and macOS only.");
            }

            File.SetUnixFileMode(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
            if (IsRoot)
            {
                await RunAsync("chown", ["postgres:", folder], asPostgres: false, options.Timeout, cancellationToken);
            }

            // --no-sync: syncing a fresh throwaway cluster buys nothing; the server itself runs with fsync on.
            await cluster.RunPgAsync("initdb", ["-D", cluster.DataDirectory, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"], cancellationToken);
            await cluster.ListenOnFreePortAsync(cancellationToken);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts the cluster with its data (crash recovery replays the WAL after an immediate stop) and waits until it accepts connections.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await RunPgAsync("pg_ctl", ["-D", DataDirectory, "-l", LogPath, "-w", "-t", Seconds(_options.Timeout), "start"], cancellationToken);
        lock (_gate)
        {
            _running = true;
        }
    }

    /// <summary>
    /// <c>pg_ctl stop -m immediate</c>: every server process quits at once, without a checkpoint and without writing
    /// the WAL still in its buffers, as in a crash; commits made with synchronous_commit off may be lost, forced ones
    /// are not. Returns once the postmaster is gone.
    /// </summary>
    public async Task StopImmediateAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _running = false;
        }

        await RunPgAsync("pg_ctl", ["-D", DataDirectory, "-m", "immediate", "-w", "-t", Seconds(_options.Timeout), "stop"], cancellationToken);
    }

    /// <summary>For process-exit handlers, where nothing can be awaited: stops the server immediately, bounded, ignoring errors.</summary>
    public void StopNow()
    {
        try
        {
            using var process = Process.Start(StartInfo(Path.Combine(_bin, "pg_ctl"), ["-D", DataDirectory, "-m", "immediate", "-w", "-t", "10", "stop"], asPostgres: true, _options.Namespace));
            process?.WaitForExit(TimeSpan.FromSeconds(15));
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            // Nothing more can be done on the way out.
        }
    }

    /// <summary>The last lines of the server log, for error messages.</summary>
    public string ReadLogTail(int lines = 20)
    {
        try
        {
            using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            return string.Join('\n', reader.ReadToEnd().Split('\n').TakeLast(lines));
        }
        catch (IOException e)
        {
            return $"(could not read {LogPath}: {e.Message})";
        }
    }

    public async ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
        }

        if (Directory.Exists(DataDirectory))
        {
            try
            {
                await StopImmediateAsync(CancellationToken.None);
            }
            catch (PostgresClusterException)
            {
                // Not running (never started, or already stopped): nothing to stop.
            }
        }

        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Left to the temp folder's cleanup.
        }
    }

    private async Task ListenOnFreePortAsync(CancellationToken cancellationToken)
    {
        var conf = Path.Combine(DataDirectory, "postgresql.conf");
        var original = await File.ReadAllTextAsync(conf, cancellationToken);
        if (_options.TrustedNetwork is { } network)
        {
            // initdb --auth=trust trusts loopback only; the topology's hosts connect from their own addresses.
            await File.AppendAllTextAsync(Path.Combine(DataDirectory, "pg_hba.conf"), $"\nhost all all {network} trust\n", cancellationToken);
        }

        string? lastProblem = null;
        for (var port = _options.FirstPort; port < _options.FirstPort + _options.PortTries; port++)
        {
            if (_options.Namespace is null && !IsFree(port))
            {
                continue;
            }

            Port = port;
            // Appended to the file (kept by its owner, postgres), so every restart uses the same settings.
            var settings = new StringBuilder(original)
                .AppendLine()
                .AppendLine("# twophase throwaway cluster")
                .AppendLine(CultureInfo.InvariantCulture, $"listen_addresses = '{_options.ListenAddress}'")
                .AppendLine(CultureInfo.InvariantCulture, $"port = {port}")
                .AppendLine(CultureInfo.InvariantCulture, $"unix_socket_directories = '{Folder}'")
                .AppendLine("fsync = on")
                .AppendLine("synchronous_commit = on")
                .AppendLine(CultureInfo.InvariantCulture, $"max_connections = {_options.MaxConnections}")
                .AppendLine(CultureInfo.InvariantCulture, $"shared_buffers = {_options.SharedBuffers}")
                .AppendJoin(Environment.NewLine, _options.ExtraSettings)
                .AppendLine();
            await File.WriteAllTextAsync(conf, settings.ToString(), cancellationToken);
            try
            {
                await StartAsync(cancellationToken);
                return;
            }
            catch (PostgresClusterException e) when (ReadLogTail().Contains("could not bind", StringComparison.Ordinal))
            {
                // Taken between our check and the server's bind: try the next port.
                lastProblem = e.Message;
            }
        }

        throw new PostgresClusterException(
            $"No free port for PostgreSQL in {_options.FirstPort}-{_options.FirstPort + _options.PortTries - 1} on {_options.ListenAddress}{(lastProblem is null ? "" : $" ({lastProblem})")}.");
    }

    private async Task RunPgAsync(string tool, IReadOnlyList<string> arguments, CancellationToken ct)
    {
        var output = await RunAsync(Path.Combine(_bin, tool), arguments, asPostgres: true, _options.Timeout + TimeSpan.FromSeconds(10), ct, throwOnError: false, _options.Namespace);
        if (output.ExitCode != 0)
        {
            throw new PostgresClusterException(
                $"{tool} {string.Join(' ', arguments)} failed (exit {output.ExitCode}): {output.Text.Trim()}\nLast lines of {LogPath}:\n{ReadLogTail()}");
        }
    }

    private static async Task<(int ExitCode, string Text)> RunAsync(
        string file, IReadOnlyList<string> arguments, bool asPostgres, TimeSpan timeout, CancellationToken ct, bool throwOnError = true, string? @namespace = null)
    {
        using var process = new Process { StartInfo = StartInfo(file, arguments, asPostgres, @namespace) };
        var text = new StringBuilder();
        process.OutputDataReceived += (_, e) => Append(text, e.Data);
        process.ErrorDataReceived += (_, e) => Append(text, e.Data);
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new PostgresClusterException($"Could not run {file}: {e.Message}", e);
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bound.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(bound.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            if (ct.IsCancellationRequested)
            {
                throw;
            }

            throw new PostgresClusterException($"{file} {string.Join(' ', arguments)} did not finish within {timeout.TotalSeconds:0} s.");
        }

        string all;
        lock (text)
        {
            all = text.ToString();
        }

        if (throwOnError && process.ExitCode != 0)
        {
            throw new PostgresClusterException($"{file} {string.Join(' ', arguments)} failed (exit {process.ExitCode}): {all.Trim()}");
        }

        return (process.ExitCode, all);
    }

    private static ProcessStartInfo StartInfo(string file, IReadOnlyList<string> arguments, bool asPostgres, string? @namespace = null)
    {
        var runAs = asPostgres && IsRoot;
        var info = new ProcessStartInfo(@namespace is not null ? "ip" : runAs ? "runuser" : file)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            // runuser keeps the working directory; postgres must be able to enter it.
            WorkingDirectory = "/",
        };
        if (@namespace is not null)
        {
            foreach (var a in (string[])["netns", "exec", @namespace])
            {
                info.ArgumentList.Add(a);
            }

            info.ArgumentList.Add(runAs ? "runuser" : file);
        }

        if (runAs)
        {
            foreach (var a in (string[])["-u", "postgres", "--", file])
            {
                info.ArgumentList.Add(a);
            }
        }

        foreach (var a in arguments)
        {
            info.ArgumentList.Add(a);
        }

        // Our own environment must not redirect the tools (another cluster's data directory or port).
        info.Environment.Remove("PGDATA");
        info.Environment.Remove("PGPORT");
        return info;
    }

    private static void Append(StringBuilder text, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (text)
        {
            // Bounded: only a failure's message needs it.
            if (text.Length < 16_000)
            {
                text.AppendLine(line);
            }
        }
    }

    private static bool IsRoot => Environment.UserName == "root";

    private static bool UserExists(string name) =>
        File.Exists("/etc/passwd") && File.ReadLines("/etc/passwd").Any(l => l.StartsWith(name + ":", StringComparison.Ordinal));

    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            listener.Stop();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static string Seconds(TimeSpan t) => ((int)Math.Ceiling(t.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
}
