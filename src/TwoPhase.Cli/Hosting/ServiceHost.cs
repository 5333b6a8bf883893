using System.Diagnostics;
using System.Net;
using System.Text;

namespace TwoPhase.Cli.Hosting;

/// <summary>
/// One service as a child process: <c>dotnet &lt;Svc&gt;.dll --urls &lt;url&gt;</c> with the given
/// environment, its stdout and stderr appended to a log file. Can be killed (SIGKILL, whole tree)
/// and restarted with the same settings, which is what crash tests need.
/// </summary>
public sealed class ServiceHost : IAsyncDisposable
{
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan ProbeInterval = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan ExitWait = TimeSpan.FromSeconds(10);
    private const int LogTailLines = 30;

    private readonly Lock _gate = new();
    private readonly string _dotnet;
    private readonly string _dllPath;
    private readonly IReadOnlyDictionary<string, string> _environment;
    private Process? _process;
    private StreamWriter? _log;
    private int _starts;

    public ServiceHost(ServiceKind kind, string dotnet, string dllPath, Uri url, IReadOnlyDictionary<string, string> environment, string logPath)
    {
        Kind = kind;
        _dotnet = dotnet;
        _dllPath = dllPath;
        Url = url;
        _environment = environment;
        LogPath = logPath;
    }

    public ServiceKind Kind { get; }

    public Uri Url { get; }

    public string LogPath { get; }

    /// <summary>The environment the service is started with (configuration as <c>Section__Key</c> variables).</summary>
    public IReadOnlyDictionary<string, string> Environment => _environment;

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

