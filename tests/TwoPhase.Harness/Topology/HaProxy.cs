using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace TwoPhase.Harness.Topology;

/// <summary>How one HAProxy is set up: where it listens, the replicas behind it, where its config and log go.</summary>
public sealed record HaProxyOptions(string Name, string ListenAddress, int Port, IReadOnlyList<Uri> Backends, string Folder)
{
    /// <summary>The health check's path; a backend is in rotation while it answers 200 there.</summary>
    public string HealthPath { get; init; } = "/health/ready";

    /// <summary>The network namespace it runs in; null: the caller's (127.0.0.1 without namespaces).</summary>
    public string? Namespace { get; init; }

    /// <summary><c>leastconn</c> (the default: a paused or slow replica collects fewer new requests) or <c>roundrobin</c>.</summary>
    public string Balance { get; init; } = "leastconn";

    /// <summary>How long HAProxy may take to listen after it was spawned.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(20);
}

/// <summary>
/// One HAProxy in front of a service's replicas: <c>haproxy -db -f &lt;cfg&gt;</c> in its namespace (or on the caller's
/// loopback), HTTP mode with keep-alive, health checks on <see cref="HaProxyOptions.HealthPath"/> every 500 ms, a
/// replica out after 2 failed checks and back after 2 good ones, connection failures retried on another replica, every
/// timeout bounded (docs/scaling.md, "Load balancer"). Its admin socket answers which backends are up.
/// </summary>
public sealed class HaProxy : IAsyncDisposable
{
    private static readonly TimeSpan ExitWait = TimeSpan.FromSeconds(10);

    private readonly Lock _gate = new();
    private Process? _process;
    private StreamWriter? _log;
    private bool _disposed;

    private HaProxy(HaProxyOptions options)
    {
        Options = options;
        Url = new Uri($"http://{options.ListenAddress}:{options.Port.ToString(CultureInfo.InvariantCulture)}/");
        ConfigPath = Path.Combine(options.Folder, options.Name + ".cfg");
        LogPath = Path.Combine(options.Folder, options.Name + ".log");
        SocketPath = Path.Combine(options.Folder, options.Name + ".sock");
    }

    public HaProxyOptions Options { get; }

    /// <summary>Where clients reach the replicas behind it.</summary>
    public Uri Url { get; }

    public string ConfigPath { get; }

    /// <summary>HAProxy's own output: health-check changes and failed requests.</summary>
    public string LogPath { get; }

    /// <summary>The admin socket (a Unix socket, so reachable from any namespace).</summary>
    public string SocketPath { get; }

    public int? ProcessId
    {
        get
        {
            lock (_gate)
            {
                return _process is { HasExited: false } p ? p.Id : null;
            }
        }
    }

    public bool IsRunning => ProcessId is not null;

    /// <summary>Writes the config, checks it with <c>haproxy -c</c>, starts it and waits (bounded) until it listens.</summary>
    public static async Task<HaProxy> StartAsync(HaProxyOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Backends.Count == 0)
        {
            throw new ArgumentException("An HAProxy needs at least one backend.", nameof(options));
        }

        if (options.Balance is not ("leastconn" or "roundrobin"))
        {
            throw new ArgumentException($"Balance '{options.Balance}' is neither leastconn nor roundrobin.", nameof(options));
        }

