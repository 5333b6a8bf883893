using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace TwoPhase.Fuzz.Tests.Harness;

public enum Svc
{
    Order,
    Storage,
    Delivery,
}

/// <summary>
/// The three services as real processes on free ports (never 8000-8002), each with its own SQLite file in a
/// temporary folder, a shared secret, and the old protocol closed to unauthenticated callers.
/// </summary>
public sealed class Services : IAsyncLifetime
{
    private readonly Dictionary<Svc, Process> _processes = [];
    private readonly ConcurrentQueue<string> _log = new();
    private readonly string _folder = Path.Combine(Path.GetTempPath(), $"twophase-fuzz-{Guid.NewGuid():N}");

    public string Secret { get; } = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    public Dictionary<Svc, Uri> Urls { get; } = [];

    /// <summary>Sends nothing by default: each request says what credentials it carries.</summary>
    public HttpClient Http { get; } = new(new SocketsHttpHandler { MaxConnectionsPerServer = 64, PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30) })
    {
        Timeout = TimeSpan.FromSeconds(60),
    };

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_folder);
        var ports = FreePorts(3);
        Urls[Svc.Order] = new Uri($"http://127.0.0.1:{ports[0]}/");
        Urls[Svc.Storage] = new Uri($"http://127.0.0.1:{ports[1]}/");
        Urls[Svc.Delivery] = new Uri($"http://127.0.0.1:{ports[2]}/");
        foreach (var svc in Enum.GetValues<Svc>())
        {
            _processes[svc] = Start(svc);
        }

        await Task.WhenAll(Enum.GetValues<Svc>().Select(WaitReadyAsync));
    }

    public Task DisposeAsync()
    {
        foreach (var process in _processes.Values)
        {
            try
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(5000);
            }
            catch (InvalidOperationException)
            {
                // Already gone.
            }

            process.Dispose();
        }

        Http.Dispose();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // A file still held by a dying process; the temp folder is cleaned by the OS.
        }

        return Task.CompletedTask;
    }

    /// <summary>The last lines the services wrote, for a failure message.</summary>
    public string RecentLog() => string.Join('\n', _log.TakeLast(60));

    public HttpRequestMessage Request(Svc svc, HttpMethod method, string path, object? json = null, bool auth = true)
    {
        var request = new HttpRequestMessage(method, new Uri(Urls[svc], path.TrimStart('/')));
        if (json is not null)
        {
            request.Content = new StringContent(JsonSerializer.Serialize(json, JsonSerializerOptions.Web), Encoding.UTF8, "application/json");
        }

        if (auth)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Secret);
        }

        return request;
    }

    public async Task<(HttpStatusCode Status, JsonNode? Body)> SendAsync(HttpRequestMessage request)
    {
        using (request)
        {
            using var response = await Http.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            return (response.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text));
        }
    }

    public async Task<JsonNode> GetAsync(Svc svc, string path)
    {
        var (status, body) = await SendAsync(Request(svc, HttpMethod.Get, path));
        Assert.True(status == HttpStatusCode.OK, $"GET {svc} {path} answered {(int)status}: {body?.ToJsonString()}");
        return body!;
    }

    /// <summary>Every page of a listing that pages by <c>after</c>, keyed by <paramref name="idField"/>.</summary>
    public async Task<JsonArray> GetAllAsync(Svc svc, string path, string idField)
    {
        var all = new JsonArray();
        string? after = null;
        while (true)
        {
            var page = (await GetAsync(svc, $"{path}?limit=1000{(after is null ? "" : $"&after={after}")}")).AsArray();
            foreach (var item in page)
            {
                all.Add(item!.DeepClone());
            }

            if (page.Count < 1000)
            {
                return all;
            }

            after = page[^1]![idField]!.GetValue<string>();
        }
    }

    private Process Start(Svc svc)
    {
        var name = svc switch
        {
            Svc.Order => "OrderService",
            Svc.Storage => "StorageService",
            _ => "DeliveryService",
        };
        var configuration = typeof(Services).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().First(a => a.Key == "Configuration").Value;
        var dll = Path.Combine(RepositoryRoot(), "src", name, "bin", configuration!, "net10.0", $"{name}.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing; build the solution first.");
        var start = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { dll, "--urls", Urls[svc].ToString().TrimEnd('/') },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var env = start.Environment;
        env["TwoPhase__Secret"] = Secret;
        env["Database__Provider"] = "sqlite";
        env["Database__ConnectionString"] = $"Data Source={Path.Combine(_folder, $"{name}.db")}";
        env["Coordinator__Participants__0__Name"] = "storage";
        env["Coordinator__Participants__0__Url"] = Urls[Svc.Storage].ToString().TrimEnd('/');
        env["Coordinator__Participants__1__Name"] = "delivery";
        env["Coordinator__Participants__1__Url"] = Urls[Svc.Delivery].ToString().TrimEnd('/');
        env["Participant__CoordinatorUrl"] = Urls[Svc.Order].ToString().TrimEnd('/');
        // Loopback would leave the old protocol open by default; the operator closes it here, so it must need the secret.
        env["Participant__AllowUnauthenticatedLegacy"] = "false";
        env["Logging__LogLevel__Default"] = "Warning";
        env.Remove("ASPNETCORE_URLS");
        env.Remove("TWOPHASE_CRASH_AT");
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => Keep(svc, e.Data);
        process.ErrorDataReceived += (_, e) => Keep(svc, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private void Keep(Svc svc, string? line)
    {
        if (line is null)
        {
            return;
        }

        _log.Enqueue($"[{svc}] {line}");
        while (_log.Count > 500 && _log.TryDequeue(out _))
        {
        }
    }

    private async Task WaitReadyAsync(Svc svc)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(60))
        {
            Assert.False(_processes[svc].HasExited, $"{svc} exited at start:\n{RecentLog()}");
            try
            {
                using var response = await Http.GetAsync(new Uri(Urls[svc], "health/ready"));
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            await Task.Delay(100);
        }

        Assert.Fail($"{svc} not ready within 60 s:\n{RecentLog()}");
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "TwoPhase.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("TwoPhase.slnx not found above the test binaries.");
    }

    private static int[] FreePorts(int count)
    {
        var listeners = Enumerable.Range(0, count).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToList();
        try
        {
            listeners.ForEach(l => l.Start());
            var ports = listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
            return ports.Any(p => p is >= 8000 and <= 8002) ? FreePorts(count) : ports;
        }
        finally
        {
            listeners.ForEach(l => l.Stop());
        }
    }
}

[CollectionDefinition(Name)]
public sealed class ServicesCollection : ICollectionFixture<Services>
{
    public const string Name = "services";
}
