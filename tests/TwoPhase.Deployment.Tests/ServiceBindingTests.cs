using System.Diagnostics;
using TwoPhase.Harness;

namespace TwoPhase.Deployment.Tests;

/// <summary>
/// A container runtime tells a service where to listen with ASPNETCORE_HTTP_PORTS (set by the image) or ASPNETCORE_URLS;
/// the service must bind there, not on its loopback default. Real processes, real HTTP; the probe paths the manifests
/// use are asked of the running service.
/// </summary>
public sealed class ServiceBindingTests
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(90);

    // Configuration from the developer's or CI's shell must not decide where the service listens.
    private static readonly string[] Scrubbed = ["ASPNETCORE_", "URLS", "TwoPhase__", "Database__", "Participant__", "Coordinator__", "TWOPHASE_"];

    [Theory]
    [InlineData("StorageService", "ASPNETCORE_HTTP_PORTS")]
    [InlineData("DeliveryService", "ASPNETCORE_HTTP_PORTS")]
    [InlineData("StorageService", "ASPNETCORE_URLS")]
    public async Task ServiceGivenAPortByTheEnvironment_AnswersThere_OnTheManifestsProbePaths(string project, string variable)
    {
        var port = PortAllocator.Next();
        var folder = Directory.CreateTempSubdirectory("twophase-bind-").FullName;
        var info = new ProcessStartInfo(DotnetHost.Path)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = folder,
        };
        info.ArgumentList.Add(Repo.Dll(project));
        foreach (var key in info.Environment.Keys.Where(k => Scrubbed.Any(p => k.StartsWith(p, StringComparison.OrdinalIgnoreCase))).ToList())
        {
            info.Environment.Remove(key);
        }

        info.Environment[variable] = variable == "ASPNETCORE_URLS" ? $"http://127.0.0.1:{port}" : port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        info.Environment["TwoPhase__Secret"] = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        info.Environment["TwoPhase__Database__SqliteFile"] = Path.Combine(folder, "service.db");
        // A participant needs its coordinator's URL; nothing runs there, and nothing in this test asks it.
        info.Environment["TwoPhase__Participant__CoordinatorUrl"] = "http://127.0.0.1:9";

        var log = new System.Text.StringBuilder();
        using var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        process.ErrorDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        Assert.True(process.Start());
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(5) };
            var baseUrl = new Uri($"http://127.0.0.1:{port}/");
            await WaitReadyAsync(http, baseUrl, process, log);
            foreach (var path in new[] { "/health/ready", "/health/live" })
            {
                using var response = await http.GetAsync(new Uri(baseUrl, path));
                Assert.True(response.IsSuccessStatusCode, $"GET {path} answered {(int)response.StatusCode}");
            }
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }

            await process.WaitForExitAsync();
        }
    }

    private static async Task WaitReadyAsync(HttpClient http, Uri baseUrl, Process process, System.Text.StringBuilder log)
    {
        using var deadline = new CancellationTokenSource(ReadyTimeout);
        while (!deadline.IsCancellationRequested)
        {
            if (process.HasExited)
            {
                Assert.Fail($"the service exited (code {process.ExitCode}) before it answered at {baseUrl}:\n{Text(log)}");
            }

            try
            {
                using var response = await http.GetAsync(new Uri(baseUrl, "/health/ready"), deadline.Token);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                // Not listening yet (or listening elsewhere, which is the failure this test is for).
            }

            await Task.WhenAny(process.WaitForExitAsync(deadline.Token), Task.Delay(TimeSpan.FromMilliseconds(200), deadline.Token));
        }

        Assert.Fail($"the service did not answer at {baseUrl} within {ReadyTimeout.TotalSeconds:0} s:\n{Text(log)}");
    }

    private static string Text(System.Text.StringBuilder log)
    {
        lock (log)
        {
            return string.Join('\n', log.ToString().Split('\n').TakeLast(30));
        }
    }
}