        Directory.CreateDirectory(options.Folder);
        var proxy = new HaProxy(options);
        try
        {
            await File.WriteAllTextAsync(proxy.ConfigPath, Config(options, proxy.SocketPath), cancellationToken);
            var haproxy = HostCommand.Find("haproxy") ?? throw new TopologyException("haproxy is not installed (apt-get install haproxy).");
            await HostCommand.RunAsync(haproxy, ["-c", "-q", "-f", proxy.ConfigPath], cancellationToken: cancellationToken);
            await proxy.StartProcessAsync(cancellationToken);
            return proxy;
        }
        catch
        {
            await proxy.DisposeAsync();
            throw;
        }
    }

    /// <summary>The configuration file's text (docs/scaling.md explains each setting).</summary>
    public static string Config(HaProxyOptions options, string socketPath)
    {
        ArgumentNullException.ThrowIfNull(options);
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"""
            # {options.Name}: written by the TwoPhase harness (docs/scaling.md, "Load balancer")
            global
                log stdout format raw local0 info
                maxconn 4000
                stats socket {socketPath} mode 600 level admin
                hard-stop-after 5s

            defaults
                mode http
                log global
                option httplog
                option dontlog-normal
                option log-health-checks
                option http-keep-alive
                option redispatch
                retries 2
                retry-on conn-failure
                maxconn 2000
                timeout connect 1s
                timeout client 30s
                timeout server 30s
                timeout http-request 10s
                timeout http-keep-alive 10s
                timeout queue 5s
                timeout check 1s

            frontend {options.Name}
                bind {options.ListenAddress}:{options.Port}
                default_backend replicas

            backend replicas
                balance {options.Balance}
                option httpchk GET {options.HealthPath}
                http-check expect status 200
                default-server inter 500ms fall 2 rise 2

            """);
        for (var i = 0; i < options.Backends.Count; i++)
        {
            var backend = options.Backends[i];
            text.Append(CultureInfo.InvariantCulture, $"    server {ServerName(i)} {backend.Host}:{backend.Port} check\n");
        }

        return text.ToString();
    }

    /// <summary>Each backend's state as HAProxy's checks see it ("UP", "DOWN", "UP 1/2", "MAINT", ...), from its admin socket.</summary>
    public async Task<IReadOnlyDictionary<Uri, string>> BackendStatesAsync(CancellationToken cancellationToken = default)
    {
        var csv = await AdminAsync("show stat", cancellationToken);
        var states = new Dictionary<Uri, string>();
        foreach (var line in csv.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            // # pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,...
            var fields = line.Split(',');
            if (fields.Length > 17 && fields[0] == "replicas" && fields[1].StartsWith('b')
                && int.TryParse(fields[1][1..], CultureInfo.InvariantCulture, out var index) && index >= 1 && index <= Options.Backends.Count)
            {
                states[Options.Backends[index - 1]] = fields[17];
            }
        }

        return states;
    }

    /// <summary>Waits (bounded) until every backend is UP; throws with their states when time runs out.</summary>
    public async Task WaitAllBackendsUpAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        IReadOnlyDictionary<Uri, string> states = new Dictionary<Uri, string>();
        while (clock.Elapsed < timeout)
        {
            states = await BackendStatesAsync(cancellationToken);
            if (states.Count == Options.Backends.Count && states.Values.All(s => s == "UP"))
            {
                return;
            }

            await Task.Delay(200, cancellationToken);
        }

        throw new TopologyException($"{Options.Name}: not every backend was UP within {timeout.TotalSeconds:0} s: {string.Join(", ", states.Select(kv => $"{kv.Key.Authority} {kv.Value}"))}.");
    }

    /// <summary>kill -9; waits (bounded) until it is gone.</summary>
    public async Task KillAsync()
    {
        Process? process;
        lock (_gate)
        {
            process = _process;
        }

        if (process is null)
        {
            return;
        }

        try
        {
            if (!process.HasExited)
            {
                // SIGCONT first would not matter to SIGKILL; a paused HAProxy dies as well.
                process.Kill(entireProcessTree: true);
                WriteLog($"==== {DateTimeOffset.Now:O} killed");
            }
        }
        catch (InvalidOperationException)
        {
            // Exited in between.
        }

        using var wait = new CancellationTokenSource(ExitWait);
        try
        {
            await process.WaitForExitAsync(wait.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TopologyException($"{Options.Name} (pid {process.Id}) did not exit within {ExitWait.TotalSeconds:0} s of kill -9.");
        }
    }

    /// <summary>Kills it if it runs, starts it again with the same config and waits until it listens.</summary>
    public async Task RestartAsync(CancellationToken cancellationToken = default)
    {
        await KillAsync();
        await StartProcessAsync(cancellationToken);
    }

    /// <summary>SIGSTOP: connections stay open, nothing is forwarded, until <see cref="Resume"/>.</summary>
    public void Pause()
    {
        var pid = ProcessId ?? throw new InvalidOperationException($"{Options.Name} is not running.");
        Signals.Pause(pid);
        WriteLog($"==== {DateTimeOffset.Now:O} paused (SIGSTOP)");
    }

    /// <summary>SIGCONT; a no-op when it is not running.</summary>
    public void Resume()
    {
        if (ProcessId is { } pid)
        {
            Signals.Resume(pid);
            WriteLog($"==== {DateTimeOffset.Now:O} resumed (SIGCONT)");
        }
    }

    /// <summary>The last lines of its log, for failure messages.</summary>
    public string Tail(int lines = 20)
    {
        try
        {
            using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            return $"--- last lines of {LogPath} ---\n" + string.Join('\n', reader.ReadToEnd().Split('\n').TakeLast(lines));
        }
        catch (IOException e)
        {
            return $"--- could not read {LogPath}: {e.Message}";
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

        if (ProcessId is { } pid)
        {
            // A stopped process would not drain its output.
            Signals.Resume(pid);
        }

        try
        {
            await KillAsync();
        }
        catch (TopologyException)
        {
            // Left for the namespace's removal, which kills what runs in it.
        }

        lock (_gate)
        {
            _process?.Dispose();
            _process = null;
            _log?.Dispose();
            _log = null;
        }
    }

    private static string ServerName(int index) => "b" + (index + 1).ToString(CultureInfo.InvariantCulture);

    private async Task StartProcessAsync(CancellationToken ct)
    {
        var haproxy = HostCommand.Find("haproxy") ?? throw new TopologyException("haproxy is not installed (apt-get install haproxy).");
        var (file, arguments) = HostCommand.InNamespace(Options.Namespace, haproxy, ["-db", "-f", ConfigPath]);
        Process process;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_process is { HasExited: false })
            {
                throw new InvalidOperationException($"{Options.Name} is already running (pid {_process.Id}).");
            }

            _process?.Dispose();
            _log ??= new StreamWriter(new FileStream(LogPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite), new UTF8Encoding(false)) { AutoFlush = true };
            var info = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = "/" };
            foreach (var a in arguments)
            {
                info.ArgumentList.Add(a);
            }

            process = new Process { StartInfo = info, EnableRaisingEvents = true };
            process.OutputDataReceived += (_, e) => WriteLog(e.Data);
            process.ErrorDataReceived += (_, e) => WriteLog(e.Data);
            _log.WriteLine($"==== {DateTimeOffset.Now:O} start: {file} {string.Join(' ', arguments)}");
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            _process = process;
        }

        var clock = Stopwatch.StartNew();
        string? problem = null;
        while (clock.Elapsed < Options.StartTimeout)
        {
            if (process.HasExited)
            {
                throw new TopologyException($"{Options.Name} exited (code {process.ExitCode}) before it listened.\n{Tail()}");
            }

            try
            {
                using var client = new TcpClient();
                using var attempt = CancellationTokenSource.CreateLinkedTokenSource(ct);
                attempt.CancelAfter(TimeSpan.FromSeconds(1));
                await client.ConnectAsync(Options.ListenAddress, Options.Port, attempt.Token);
                if (File.Exists(SocketPath))
                {
                    return;
                }

                problem = "no admin socket yet";
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException && !ct.IsCancellationRequested)
            {
                problem = e.Message;
            }

            await Task.Delay(100, ct);
        }

        throw new TopologyException($"{Options.Name} did not listen on {Url} within {Options.StartTimeout.TotalSeconds:0} s ({problem}).\n{Tail()}");
    }

    private async Task<string> AdminAsync(string command, CancellationToken ct)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bound.CancelAfter(TimeSpan.FromSeconds(5));
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath), bound.Token);
        await socket.SendAsync(Encoding.ASCII.GetBytes(command + "\n"), SocketFlags.None, bound.Token);
        var answer = new StringBuilder();
        var buffer = new byte[16 * 1024];
        while (answer.Length < 1_000_000)
        {
            var read = await socket.ReceiveAsync(buffer, SocketFlags.None, bound.Token);
            if (read == 0)
            {
                break;
            }

            answer.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }

        return answer.ToString();
    }

    private void WriteLog(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_gate)
        {
            _log?.WriteLine(line);
        }
    }
}
