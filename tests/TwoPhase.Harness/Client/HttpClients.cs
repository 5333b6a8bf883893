using System.Net;

namespace TwoPhase.Harness.Client;

/// <summary>Builds the CLI's HTTP clients: one pooled, keep-alive handler per command run.</summary>
public static class HttpClients
{
    /// <summary>
    /// One <see cref="SocketsHttpHandler"/> for the whole run, so connections are reused across
    /// requests (a new TCP connection per order would measure the kernel, not the system).
    /// </summary>
    /// <param name="maxConnectionsPerServer">At least the load concurrency, so requests never queue in the client.</param>
    public static HttpClient Create(int maxConnectionsPerServer)
    {
        var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = Math.Max(4, maxConnectionsPerServer),
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
            ConnectTimeout = TimeSpan.FromSeconds(5),
            AutomaticDecompression = DecompressionMethods.None,
            UseProxy = false,
        };
        // Every call site bounds its own time with a CancellationTokenSource; an infinite client
        // timeout keeps one place deciding, instead of two timeouts racing with different messages.
        return new HttpClient(handler, disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
    }
}
