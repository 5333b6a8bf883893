using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace TwoPhase.Harness.Topology;

/// <summary>
/// The reference system as several hosts on one machine (docs/scaling.md, "Topology"): a PostgreSQL cluster per
/// service, N replicas of each service, an HAProxy per service in front of its replicas. With
/// <see cref="TopologyOptions.Namespaces"/> each node runs in a network namespace of its own on the bridge tp-br0
/// (10.211.0.0/24; the harness is 10.211.0.1), so links between nodes can be cut (<see cref="Links"/>); without, all
/// of it runs on 127.0.0.1 on free ports. The coordinators reach the participants only through lb-storage and
/// lb-delivery, the participants reach the coordinator group only through lb-order. Disposal stops every process and
/// removes every namespace, veth, the bridge and every rule.
/// </summary>
public sealed partial class TopologySystem : IAsyncDisposable
{
    private const int ServicePort = 8080;
    private const int BalancerPort = 8000;
    private const int PostgresPort = 5432;
    private const int MaxConnections = 200;

    private readonly List<TopologyNode> _nodes = [];
    private readonly Action<string> _log;
    private readonly bool _ownsFolder;
    private readonly HttpClient _probe = new(new SocketsHttpHandler { PooledConnectionIdleTimeout = TimeSpan.FromSeconds(5), ConnectTimeout = TimeSpan.FromSeconds(2) });
    private TopologyNetwork? _network;
    private bool _disposed;

    private TopologySystem(TopologyOptions options, Action<string>? log)
    {
        Options = options;
        _log = log ?? (_ => { });
        _ownsFolder = options.Folder is null;
        Folder = Path.GetFullPath(options.Folder ?? Path.Combine(Path.GetTempPath(), "twophase-topology", $"{DateTime.UtcNow:HHmmss}-{Guid.NewGuid():N}"[..22]));
        Secret = ReferenceSystem.NewSecret();
    }

    public TopologyOptions Options { get; }

    public IReadOnlyList<TopologyNode> Nodes => _nodes;

    /// <summary>Logs, configs, the clusters' data.</summary>
    public string Folder { get; }

    public TopologyNode this[string name] => _nodes.FirstOrDefault(n => n.Name == name)
        ?? throw new KeyNotFoundException($"No node '{name}' in the topology ({string.Join(", ", _nodes.Select(n => n.Name))}).");

    /// <summary>The shared secret every service runs with (Bearer for admin, seed and complete calls).</summary>
    public string Secret { get; }

    /// <summary>Link faults between nodes; null without namespaces.</summary>
    public LinkFaults? Links { get; private set; }

    /// <summary>The databases made on the clusters (one per service).</summary>
    public PostgresDatabases? Databases { get; private set; }

    /// <summary>The <c>Database:MaxPoolSize</c> every replica runs with.</summary>
    public int PoolSizePerReplica { get; private set; }

    /// <summary>
    /// Builds the network (with namespaces), the databases, the replicas (the first of each service alone, since it
    /// makes the schema), the balancers, and waits until everything is ready; on failure everything made is removed.
    /// </summary>
    public static async Task<TopologySystem> StartAsync(TopologyOptions options, Action<string>? log = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        Validate(options);
        var system = new TopologySystem(options, log);
        try
        {
            await system.StartAsync(cancellationToken);
            return system;
        }
        catch
        {
            await system.DisposeAsync();
            throw;
        }
    }

    /// <summary>Removes the tp-* namespaces (and what runs in them), tp-* veths and the tp-br0 bridge a killed earlier run left.</summary>
    public static void RemoveLeftovers() => TopologyNetwork.RemoveLeftovers();

    /// <summary>The replicas of one service, in order (order-1, order-2, ...).</summary>
    public IReadOnlyList<TopologyNode> Replicas(ServiceKind kind) =>
        [.. _nodes.Where(n => n.Service == kind && n.Role is NodeRole.Coordinator or NodeRole.Participant)];

    public TopologyNode BalancerOf(ServiceKind kind) => this["lb-" + kind.ShortName()];

    public TopologyNode DatabaseOf(ServiceKind kind) => this["pg-" + kind.ShortName()];

