using TwoPhase.Harness.Client;
using TwoPhase.Harness;
using TwoPhase.Harness.Topology;
using Xunit.Abstractions;

namespace TwoPhase.Tests.Topology;

/// <summary>The whole topology in namespaces: PostgreSQL per service, replicas, balancers; an order placed through lb-order.</summary>
[Collection(TopologyCollection.Name)]
public sealed class TopologySystemTests(ITestOutputHelper output)
{
    [Fact]
    public async Task OneReplicaEach_InNamespaces_OrderThroughTheBalancerCommits_DisposeRemovesEverything()
    {
        RootRequired.Check();
        var options = new TopologyOptions { Coordinators = 1, StorageReplicas = 1, DeliveryReplicas = 1, Recovery = RecoverySettings.Quick, PrepareDeadlineMs = 3000 };
        await using (var topology = await TopologySystem.StartAsync(options, output.WriteLine))
        {
            Assert.Equal(["pg-order", "pg-storage", "pg-delivery", "lb-order", "lb-storage", "lb-delivery", "order-1", "storage-1", "delivery-1"], topology.Nodes.Select(n => n.Name));
            Assert.All(topology.Nodes, n => Assert.StartsWith("10.211.0.", n.Address, StringComparison.Ordinal));
            Assert.Equal(new Uri("http://10.211.0.5:8000/"), topology.EntryUrl(ServiceKind.Order));

            // ip netns exec execs: the process the harness holds is the service itself, inside its namespace.
            var order = topology["order-1"];
            var pid = order.Process!.ProcessId!.Value;
            Assert.Equal("tp-order-1", HostCommand.Run("ip", ["netns", "identify", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]).StandardOutput.Trim());
            Assert.Contains("dotnet", File.ReadAllText($"/proc/{pid}/cmdline"), StringComparison.Ordinal);

            using var http = Api.CreateHttpClient(topology.Secret);
            var api = new Api(http, topology.EntryUrl(ServiceKind.Order), topology.EntryUrl(ServiceKind.Storage), topology.EntryUrl(ServiceKind.Delivery));
            await api.AddProductAsync("widget", 5);
            await api.AddCouriersAsync(3);
            var placed = await api.PlaceOrderAsync("widget", 2);
            Assert.True(placed.Order is { } view && view.Status == "committed", $"order answered {placed.Status}: {placed.Body}\n{topology.Tails()}");

            // The coordinator reached the participants through their balancers only: its configuration names no replica.
            Assert.Equal("http://10.211.0.6:8000", order.Process.Environment["TwoPhase__Coordinator__Participants__0__Url"]);
            Assert.Equal("http://10.211.0.5:8000", topology["storage-1"].Process!.Environment["TwoPhase__Participant__CoordinatorUrl"]);

            // A cut between the coordinator and lb-storage makes the next order fail to commit; heal and it commits again.
            await topology.Links!.CutBothAsync("order-1", "lb-storage");
            var cut = await api.PlaceOrderAsync("widget", 1);
            Assert.NotEqual("committed", cut.Order?.Status);
            await topology.Links.HealAsync();
            await topology.WaitAllReadyAsync(TimeSpan.FromSeconds(60));
            var healed = await api.PlaceOrderAsync("widget", 1);
            Assert.True(healed.Order is { Status: "committed" }, $"after heal the order answered {healed.Status}: {healed.Body}");
        }

        Assert.Equal("", RootRequired.Leftovers());
    }

    [Fact]
    public async Task DefaultShape_ThreeTwoTwo_InNamespaces_ReplicaCutOffFromItsBalancerLeavesRotation_OrdersCommit()
    {
        RootRequired.Check();
        await using var topology = await TopologySystem.StartAsync(new TopologyOptions { Recovery = RecoverySettings.Quick, PrepareDeadlineMs = 5000 }, output.WriteLine);
        Assert.Equal(["order-1", "order-2", "order-3"], topology.Replicas(ServiceKind.Order).Select(n => n.Name));
        Assert.Equal(2, topology.Replicas(ServiceKind.Storage).Count);
        Assert.Equal(2, topology.Replicas(ServiceKind.Delivery).Count);
        Assert.All(topology.Replicas(ServiceKind.Order), n => Assert.Equal(n.Name, n.Process!.Environment["TwoPhase__Coordinator__ReplicaId"]));

        using var http = Api.CreateHttpClient(topology.Secret);
        var api = new Api(http, topology.EntryUrl(ServiceKind.Order), topology.EntryUrl(ServiceKind.Storage), topology.EntryUrl(ServiceKind.Delivery));
        await api.AddProductAsync("widget", 50);
        await api.AddCouriersAsync(20);

        // storage-1 cut off from lb-storage: its health checks fail, HAProxy takes it out, storage-2 serves.
        var storage1 = topology["storage-1"];
        await topology.Links!.CutBothAsync("storage-1", "lb-storage");
        var lb = topology.BalancerOf(ServiceKind.Storage).Balancer!;
        using (var wait = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            while ((await lb.BackendStatesAsync(wait.Token)).GetValueOrDefault(storage1.Url!) != "DOWN")
            {
                await Task.Delay(100, wait.Token);
            }
        }

        for (var i = 0; i < 5; i++)
        {
            var placed = await api.PlaceOrderAsync("widget", 1);
            Assert.True(placed.Order is { Status: "committed" }, $"order {i} with storage-1 cut off answered {placed.Status}: {placed.Body}\n{topology.Tails()}");
        }

        // A paused coordinator replica: the others keep taking orders (leastconn sends new connections elsewhere).
        topology.Pause(topology["order-1"]);
        await topology.Links.HealAsync();
        using var fresh = Api.CreateHttpClient(topology.Secret);
        var api2 = new Api(fresh, topology.EntryUrl(ServiceKind.Order), topology.EntryUrl(ServiceKind.Storage), topology.EntryUrl(ServiceKind.Delivery));
        using (var wait = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            var orderLb = topology.BalancerOf(ServiceKind.Order).Balancer!;
            while ((await orderLb.BackendStatesAsync(wait.Token)).GetValueOrDefault(topology["order-1"].Url!) != "DOWN")
            {
                await Task.Delay(100, wait.Token);
            }
        }

        var during = await api2.PlaceOrderAsync("widget", 1);
        Assert.True(during.Order is { Status: "committed" }, $"with order-1 paused the order answered {during.Status}: {during.Body}");
        topology.Resume(topology["order-1"]);
        await topology.WaitAllReadyAsync(TimeSpan.FromSeconds(90));
    }
}

