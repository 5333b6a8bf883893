using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using TwoPhase.Harness;
using TwoPhase.Harness.Topology;

namespace TwoPhase.Tests.Topology;

/// <summary>
/// HAProxy on 127.0.0.1 in front of two tiny Kestrel backends in this process, each answering its own name and a
/// /health/ready the test switches: it routes to both, stops routing to one whose health fails, and to one that is gone.
/// </summary>
public sealed class HaProxyTests
{
    private static readonly TimeSpan CheckWait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task RoutesToBothReplicas_StopsRoutingToOneWhoseHealthFails_AndToOneThatIsGone()
    {
        await using var one = await Backend.StartAsync("one");
        await using var two = await Backend.StartAsync("two");
        var folder = Directory.CreateTempSubdirectory("twophase-haproxy-").FullName;
        await using var proxy = await HaProxy.StartAsync(new HaProxyOptions("lb-test", "127.0.0.1", PortAllocator.Next(), [one.Url, two.Url], folder) { Balance = "roundrobin" });
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        await proxy.WaitAllBackendsUpAsync(CheckWait);

        Assert.Equal(["one", "two"], (await AskAsync(http, proxy, 10)).Distinct().Order());

        two.Healthy = false;
        await WaitStateAsync(proxy, two.Url, "DOWN");
        Assert.Equal(["one"], (await AskAsync(http, proxy, 10)).Distinct());

        two.Healthy = true;
        await WaitStateAsync(proxy, two.Url, "UP");
        await one.DisposeAsync();
        await WaitStateAsync(proxy, one.Url, "DOWN");
        Assert.Equal(["two"], (await AskAsync(http, proxy, 10)).Distinct());
    }

    [Fact]
    public async Task KillPauseResumeRestart_ProcessComesAndGoes()
    {
        await using var one = await Backend.StartAsync("one");
        var folder = Directory.CreateTempSubdirectory("twophase-haproxy-").FullName;
        await using var proxy = await HaProxy.StartAsync(new HaProxyOptions("lb-test", "127.0.0.1", PortAllocator.Next(), [one.Url], folder));
        Assert.Contains("retry-on conn-failure", await File.ReadAllTextAsync(proxy.ConfigPath), StringComparison.Ordinal);
        await proxy.WaitAllBackendsUpAsync(CheckWait);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };

        proxy.Pause();
        await Assert.ThrowsAnyAsync<Exception>(() => http.GetStringAsync(new Uri(proxy.Url, "/who")));
        proxy.Resume();
        Assert.Equal("one", await http.GetStringAsync(new Uri(proxy.Url, "/who")));

        var pid = proxy.ProcessId;
        await proxy.KillAsync();
        Assert.Null(proxy.ProcessId);
        await Assert.ThrowsAsync<HttpRequestException>(() => http.GetStringAsync(new Uri(proxy.Url, "/who")));

        await proxy.RestartAsync();
        Assert.NotNull(proxy.ProcessId);
        Assert.NotEqual(pid, proxy.ProcessId);
        await proxy.WaitAllBackendsUpAsync(CheckWait);
        Assert.Equal("one", await http.GetStringAsync(new Uri(proxy.Url, "/who")));
    }

    private static async Task<List<string>> AskAsync(HttpClient http, HaProxy proxy, int count)
    {
        var names = new List<string>();
        for (var i = 0; i < count; i++)
        {
            // A fresh connection each time: HAProxy balances requests, but a kept-alive connection may stay on one server.
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(proxy.Url, "/who")) { Headers = { ConnectionClose = true } };
            using var response = await http.SendAsync(request);
            Assert.Equal(200, (int)response.StatusCode);
            names.Add(await response.Content.ReadAsStringAsync());
        }

        return names;
    }

    private static async Task WaitStateAsync(HaProxy proxy, Uri backend, string state)
    {
        using var cts = new CancellationTokenSource(CheckWait);
        while (true)
        {
            var states = await proxy.BackendStatesAsync(cts.Token);
            if (states.GetValueOrDefault(backend) == state)
            {
                return;
            }

            await Task.Delay(100, cts.Token);
        }
    }

    /// <summary>A Kestrel app on a free loopback port: GET /who answers its name, /health/ready 200 or 503 as set.</summary>
    private sealed class Backend : IAsyncDisposable
    {
        private WebApplication? _app;

        private Backend(string name, Uri url)
        {
            Name = name;
            Url = url;
        }

        public string Name { get; }

        public Uri Url { get; }

        public volatile bool Healthy = true;

        public static async Task<Backend> StartAsync(string name)
        {
            var url = new Uri($"http://127.0.0.1:{PortAllocator.Next()}/");
            var backend = new Backend(name, url);
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseUrls(url.GetLeftPart(UriPartial.Authority));
            var app = builder.Build();
            app.MapGet("/who", () => name);
            app.MapGet("/health/ready", () => backend.Healthy ? Results.Ok() : Results.StatusCode(503));
            await app.StartAsync();
            backend._app = app;
            return backend;
        }

        public async ValueTask DisposeAsync()
        {
            if (_app is { } app)
            {
                _app = null;
                await app.StopAsync();
                await app.DisposeAsync();
            }
        }
    }
}