    /// <summary>That service's balancer, reachable from the harness (the root namespace, 10.211.0.1).</summary>
    public Uri EntryUrl(ServiceKind kind) => BalancerOf(kind).Url!;

    /// <summary>Replica: kill -9; database: immediate stop (as a crash); balancer: kill -9.</summary>
    public async Task KillAsync(TopologyNode node, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(node);
        switch (node.Role)
        {
            case NodeRole.Coordinator or NodeRole.Participant:
                await node.Process!.KillAsync();
                break;
            case NodeRole.Database:
                if (node.Database!.PostmasterProcessId is { } pid)
                {
                    // A paused server cannot stop.
                    ResumeTree(pid);
                }

                await node.Database.StopImmediateAsync(cancellationToken);
                break;
            case NodeRole.Balancer:
                await node.Balancer!.KillAsync();
                break;
        }

        Log($"killed {node.Name}");
    }

    /// <summary>Starts the node again (killing it first if it runs) and waits until it is ready.</summary>
    public async Task RestartAsync(TopologyNode node, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(node);
        switch (node.Role)
        {
            case NodeRole.Coordinator or NodeRole.Participant:
                await node.Process!.RestartAsync(_probe, Options.ReadyTimeout, cancellationToken);
                break;
            case NodeRole.Database:
                if (node.Database!.IsRunning || node.Database.PostmasterProcessId is not null)
                {
                    await KillAsync(node, cancellationToken);
                }

                await node.Database.StartAsync(cancellationToken);
                break;
            case NodeRole.Balancer:
                await node.Balancer!.RestartAsync(cancellationToken);
                break;
        }

        Log($"restarted {node.Name}");
    }

    /// <summary>SIGSTOP: replicas and balancers; a database's postmaster and all its children.</summary>
    public void Pause(TopologyNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        switch (node.Role)
        {
            case NodeRole.Coordinator or NodeRole.Participant:
                node.Process!.Pause();
                break;
            case NodeRole.Database:
                var pid = node.Database!.PostmasterProcessId ?? throw new InvalidOperationException($"{node.Name} is not running.");
                // The postmaster first, so it forks no new backend that would escape the pause.
                Signals.Pause(pid);
                foreach (var child in ProcessTree.Descendants(pid))
                {
                    TrySignal(child, Signals.Pause);
                }

                break;
            case NodeRole.Balancer:
                node.Balancer!.Pause();
                break;
        }

        Log($"paused {node.Name}");
    }

    /// <summary>SIGCONT of what <see cref="Pause"/> stopped; a no-op for a node that is not running.</summary>
    public void Resume(TopologyNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        switch (node.Role)
        {
            case NodeRole.Coordinator or NodeRole.Participant:
                node.Process!.Resume();
                break;
            case NodeRole.Database:
                if (node.Database!.PostmasterProcessId is { } pid)
                {
                    ResumeTree(pid);
                }

                break;
            case NodeRole.Balancer:
                node.Balancer!.Resume();
                break;
        }

        Log($"resumed {node.Name}");
    }