/// <summary>The topology without namespaces (what the bench compares 3 against 1 coordinators with): all on 127.0.0.1.</summary>
[Collection(TopologyCollection.Name)]
public sealed class TopologyLoopbackTests(ITestOutputHelper output)
{
    [Fact]
    public async Task TwoCoordinatorsTwoStorageReplicas_OnLoopback_KilledReplicaAndPausedDatabase_OrdersStillCommit()
    {
        var options = new TopologyOptions { Namespaces = false, Coordinators = 2, StorageReplicas = 2, DeliveryReplicas = 1, Recovery = RecoverySettings.Quick, PrepareDeadlineMs = 5000 };
        await using var topology = await TopologySystem.StartAsync(options, output.WriteLine);
        Assert.Null(topology.Links);
        Assert.All(topology.Nodes, n => Assert.Equal("127.0.0.1", n.Address));
        Assert.Equal(topology.Nodes.Count(n => n.Url is not null), topology.Nodes.Where(n => n.Url is not null).Select(n => n.Url!.Port).Distinct().Count());
        Assert.Equal(["order-1", "order-2"], topology.Replicas(ServiceKind.Order).Select(n => n.Name));

        using var http = Api.CreateHttpClient(topology.Secret);
        var api = new Api(http, topology.EntryUrl(ServiceKind.Order), topology.EntryUrl(ServiceKind.Storage), topology.EntryUrl(ServiceKind.Delivery));
        await api.AddProductAsync("widget", 50);
        await api.AddCouriersAsync(20);
        await CommitsAsync(api, topology, "at start");

        // A killed storage replica: lb-storage retries the refused connection on the other one (retry-on conn-failure).
        var storage1 = topology["storage-1"];
        await topology.KillAsync(storage1);
        Assert.False(storage1.Process!.IsRunning);
        for (var i = 0; i < 3; i++)
        {
            await CommitsAsync(api, topology, $"with storage-1 dead ({i})");
        }

        await topology.RestartAsync(storage1);
        Assert.True(storage1.Process.IsRunning);

        // A paused database: the postmaster and every backend stopped (state T), then running again.
        var database = topology.DatabaseOf(ServiceKind.Delivery);
        var postmaster = database.Database!.PostmasterProcessId!.Value;
        topology.Pause(database);
        Assert.Equal('T', State(postmaster));
        topology.Resume(database);
        Assert.NotEqual('T', State(postmaster));

        // A database crash (immediate stop) and restart: orders commit again once the replicas reconnect.
        await topology.KillAsync(database);
        await topology.RestartAsync(database);
        await topology.WaitAllReadyAsync(TimeSpan.FromSeconds(90));
        await CommitsAsync(api, topology, "after the delivery database restarted");

        // A killed and restarted coordinator replica comes back behind lb-order.
        await topology.KillAsync(topology["order-1"]);
        await CommitsAsync(api, topology, "with order-1 dead");
        await topology.RestartAsync(topology["order-1"]);
        await topology.WaitAllReadyAsync(TimeSpan.FromSeconds(90));
    }

    private static async Task CommitsAsync(Api api, TopologySystem topology, string when)
    {
        var placed = await api.PlaceOrderAsync("widget", 1);
        Assert.True(placed.Order is { Status: "committed" }, $"{when}: the order answered {placed.Status}: {placed.Body}\n{topology.Tails()}");
    }

    private static char State(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        return stat[stat.LastIndexOf(')') + 2];
    }
}
