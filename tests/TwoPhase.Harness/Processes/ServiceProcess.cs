using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace TwoPhase.Harness;

/// <summary>
/// One service as a child process: <c>dotnet &lt;Svc&gt;.dll --urls &lt;url&gt;</c> with its configuration in the
/// environment (and nothing of the caller's that would change it), its stdout and stderr appended to a log file. Can be
/// killed like kill -9 (the whole tree), paused (SIGSTOP) and resumed, and restarted with the same settings, which is
/// what crash tests need. Disposal kills it.
/// </summary>
public sealed class ServiceProcess : IAsyncDisposable
{
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan ProbeInterval = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan ExitWait = TimeSpan.FromSeconds(10);

    // Configuration a developer's or CI's shell might carry that must not leak into a service under test: the
    // services' own sections, the host's settings, and every TWOPHASE_* variable (a secret, a crash point).
    private static readonly string[] ScrubbedPrefixes =
        ["Seed__", "TwoPhase__", "Storage__", "Orders__", "Telemetry__", "Logging__", "ASPNETCORE_", "DOTNET_ENVIRONMENT", "URLS", "TWOPHASE_"];

    private readonly Lock _gate = new();
    private readonly string _dotnet;
    private readonly string _dllPath;
    private readonly Dictionary<string, string> _environment;
    private Process? _process;
    private StreamWriter? _log;
    private int _starts;

    public ServiceProcess(ServiceKind kind, string dllPath, Uri url, IReadOnlyDictionary<string, string> environment, string logPath, string? dotnet = null)
        : this(kind.ProjectName(), dllPath, url, environment, logPath, dotnet) => Kind = kind;

    /// <summary>A process that is none of the reference services (a sample), known by <paramref name="name"/> in messages.</summary>
    public ServiceProcess(string name, string dllPath, Uri url, IReadOnlyDictionary<string, string> environment, string logPath, string? dotnet = null)
    {
        Name = name;
        _dotnet = dotnet ?? DotnetHost.Path;
        _dllPath = dllPath;
        Url = url;
        _environment = new Dictionary<string, string>(environment, StringComparer.Ordinal);
        LogPath = logPath;
    }

    public ServiceKind Kind { get; }

    /// <summary>The project name, in messages and logs.</summary>
    public string Name { get; }

    public Uri Url { get; }

    /// <summary>
    /// The network namespace the process runs in (<c>ip netns exec &lt;ns&gt;</c>, which execs, so the process id stays the
    /// service's own for kill -9 and SIGSTOP); null: the caller's.
    /// </summary>
    public string? Namespace { get; init; }

    public string LogPath { get; }

    /// <summary>The environment of the next start (configuration as <c>Section__Key</c> variables); tests may change it between restarts.</summary>
    public IDictionary<string, string> Environment => _environment;

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

