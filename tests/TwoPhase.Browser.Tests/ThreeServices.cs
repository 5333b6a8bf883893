using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Reflection;

namespace TwoPhase.Browser.Tests;

/// <summary>
/// The order, storage and delivery services as child processes on free ports, each with its own SQLite file in a
/// temporary folder, sharing a secret. Their standard output is kept, so a test can look for what they printed.
/// </summary>
public sealed class ThreeServices : IAsyncDisposable
{
    public const string Secret = "browser-test-secret";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private readonly List<Service> _services = [];
    private readonly string _folder = Directory.CreateTempSubdirectory("twophase-browser-").FullName;

    private ThreeServices()
    {
    }

    public Uri OrderUrl { get; private set; } = null!;

    public Uri StorageUrl { get; private set; } = null!;

    public Uri DeliveryUrl { get; private set; } = null!;

    /// <summary>Start all three and wait until each says it is ready. <paramref name="extra"/> goes to every service.</summary>
    public static async Task<ThreeServices> StartAsync(IReadOnlyDictionary<string, string>? extra = null)
    {
        var system = new ThreeServices();
        try
        {
            var (order, storage, delivery) = (FreePort(), FreePort(), FreePort());
            system.OrderUrl = new Uri($"http://127.0.0.1:{order}");
            system.StorageUrl = new Uri($"http://127.0.0.1:{storage}");
            system.DeliveryUrl = new Uri($"http://127.0.0.1:{delivery}");
            var common = new Dictionary<string, string>
            {
                ["Database__Provider"] = "sqlite",
                ["TwoPhase__Secret"] = Secret,
                ["Participant__CoordinatorUrl"] = system.OrderUrl.ToString(),
                ["Seed__Couriers"] = "25",
                ["Logging__LogLevel__Default"] = "Warning",
            };
            foreach (var (key, value) in extra ?? new Dictionary<string, string>())
            {
                common[key] = value;
            }

            system.Start("StorageService", storage, common);
            system.Start("DeliveryService", delivery, common);
            system.Start("OrderService", order, new Dictionary<string, string>(common)
            {
                ["Coordinator__Participants__0__Name"] = "storage",
                ["Coordinator__Participants__0__Url"] = system.StorageUrl.ToString(),
                ["Coordinator__Participants__1__Name"] = "delivery",
                ["Coordinator__Participants__1__Url"] = system.DeliveryUrl.ToString(),
            });
            await Task.WhenAll(system._services.Select(s => s.WaitReadyAsync()));
            return system;
        }
        catch
        {
            await system.DisposeAsync();
            throw;
        }
    }

    /// <summary>Everything the named service (e.g. "OrderService") has printed so far.</summary>
    public string OutputOf(string name) => _services.Single(s => s.Name == name).Output;

    public IEnumerable<string> Names => _services.Select(s => s.Name);

    public async ValueTask DisposeAsync()
    {
        foreach (var service in _services)
        {
            await service.DisposeAsync();
        }

        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // A file still held by a process that is going away; the temp folder is swept by the OS.
        }
    }

    private void Start(string name, int port, IReadOnlyDictionary<string, string> environment)
    {
        var dll = ServiceDll(name);
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = _folder,
        };
        info.ArgumentList.Add(dll);
        info.ArgumentList.Add("--urls");
        info.ArgumentList.Add($"http://127.0.0.1:{port}");
        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }

        info.Environment["Database__ConnectionString"] = $"Data Source={Path.Combine(_folder, name + ".db")}";
        info.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        _services.Add(new Service(name, new Uri($"http://127.0.0.1:{port}"), Process.Start(info) ?? throw new InvalidOperationException($"Cannot start {dll}.")));
    }

    private static string ServiceDll(string name)
    {
        var configuration = typeof(ThreeServices).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";
        var root = AppContext.BaseDirectory;
        while (root is not null && !File.Exists(Path.Combine(root, "TwoPhase.slnx")))
        {
            root = Path.GetDirectoryName(root.TrimEnd(Path.DirectorySeparatorChar));
        }

        var dll = Path.Combine(root ?? throw new InvalidOperationException("TwoPhase.slnx not found above the test binaries."), "src", name, "bin", configuration, "net10.0", name + ".dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException($"{dll} is missing: build the solution first (dotnet build TwoPhase.slnx -c {configuration}).", dll);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private sealed class Service : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly ConcurrentQueue<string> _lines = new();

        public Service(string name, Uri url, Process process)
        {
            Name = name;
            Url = url;
            _process = process;
            _process.OutputDataReceived += (_, e) => Keep(e.Data);
            _process.ErrorDataReceived += (_, e) => Keep(e.Data);
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
        }

        public string Name { get; }

        public Uri Url { get; }

        public string Output => string.Join('\n', _lines);

        public async Task WaitReadyAsync()
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
            var deadline = Stopwatch.StartNew();
            while (deadline.Elapsed < StartTimeout)
            {
                if (_process.HasExited)
                {
                    throw new InvalidOperationException($"{Name} exited with {_process.ExitCode} while starting:\n{Output}");
                }

                try
                {
                    using var response = await http.GetAsync(new Uri(Url, "/health/ready"));
                    if (response.IsSuccessStatusCode)
                    {
                        return;
                    }
                }
                catch (HttpRequestException)
                {
                    // Not listening yet.
                }
                catch (TaskCanceledException)
                {
                    // Listening but slow to answer while it starts.
                }

                await Task.Delay(100);
            }

            throw new TimeoutException($"{Name} was not ready within {StartTimeout.TotalSeconds:0} s:\n{Output}");
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }

            _process.Dispose();
        }

        private void Keep(string? line)
        {
            if (line is null)
            {
                return;
            }

            _lines.Enqueue(line);
            // Bounded: a chatty service must not grow the test's memory without end.
            while (_lines.Count > 50_000 && _lines.TryDequeue(out _))
            {
            }
        }
    }
}
