using Npgsql;
using TwoPhase.Harness;

namespace TwoPhase.Cli.Hosting;

/// <summary>
/// Three throwaway PostgreSQL clusters, one per service, as in production where each service has its own
/// database server: a crash of one server loses what that server had not flushed, and nothing of the others.
/// Each holds one database for its service. Made by the command and removed again at the end.
/// </summary>
public sealed class PostgresClusters : IAsyncDisposable
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(30);

    private PostgresClusters(IReadOnlyDictionary<ServiceKind, PostgresCluster> clusters, IReadOnlyDictionary<ServiceKind, string> connectionStrings)
    {
        Clusters = clusters;
        ConnectionStrings = connectionStrings;
    }

    public IReadOnlyDictionary<ServiceKind, PostgresCluster> Clusters { get; }

    /// <summary>Each service's database on its own cluster.</summary>
    public IReadOnlyDictionary<ServiceKind, string> ConnectionStrings { get; }

    /// <summary>Makes the three clusters (one after the other, so they take consecutive free ports) and a database in each.</summary>
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

            var strings = new Dictionary<ServiceKind, string>();
            foreach (var (kind, cluster) in clusters)
            {
                var name = $"twophase_{kind.ShortName()}";
                await using (var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(cluster.ConnectionString) { Pooling = false }.ConnectionString))
                {
                    await connection.OpenAsync(cancellationToken);
                    await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection) { CommandTimeout = (int)CommandTimeout.TotalSeconds };
                    await command.ExecuteNonQueryAsync(cancellationToken);
                }

                strings[kind] = new NpgsqlConnectionStringBuilder(cluster.ConnectionString) { Database = name }.ConnectionString;
            }

            return new PostgresClusters(clusters, strings);
        }
        catch (Exception e)
        {
            foreach (var cluster in clusters.Values)
            {
                await cluster.DisposeAsync();
            }

            if (e is NpgsqlException)
            {
                throw new ServiceStartException($"Could not create the services' databases on their clusters: {e.Message}", e);
            }

            throw;
        }
    }

    /// <summary>One line per cluster for the settings table.</summary>
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
