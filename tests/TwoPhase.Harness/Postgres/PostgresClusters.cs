namespace TwoPhase.Harness;

/// <summary>
/// Three throwaway PostgreSQL clusters, one per service, as in production where each service has its own database
/// server: a crash of one server loses what that server had not flushed, and nothing of the others. The reference
/// system makes each service's database on its cluster (<see cref="SystemOptions.PostgresServers"/>).
/// </summary>
public sealed class PostgresClusters : IAsyncDisposable
{
    private PostgresClusters(IReadOnlyDictionary<ServiceKind, PostgresCluster> clusters) => Clusters = clusters;

    public IReadOnlyDictionary<ServiceKind, PostgresCluster> Clusters { get; }

    /// <summary>Each service's server (a connection string to its cluster's maintenance database).</summary>
    public IReadOnlyDictionary<ServiceKind, string> Servers => Clusters.ToDictionary(kv => kv.Key, kv => kv.Value.ConnectionString);

    /// <summary>Makes the three clusters, one after the other, so they take consecutive free ports.</summary>
    /// <param name="folder">The clusters' folders go here.</param>
    /// <param name="firstPort">The first port tried on 127.0.0.1.</param>
    /// <param name="cancellationToken">Cancels the creation; what was made is removed.</param>
    public static async Task<PostgresClusters> CreateAsync(string folder, int firstPort, CancellationToken cancellationToken)
    {
        var clusters = new Dictionary<ServiceKind, PostgresCluster>();
        try
        {
            var port = firstPort;
            foreach (var kind in ServiceKinds.All)
            {
                var cluster = await PostgresCluster.CreateAsync(
                    new PostgresClusterOptions { ParentFolder = folder, Name = $"pg-{kind.ShortName()}", FirstPort = port, MaxConnections = 150 },
                    cancellationToken);
                clusters[kind] = cluster;
                port = cluster.Port + 1;
            }

            return new PostgresClusters(clusters);
        }
        catch
        {
            foreach (var cluster in clusters.Values)
            {
                await cluster.DisposeAsync();
            }

            throw;
        }
    }

    /// <summary>One line for the settings table.</summary>
    public string Describe() => string.Join("; ", ServiceKinds.All.Select(k => $"{k.ShortName()} on 127.0.0.1:{Clusters[k].Port}"));

    /// <summary>For process-exit handlers: stops every cluster now (data left in place).</summary>
    public void StopNow()
    {
        foreach (var cluster in Clusters.Values)
        {
            cluster.StopNow();
        }
    }

    /// <summary>Stops the clusters and leaves their folders, for a look after the run (<c>--keep</c>).</summary>
    public async Task StopKeepingDataAsync()
    {
        foreach (var cluster in Clusters.Values.Where(c => c.IsRunning))
        {
            await cluster.StopImmediateAsync(CancellationToken.None);
        }
    }

    /// <summary>Stops the clusters and removes their folders.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var cluster in Clusters.Values)
        {
            await cluster.DisposeAsync();
        }
    }
}