    /// <summary>
    /// Spawns the process, optionally with extra variables for this start only (a crash point); returns once it is
    /// spawned, not once it is ready (see <see cref="WaitReadyAsync"/>).
    /// </summary>
    public void Start(IReadOnlyDictionary<string, string>? onceEnvironment = null)
    {
        if (!File.Exists(_dllPath))
        {
            throw new ServiceStartException($"{Name}: {_dllPath} does not exist; build the solution (or the service) first.");
        }

        // Without this, a service already listening on the port (another run, another developer's services) would
        // answer the readiness probe while ours dies on "address in use", and the run would drive someone else's system.
        if (Namespace is null && Url.IsLoopback && !PortAllocator.IsFree(Url.Port))
        {
            throw new ServiceStartException($"{Name}: port {Url.Port} is already in use by another process; stop it or choose other ports.");
        }

        lock (_gate)
        {
            if (_process is { HasExited: false })
            {
                throw new InvalidOperationException($"{Name} is already running (pid {_process.Id}).");
            }

            _process?.Dispose();
            _log ??= new StreamWriter(new FileStream(LogPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite), new UTF8Encoding(encoderShouldEmitUTF8Identifier: false)) { AutoFlush = true };
            var info = new ProcessStartInfo(Namespace is null ? _dotnet : "ip")
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                // The content root (appsettings.json) is the working directory by default.
                WorkingDirectory = Path.GetDirectoryName(_dllPath)!,
            };
            if (Namespace is not null)
            {
                foreach (var a in (string[])["netns", "exec", Namespace, _dotnet])
                {
                    info.ArgumentList.Add(a);
                }
            }

            info.ArgumentList.Add(_dllPath);
            info.ArgumentList.Add("--urls");
            info.ArgumentList.Add(Url.GetLeftPart(UriPartial.Authority));
            foreach (var key in info.Environment.Keys.Where(k => ScrubbedPrefixes.Any(p => k.StartsWith(p, StringComparison.OrdinalIgnoreCase))).ToList())
            {
                info.Environment.Remove(key);
            }

            // A crash point aborts the process; no dump files for it.
            info.Environment["DOTNET_DbgEnableMiniDump"] = "0";
            foreach (var (key, value) in _environment.Concat(onceEnvironment ?? new Dictionary<string, string>()))
            {
                info.Environment[key] = value;
            }

            var process = new Process { StartInfo = info, EnableRaisingEvents = true };
            process.OutputDataReceived += (_, e) => WriteLog(e.Data, null);
            process.ErrorDataReceived += (_, e) => WriteLog(e.Data, "[stderr] ");
            _starts++;
            var once = onceEnvironment is { Count: > 0 } ? " with " + string.Join(", ", onceEnvironment.Select(kv => $"{kv.Key}={kv.Value}")) : "";
            _log.WriteLine($"==== {DateTimeOffset.Now:O} start #{_starts}: {(Namespace is null ? "" : $"ip netns exec {Namespace} ")}{_dotnet} {_dllPath} --urls {Url}{once}");
            if (!process.Start())
            {
                throw new ServiceStartException($"{Name}: the process did not start.");
            }

            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            _process = process;
        }
    }

    /// <summary>Polls <c>GET /health/ready</c> until it answers 2xx; throws with the log's tail if the process exits or time runs out.</summary>
    public async Task WaitReadyAsync(HttpClient http, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(http);
        var clock = Stopwatch.StartNew();
        string? lastProblem = null;
        while (clock.Elapsed < timeout)
        {
            var process = Current();
            if (process is null || process.HasExited)
            {
                throw new ServiceStartException(
                    $"{Name} exited (code {(process is null ? "?" : process.ExitCode.ToString(CultureInfo.InvariantCulture))}) before it was ready.\n{Tail()}");
            }

            using (var probe = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                probe.CancelAfter(ProbeTimeout);
                try
                {
                    using var response = await http.GetAsync(new Uri(Url, "/health/ready"), probe.Token);
                    // Someone answering while our process has died is not our service (e.g. a port taken in the meantime).
                    if (response.IsSuccessStatusCode && !process.HasExited)
                    {
                        return;
                    }

                    lastProblem = $"GET /health/ready answered {(int)response.StatusCode}";
                }
                catch (HttpRequestException ex)
                {
                    lastProblem = ex.Message;
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    lastProblem = $"GET /health/ready took longer than {ProbeTimeout.TotalSeconds:0} s";
                }
            }

            await Task.Delay(ProbeInterval, cancellationToken);
        }

        throw new ServiceStartException($"{Name} was not ready at {Url} within {timeout.TotalSeconds:0} s ({lastProblem}).\n{Tail()}");
    }

    /// <summary>Waits (bounded) for the process to exit by itself, as it does at a crash point; returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        var process = Current() ?? throw new InvalidOperationException($"{Name} was never started.");
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{Name} did not exit within {timeout.TotalSeconds:0} s.\n{Tail()}");
        }

        return process.ExitCode;
    }

    /// <summary>kill -9 of the service and any child it spawned; waits (bounded) until it is gone.</summary>
    public async Task KillAsync()
    {
        if (Current() is not { } process)
        {
            return;
        }

        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                WriteLog($"==== {DateTimeOffset.Now:O} killed", null);
            }
        }
        catch (InvalidOperationException)
        {
            // It exited between the check and the kill: the goal is reached.
        }

        using var wait = new CancellationTokenSource(ExitWait);
        try
        {
            // Also drains the redirected output, so the log holds the last lines.
            await process.WaitForExitAsync(wait.Token);
        }
        catch (OperationCanceledException)
        {
            WriteLog($"==== the process did not exit within {ExitWait.TotalSeconds:0} s of the kill", null);
        }
    }

    /// <summary>
    /// For process-exit handlers, where nothing can be awaited: kills the service tree without waiting.
    /// </summary>
    public void KillNow()
    {
        try
        {
            Current()?.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    /// <summary>SIGSTOP: the service stops where it is (connections stay open, nothing answers) until <see cref="Resume"/>.</summary>
    public void Pause()
    {
        var pid = ProcessId ?? throw new InvalidOperationException($"{Name} is not running.");
        Signals.Pause(pid);
        WriteLog($"==== {DateTimeOffset.Now:O} paused (SIGSTOP)", null);
    }

    /// <summary>SIGCONT: the paused service runs on. A no-op if it is not running.</summary>
    public void Resume()
    {
        if (ProcessId is { } pid)
        {
            Signals.Resume(pid);
            WriteLog($"==== {DateTimeOffset.Now:O} resumed (SIGCONT)", null);
        }
    }

    /// <summary>Kills the process (if running), starts it again with the same settings and waits until ready.</summary>
    public async Task RestartAsync(HttpClient http, TimeSpan readyTimeout, CancellationToken cancellationToken = default)
    {
        await KillAsync();
        Start();
        await WaitReadyAsync(http, readyTimeout, cancellationToken);
    }

    /// <summary>Everything the service has written to its log so far (all starts).</summary>
    public string ReadLog()
    {
        using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    /// <summary>Whether the log holds <paramref name="text"/>.</summary>
    public bool LogContains(string text) => File.Exists(LogPath) && ReadLog().Contains(text, StringComparison.Ordinal);

    /// <summary>The last lines of the log, headed by its path, for failure messages.</summary>
    public string Tail(int lines = 30)
    {
        try
        {
            return $"--- last lines of {LogPath} ---\n" + string.Join('\n', ReadLog().Split('\n').TakeLast(lines));
        }
        catch (IOException ex)
        {
            return $"--- could not read {LogPath}: {ex.Message}";
        }
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        lock (_gate)
        {
            _process?.Dispose();
            _process = null;
            _log?.Dispose();
            _log = null;
        }
    }

    private Process? Current()
    {
        lock (_gate)
        {
            return _process;
        }
    }

    private void WriteLog(string? line, string? prefix)
    {
        if (line is null)
        {
            return;
        }

        lock (_gate)
        {
            // Output can still arrive while the process is disposed; dropping it then is fine.
            _log?.WriteLine(prefix is null ? line : prefix + line);
        }
    }
}
