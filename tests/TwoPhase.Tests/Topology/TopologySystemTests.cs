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
}
