using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Reflection;
using System.Text;

namespace TwoPhase.EndToEnd.Tests.Harness;

/// <summary>
/// One service as a real process: <c>dotnet src/&lt;Svc&gt;/bin/&lt;Configuration&gt;/net10.0/&lt;Svc&gt;.dll --urls ...</c>
/// with its configuration in the environment, its output appended to a log file. Killed like kill -9
/// (the whole tree), restartable with the same settings, and always cleaned up.
/// </summary>
public sealed class ServiceProcess : IAsyncDisposable
{
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(2);

    // Configuration a developer's or CI's shell might carry that must not leak into a service under test.
    private static readonly string[] ScrubbedPrefixes =
        ["Database__", "Coordinator__", "Participant__", "Seed__", "TwoPhase__", "Storage__", "Orders__", "Logging__", "ASPNETCORE_", "DOTNET_ENVIRONMENT", "URLS", "TWOPHASE_SECRET"];

    private readonly Lock _gate = new();
    private readonly Dictionary<string, string> _environment;
    private readonly StreamWriter _log;
    private Process? _process;
    private int _starts;

    public ServiceProcess(Service kind, int port, IReadOnlyDictionary<string, string> environment, string logPath)
    {
        Kind = kind;
        Url = new Uri($"http://127.0.0.1:{port}/");
        _environment = new Dictionary<string, string>(environment);
        LogPath = logPath;
        _log = new StreamWriter(new FileStream(logPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite), Encoding.UTF8) { AutoFlush = true };
    }

    public Service Kind { get; }

    public Uri Url { get; }

    public string LogPath { get; }

    /// <summary>The environment of the next start; tests may change it between restarts.</summary>
    public IDictionary<string, string> Environment => _environment;

    public bool IsRunning
    {
        get
        {
            lock (_gate)
            {
                return _process is { HasExited: false };
            }
        }
    }