    /// <summary>
    /// Waits (bounded) until every replica answers /health/ready directly, every balancer sees all its backends UP,
    /// and /health/ready answers 200 through each balancer.
    /// </summary>
    public async Task WaitAllReadyAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        var replicas = _nodes.Where(n => n.Process is not null).ToList();
        await Task.WhenAll(replicas.Select(n => n.Process!.WaitReadyAsync(_probe, timeout, cancellationToken)));
        foreach (var balancer in _nodes.Where(n => n.Balancer is not null))
        {
            var left = timeout - clock.Elapsed;
            await balancer.Balancer!.WaitAllBackendsUpAsync(left > TimeSpan.Zero ? left : TimeSpan.FromSeconds(1), cancellationToken);
            using var answer = await _probe.GetAsync(new Uri(balancer.Url!, "/health/ready"), cancellationToken);
            if (!answer.IsSuccessStatusCode)
            {
                throw new TopologyException($"GET /health/ready through {balancer.Name} answered {(int)answer.StatusCode}.\n{balancer.Balancer.Tail()}");
            }
        }
    }

    /// <summary>Every log's tail (replicas and balancers), for failure messages.</summary>
    public string Tails(int lines = 20) => string.Join("\n", _nodes.Select(n => n.Process?.Tail(lines) ?? n.Balancer?.Tail(lines)).OfType<string>());

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (var node in _nodes.Where(n => n.Balancer is not null))
        {
            await node.Balancer!.DisposeAsync();
        }

        await Task.WhenAll(_nodes.Where(n => n.Process is not null).Select(n => n.Process!.DisposeAsync().AsTask()));
        foreach (var node in _nodes.Where(n => n.Database is not null))
        {
            if (node.Database!.PostmasterProcessId is { } pid)
            {
                ResumeTree(pid);
            }

            await node.Database.DisposeAsync();
        }

        if (_network is { } network)
        {
            network.Dispose();
        }

        _probe.Dispose();
        if (_ownsFolder && Environment.GetEnvironmentVariable("TWOPHASE_E2E_KEEP") != "1")
        {
            try
            {
                Directory.Delete(Folder, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A file still held by a dying process is left to the temp folder's clean-up.
            }
        }

        Log("topology disposed");
    }

    private static void Validate(TopologyOptions options)
    {
        foreach (var (name, count) in new[] { ("Coordinators", options.Coordinators), ("StorageReplicas", options.StorageReplicas), ("DeliveryReplicas", options.DeliveryReplicas) })
        {
            if (count is < 1 or > TopologyOptions.MaxReplicas)
            {
                throw new ArgumentException($"{name} is {count}; 1 to {TopologyOptions.MaxReplicas} replicas per service.", nameof(options));
            }
        }

        if (!GroupPattern().IsMatch(options.CoordinatorGroup))
        {
            throw new ArgumentException($"CoordinatorGroup '{options.CoordinatorGroup}' is not 1-64 characters of [A-Za-z0-9][A-Za-z0-9._-]*.", nameof(options));
        }

        if (options.PoolSizePerService is < 1 or > 1000)
        {
            throw new ArgumentException($"PoolSizePerService {options.PoolSizePerService} is outside 1-1000.", nameof(options));
        }

        if (options.ReadyTimeout <= TimeSpan.Zero || options.ReadyTimeout > TimeSpan.FromMinutes(30))
        {
            throw new ArgumentException($"ReadyTimeout {options.ReadyTimeout} is outside (0, 30 min].", nameof(options));
        }
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex GroupPattern();

    private int CountOf(ServiceKind kind) => kind switch
    {
        ServiceKind.Order => Options.Coordinators,
        ServiceKind.Storage => Options.StorageReplicas,
        _ => Options.DeliveryReplicas,
    };

    /// <summary>
    /// The nodes and their addresses: 10.211.0.2-4 the databases, .5-7 the balancers, .11-19 order replicas, .31-39
    /// storage, .51-59 delivery. Without namespaces every node is 127.0.0.1 with a port of its own.
    /// </summary>
    private void LayOut()
    {
        var ns = Options.Namespaces;
        var services = new[] { ServiceKind.Order, ServiceKind.Storage, ServiceKind.Delivery };
        for (var i = 0; i < services.Length; i++)
        {
            var kind = services[i];
            var pgName = "pg-" + kind.ShortName();
            _nodes.Add(new TopologyNode(pgName, NodeRole.Database, kind, ns ? Address(2 + i) : "127.0.0.1", ns ? TopologyNetwork.NamespaceOf(pgName) : null));
        }

        for (var i = 0; i < services.Length; i++)
        {
            var kind = services[i];
            var lbName = "lb-" + kind.ShortName();
            var port = ns ? BalancerPort : PortAllocator.Next();
            var address = ns ? Address(5 + i) : "127.0.0.1";
            _nodes.Add(new TopologyNode(lbName, NodeRole.Balancer, kind, address, ns ? TopologyNetwork.NamespaceOf(lbName) : null)
            {
                Port = port,
                Url = new Uri($"http://{address}:{port.ToString(CultureInfo.InvariantCulture)}/"),
            });
        }

        for (var i = 0; i < services.Length; i++)
        {
            var kind = services[i];
            for (var r = 1; r <= CountOf(kind); r++)
            {
                var name = $"{kind.ShortName()}-{r.ToString(CultureInfo.InvariantCulture)}";
                var port = ns ? ServicePort : PortAllocator.Next();
                var address = ns ? Address(10 + (20 * i) + r) : "127.0.0.1";
                _nodes.Add(new TopologyNode(name, kind == ServiceKind.Order ? NodeRole.Coordinator : NodeRole.Participant, kind, address, ns ? TopologyNetwork.NamespaceOf(name) : null)
                {
                    Port = port,
                    Url = new Uri($"http://{address}:{port.ToString(CultureInfo.InvariantCulture)}/"),
                });
            }
        }
    }

    private static string Address(int host) => "10.211.0." + host.ToString(CultureInfo.InvariantCulture);

    private async Task StartAsync(CancellationToken ct)
    {
        var repoRoot = RepoLocator.FindRepoRoot(Directory.GetCurrentDirectory(), AppContext.BaseDirectory)
            ?? throw new ServiceStartException($"No {RepoLocator.SolutionFile} above {Directory.GetCurrentDirectory()} or {AppContext.BaseDirectory}.");
        if (Options.Namespaces)
        {
            TopologyNetwork.CheckPrerequisites();
            TopologyNetwork.RemoveLeftovers(Log);
            TopologyNetwork.CheckSubnetFree();
        }
        else
        {
            TopologyNetwork.CheckHaProxy();
        }

        Directory.CreateDirectory(Folder);
        LayOut();
        if (Options.Namespaces)
        {
            _network = new TopologyNetwork(Log);
            _network.CreateBridge();
            foreach (var node in _nodes)
            {
                _network.AddNode(node.Name, node.Address);
            }

            Links = _network.Links;
            Log($"{_nodes.Count} namespaces on {TopologyNetwork.Bridge}: {string.Join(", ", _nodes.Select(n => $"{n.Name} {n.Address}"))}");
        }

        await StartDatabasesAsync(ct);
        CreateReplicas(repoRoot);

        // The first replica of each service alone: it creates the schema, and N replicas racing the same DDL would fail.
        var first = ServiceKinds.All.Select(k => Replicas(k)[0]).ToList();
        await StartReplicasAsync(first, ct);
        await StartReplicasAsync([.. _nodes.Where(n => n.Process is not null).Except(first)], ct);

        foreach (var kind in ServiceKinds.All)
        {
            var balancer = BalancerOf(kind);
            balancer.Balancer = await HaProxy.StartAsync(
                new HaProxyOptions(balancer.Name, balancer.Address, balancer.Port, [.. Replicas(kind).Select(r => r.Url!)], Folder) { Namespace = balancer.Namespace },
                ct);
        }

        await WaitAllReadyAsync(Options.ReadyTimeout, ct);
        Log($"topology ready in {Folder}: entry {EntryUrl(ServiceKind.Order)}, {Options.Coordinators} coordinators, {Options.StorageReplicas} storage, {Options.DeliveryReplicas} delivery replicas, pool {PoolSizePerReplica} per replica");
    }

    private async Task StartDatabasesAsync(CancellationToken ct)
    {
        var databases = _nodes.Where(n => n.Role == NodeRole.Database).ToList();
        var clusters = await Task.WhenAll(databases.Select((node, i) => PostgresCluster.CreateAsync(
            new PostgresClusterOptions
            {
                ParentFolder = Folder,
                Name = node.Name,
                Namespace = node.Namespace,
                ListenAddress = node.Address,
                TrustedNetwork = Options.Namespaces ? TopologyNetwork.Subnet : null,
                // In its own namespace the port is its own; on loopback three disjoint ranges in net's own 17300-17399.
                FirstPort = Options.Namespaces ? PostgresPort : 17300 + (i * 30),
                PortTries = Options.Namespaces ? 1 : 30,
                MaxConnections = MaxConnections,
            },
            ct)));
        for (var i = 0; i < databases.Count; i++)
        {
            databases[i].Database = clusters[i];
            databases[i].Port = clusters[i].Port;
        }

        Databases = await PostgresDatabases.CreateAsync(
            ServiceKinds.All.ToDictionary(k => k, k => DatabaseOf(k).Database!.ConnectionString),
            $"tp_{Guid.NewGuid():N}"[..15],
            ct);

        // Each replica opens up to 1.5 pools' worth (a durable pool and a relaxed one half its size, PostgresDatabases);
        // all replicas of a service together stay 10 under the server's limit.
        var most = Math.Max(Options.Coordinators, Math.Max(Options.StorageReplicas, Options.DeliveryReplicas));
        PoolSizePerReplica = Options.PoolSizePerService ?? Math.Clamp((MaxConnections - 10) * 2 / 3 / most, 4, 64);
        Log($"databases: {string.Join(", ", databases.Select(d => $"{d.Name} {d.Address}:{d.Port}"))}");
    }

    private void CreateReplicas(string repoRoot)
    {
        var secretFile = Path.Combine(Folder, "config", "twophase", "secret");
        var orderEntry = BalancerOf(ServiceKind.Order).Url!;
        foreach (var node in _nodes.Where(n => n.Role is NodeRole.Coordinator or NodeRole.Participant))
        {
            var kind = node.Service;
            var extra = new Dictionary<string, string>(StringComparer.Ordinal);
            if (kind == ServiceKind.Order)
            {
                // Read by the coordinator-group work (lease, group); ignored by a build without it.
                extra["TwoPhase__Coordinator__Group"] = Options.CoordinatorGroup;
                extra["TwoPhase__Coordinator__AdvertisedUrl"] = orderEntry.GetLeftPart(UriPartial.Authority);
                extra["TwoPhase__Coordinator__ReplicaId"] = node.Name;
            }

            var environment = ServiceEnvironment.For(kind, new ServiceEnvironmentSettings
            {
                SecretFile = secretFile,
                Secret = Secret,
                SeedEnabled = Options.SeedEnabled,
                LogLevel = Options.LogLevel,
                DatabaseProvider = "postgres",
                ConnectionString = Databases!.ConnectionStrings[kind],
                MaxPoolSize = PoolSizePerReplica,
                // Only through the balancers: a coordinator never knows a participant replica's own address.
                Participants =
                [
                    new ParticipantLink(ServiceKind.Storage, BalancerOf(ServiceKind.Storage).Url!),
                    new ParticipantLink(ServiceKind.Delivery, BalancerOf(ServiceKind.Delivery).Url!),
                ],
                BatchMessages = Options.BatchMessages,
                PrepareDeadlineMs = Options.PrepareDeadlineMs,
                CoordinatorUrl = orderEntry,
                Recovery = Options.Recovery,
                Extra = [extra, Options.ExtraEnvironment],
            });
            var project = kind.ProjectName();
            var dll = Path.Combine(repoRoot, "src", project, "bin", Options.Configuration, "net10.0", project + ".dll");
            node.Process = new ServiceProcess(kind, dll, node.Url!, environment, Path.Combine(Folder, node.Name + ".log")) { Namespace = node.Namespace };
        }
    }

    private async Task StartReplicasAsync(IReadOnlyList<TopologyNode> replicas, CancellationToken ct)
    {
        if (replicas.Count == 0)
        {
            return;
        }

        foreach (var node in replicas)
        {
            node.Process!.Start();
        }

        await Task.WhenAll(replicas.Select(n => n.Process!.WaitReadyAsync(_probe, Options.ReadyTimeout, ct)));
        Log($"ready: {string.Join(", ", replicas.Select(n => n.Name))}");
    }

    private static void ResumeTree(int pid)
    {
        TrySignal(pid, Signals.Resume);
        foreach (var child in ProcessTree.Descendants(pid))
        {
            TrySignal(child, Signals.Resume);
        }
    }

    private static void TrySignal(int pid, Action<int> signal)
    {
        try
        {
            signal(pid);
        }
        catch (InvalidOperationException)
        {
            // Exited in between.
        }
    }

    private void Log(string line) => _log(line);
}