    /// <summary>Starts the process; returns once it is spawned, not once it is ready (see <see cref="WaitReadyAsync"/>).</summary>
    public void Start()
    {
        if (!File.Exists(_dllPath))
        {
            throw new ServiceStartException($"{Kind.ProjectName()}: {_dllPath} does not exist; was it built?");
        }

        // Without this, a service already listening on the port (another run, another developer's
        // services) would answer the readiness probe while ours dies on "address in use", and the
        // run would quietly drive someone else's system.
        if (Url.IsLoopback && !PortAllocator.IsFree(Url.Port))
        {
            throw new ServiceStartException($"{Kind.ProjectName()}: port {Url.Port} is already in use by another process; stop it or choose other ports.");
        }

        lock (_gate)
        {
            if (_process is { HasExited: false })
            {
                throw new InvalidOperationException($"{Kind.ProjectName()} is already running (pid {_process.Id}).");
            }

            _process?.Dispose();
            _log ??= new StreamWriter(new FileStream(LogPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite), new UTF8Encoding(encoderShouldEmitUTF8Identifier: false)) { AutoFlush = true };
            var info = new ProcessStartInfo(_dotnet)
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                // The content root (appsettings.json) is the working directory by default.
                WorkingDirectory = Path.GetDirectoryName(_dllPath)!,
            };
            info.ArgumentList.Add(_dllPath);
            info.ArgumentList.Add("--urls");
            info.ArgumentList.Add(Url.GetLeftPart(UriPartial.Authority));
            foreach (var (key, value) in _environment)
            {
                info.Environment[key] = value;
            }

            var process = new Process { StartInfo = info, EnableRaisingEvents = true };
            process.OutputDataReceived += (_, e) => WriteLog(e.Data, null);
            process.ErrorDataReceived += (_, e) => WriteLog(e.Data, "[stderr] ");
            _starts++;
            _log.WriteLine($"==== {DateTimeOffset.Now:O} start #{_starts}: {_dotnet} {_dllPath} --urls {Url}");
            if (!process.Start())
            {
                throw new ServiceStartException($"{Kind.ProjectName()}: the process did not start.");
            }

            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            _process = process;
        }
    }

    /// <summary>
    /// Polls <c>GET /health/ready</c> (or, if the service has none, a cheap read of its API)
    /// until it answers 2xx. Throws with the log's tail if the process exits or time runs out.
    /// </summary>
    public async Task WaitReadyAsync(HttpClient http, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(http);
        var clock = Stopwatch.StartNew();
        var path = "/health/ready";
        string? lastProblem = null;
        while (clock.Elapsed < timeout)
        {
            Process? process;
            lock (_gate)
            {
                process = _process;
            }

            if (process is null || process.HasExited)
            {
                throw new ServiceStartException(
                    $"{Kind.ProjectName()} exited (code {(process is null ? "?" : process.ExitCode.ToString(System.Globalization.CultureInfo.InvariantCulture))}) before it was ready. Last lines of {LogPath}:\n{ReadLogTail()}");
            }

            using (var probe = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                probe.CancelAfter(ProbeTimeout);
                try
                {
                    using var response = await http.GetAsync(new Uri(Url, path), probe.Token);
                    if (response.IsSuccessStatusCode)
                    {
                        if (process.HasExited)
                        {
                            // Someone answered, but not our process: it died (e.g. on a port taken in the meantime).
                            continue;
                        }

                        return;
                    }

                    if (response.StatusCode == HttpStatusCode.NotFound && path != Kind.FallbackReadyPath())
                    {
                        path = Kind.FallbackReadyPath();
                        continue;
                    }

                    lastProblem = $"GET {path} answered {(int)response.StatusCode}";
                }
                catch (HttpRequestException ex)
                {
                    lastProblem = ex.Message;
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    lastProblem = $"GET {path} took longer than {ProbeTimeout.TotalSeconds:0} s";
                }
            }

            await Task.Delay(ProbeInterval, cancellationToken);
        }

        throw new ServiceStartException(
            $"{Kind.ProjectName()} was not ready at {Url} within {timeout.TotalSeconds:0} s ({lastProblem}). Last lines of {LogPath}:\n{ReadLogTail()}");
    }

    /// <summary>kill -9 of the service and any child it spawned; waits (bounded) until it is gone.</summary>
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
                process.Kill(entireProcessTree: true);
                WriteLog($"==== {DateTimeOffset.Now:O} killed by the CLI", null);
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

    /// <summary>SIGSTOP: the service stops where it is (connections stay open, nothing answers) until <see cref="Resume"/>.</summary>
    public void Pause()
    {
        var pid = ProcessId ?? throw new InvalidOperationException($"{Kind.ProjectName()} is not running.");
        Signals.Pause(pid);
        WriteLog($"==== {DateTimeOffset.Now:O} paused (SIGSTOP) by the CLI", null);
    }

    /// <summary>SIGCONT: the paused service runs on. A no-op if it is not running.</summary>
    public void Resume()
    {
        if (ProcessId is { } pid)
        {
            Signals.Resume(pid);
            WriteLog($"==== {DateTimeOffset.Now:O} resumed (SIGCONT) by the CLI", null);
        }
    }

    /// <summary>Kills the process (if running), starts it again with the same settings and waits until ready.</summary>
    public async Task RestartAsync(HttpClient http, TimeSpan readyTimeout, CancellationToken cancellationToken)
    {
        await KillAsync();
        Start();
        await WaitReadyAsync(http, readyTimeout, cancellationToken);
    }

    /// <summary>The last lines of the service's log, for error messages.</summary>
    public string ReadLogTail(int lines = LogTailLines)
    {
        try
        {
            using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            var tail = new Queue<string>(lines);
            while (reader.ReadLine() is { } line)
            {
                if (tail.Count == lines)
                {
                    tail.Dequeue();
                }

                tail.Enqueue(line);
            }

            return string.Join('\n', tail);
        }
        catch (IOException ex)
        {
            return $"(could not read {LogPath}: {ex.Message})";
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

    private void WriteLog(string? line, string? prefix)
    {
        if (line is null)
        {
            return;
        }

        lock (_gate)
        {
            // Output can still arrive while the host is disposed; dropping it then is fine.
            _log?.WriteLine(prefix is null ? line : prefix + line);
        }
    }
}
