namespace TwoPhase.Harness.Topology;

/// <summary>How one HAProxy is set up: where it listens, the replicas behind it, where its config and log go.</summary>
public sealed record HaProxyOptions(string Name, string ListenAddress, int Port, IReadOnlyList<Uri> Backends, string Folder)
{
    /// <summary>The health check's path; a backend is in rotation while it answers 200 there.</summary>
    public string HealthPath { get; init; } = "/health/ready";

    /// <summary>The network namespace it runs in; null: the caller's (127.0.0.1 without namespaces).</summary>
    public string? Namespace { get; init; }
}

/// <summary>One HAProxy in front of a service's replicas (<c>haproxy -db -f cfg</c>, in its namespace).</summary>
public sealed class HaProxy : IAsyncDisposable
{
    private HaProxy(HaProxyOptions options)
    {
        Options = options;
        Url = new Uri($"http://{options.ListenAddress}:{options.Port}/");
    }

    public HaProxyOptions Options { get; }

    public Uri Url { get; }

    public int? ProcessId => throw new NotImplementedException();

    public static Task<HaProxy> StartAsync(HaProxyOptions options, CancellationToken cancellationToken = default) => throw new NotImplementedException();

    public Task KillAsync() => throw new NotImplementedException();

    public Task RestartAsync(CancellationToken cancellationToken = default) => throw new NotImplementedException();

    public void Pause() => throw new NotImplementedException();

    public void Resume() => throw new NotImplementedException();

    public ValueTask DisposeAsync() => throw new NotImplementedException();
}