    /// <summary>Spawns the process, optionally with extra variables for this start only (a crash point).</summary>
    public void Start(IReadOnlyDictionary<string, string>? onceEnvironment = null)
    {
        var dll = DllPath(Kind);
        lock (_gate)
        {
            if (_process is { HasExited: false })
            {
                throw new InvalidOperationException($"{Kind} is already running (pid {_process.Id}).");
            }

            _process?.Dispose();
            var info = new ProcessStartInfo("dotnet")
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                RedirectStandardInput = false,
                WorkingDirectory = Path.GetDirectoryName(dll)!,
            };
            info.ArgumentList.Add(dll);
            info.ArgumentList.Add("--urls");
            info.ArgumentList.Add(Url.GetLeftPart(UriPartial.Authority));
            foreach (var key in info.Environment.Keys.ToList())
            {
                if (key == "TWOPHASE_CRASH_AT" || ScrubbedPrefixes.Any(p => key.StartsWith(p, StringComparison.OrdinalIgnoreCase)))
                {
                    info.Environment.Remove(key);
                }
            }

            // A crash point aborts the process; no dump files for it.
            info.Environment["DOTNET_DbgEnableMiniDump"] = "0";
            foreach (var (key, value) in _environment.Concat(onceEnvironment ?? new Dictionary<string, string>()))
            {
                info.Environment[key] = value;
            }

            var process = new Process { StartInfo = info, EnableRaisingEvents = true };
            process.OutputDataReceived += (_, e) => WriteLog(e.Data);
            process.ErrorDataReceived += (_, e) => WriteLog(e.Data is null ? null : "[stderr] " + e.Data);
            _starts++;
            WriteLog($"==== {DateTimeOffset.Now:O} start #{_starts} of {Kind} on {Url}{(onceEnvironment is { Count: > 0 } ? " with " + string.Join(", ", onceEnvironment.Select(kv => $"{kv.Key}={kv.Value}")) : "")}");
            if (!process.Start())
            {
                throw new InvalidOperationException($"{Kind}: the process did not start.");
            }

            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            _process = process;
        }
    }

    /// <summary>Polls <c>GET /health/ready</c> until 200; fails with the log's tail if the process dies or time runs out.</summary>
    public async Task WaitReadyAsync(HttpClient http, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        string? last = null;
        while (clock.Elapsed < timeout)
        {
            Process? process;
            lock (_gate)
            {
                process = _process;
            }

            if (process is null || process.HasExited)
            {
                throw new InvalidOperationException($"{Kind} exited (code {process?.ExitCode.ToString(CultureInfo.InvariantCulture) ?? "?"}) before it was ready.\n{Tail()}");
            }

            using var probe = new CancellationTokenSource(ProbeTimeout);
            try
            {
                using var response = await http.GetAsync(new Uri(Url, "health/ready"), probe.Token);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }

                last = $"HTTP {(int)response.StatusCode}";
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException)
            {
                last = e.Message;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(50));
        }

        throw new TimeoutException($"{Kind} was not ready at {Url} within {timeout.TotalSeconds:0} s ({last}).\n{Tail()}");
    }

    /// <summary>Waits (bounded) for the process to exit by itself, as it does at a crash point; returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        Process? process;
        lock (_gate)
        {
            process = _process;
        }

        if (process is null)
        {
            throw new InvalidOperationException($"{Kind} was never started.");
        }

        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{Kind} did not exit within {timeout.TotalSeconds:0} s.\n{Tail()}");
        }

        return process.ExitCode;
    }

    /// <summary>kill -9 of the service and its children; bounded wait until it is gone.</summary>
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
            }

            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await process.WaitForExitAsync(cts.Token);
            WriteLog($"==== {DateTimeOffset.Now:O} killed {Kind}");
        }
        catch (InvalidOperationException)
        {
            // Exited between the check and the kill.
        }
    }

    /// <summary>The last lines of the log, for failure messages.</summary>
    public string Tail(int lines = 40)
    {
        try
        {
            using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            var all = reader.ReadToEnd().Split('\n');
            return $"--- last lines of {Kind} log ({LogPath}) ---\n" + string.Join('\n', all.TakeLast(lines));
        }
        catch (IOException e)
        {
            return $"--- {Kind} log unreadable: {e.Message}";
        }
    }

    /// <summary>Whether the log holds a line containing <paramref name="text"/>.</summary>
    public bool LogContains(string text)
    {
        using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd().Contains(text, StringComparison.Ordinal);
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        lock (_gate)
        {
            _process?.Dispose();
            _process = null;
            _log.Dispose();
        }
    }

    private void WriteLog(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_gate)
        {
            try
            {
                _log.WriteLine(line);
            }
            catch (ObjectDisposedException)
            {
                // Output that arrives after disposal has nowhere to go.
            }
        }
    }

    /// <summary>Where the build put the service: src/&lt;Svc&gt;/bin/&lt;this test assembly's configuration&gt;/net10.0/&lt;Svc&gt;.dll.</summary>
    public static string DllPath(Service kind)
    {
        var name = kind switch
        {
            Service.Order => "OrderService",
            Service.Storage => "StorageService",
            _ => "DeliveryService",
        };
        var configuration = typeof(ServiceProcess).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";
        var path = Path.Combine(RepoRoot.Value, "src", name, "bin", configuration, "net10.0", name + ".dll");
        return File.Exists(path)
            ? path
            : throw new FileNotFoundException($"{path} does not exist; build the solution (dotnet test builds it through the project references).", path);
    }

    private static readonly Lazy<string> RepoRoot = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "TwoPhase.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No TwoPhase.slnx above {AppContext.BaseDirectory}.");
    });
}

/// <summary>Free loopback ports: bind port 0, read what the kernel gave, release it. Never hands out one twice in a run.</summary>
public static class FreePorts
{
    private static readonly HashSet<int> Given = [];

    public static int Next()
    {
        lock (Given)
        {
            for (var attempt = 0; attempt < 100; attempt++)
            {
                using var listener = new TcpListener(System.Net.IPAddress.Loopback, 0);
                listener.Start();
                var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
                listener.Stop();
                if (port is not (>= 8000 and <= 8002) && Given.Add(port))
                {
                    return port;
                }
            }

            throw new InvalidOperationException("No free port found in 100 attempts.");
        }
    }
}
