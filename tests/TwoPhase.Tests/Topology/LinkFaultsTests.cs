using System.Net.Sockets;
using TwoPhase.Harness.Topology;

namespace TwoPhase.Tests.Topology;

/// <summary>
/// Link faults on a bare network of two namespaces (no services): a listener in node b (an HAProxy, which needs no other
/// tool), TCP connects from node a (bash's /dev/tcp inside its namespace) and from the harness.
/// </summary>
[Collection(TopologyCollection.Name)]
public sealed class LinkFaultsTests
{
    private const string A = "node-a";
    private const string B = "node-b";
    private const string AddressA = "10.211.0.201";
    private const string AddressB = "10.211.0.202";
    private const int Port = 8000;

    [Fact]
    public async Task CutLink_TcpConnectFailsWhileCut_WorksAfterHeal_OtherDirectionUntouched()
    {
        RootRequired.Check();
        using var network = TopologyNetwork.Create([(A, AddressA), (B, AddressB)]);
        await using var listener = await ListenAsync(network, B, AddressB);
        Assert.True(await ConnectsFromAsync(network, A, AddressB), "before any fault, a connects to b");

        await network.Links.CutAsync(A, B);
        Assert.Equal(["cut node-a -> node-b"], network.Links.Active);
        Assert.False(await ConnectsFromAsync(network, A, AddressB), "while a -> b is cut, a cannot connect to b");
        // One way only: the harness still reaches b.
        Assert.True(await ConnectsFromHarnessAsync(AddressB), "the harness still reaches b");

        await network.Links.HealAsync();
        Assert.Empty(network.Links.Active);
        Assert.True(await ConnectsFromAsync(network, A, AddressB), "after heal, a connects to b again");
    }

    [Fact]
    public async Task CutFromHarness_AppliedInTheNodesNamespace_HarnessCannotConnect_NodeToNodeStillWorks()
    {
        RootRequired.Check();
        using var network = TopologyNetwork.Create([(A, AddressA), (B, AddressB)]);
        await using var listener = await ListenAsync(network, B, AddressB);

        await network.Links.CutAsync(LinkFaults.Harness, B);
        Assert.False(await ConnectsFromHarnessAsync(AddressB), "while harness -> b is cut the harness cannot connect");
        Assert.True(await ConnectsFromAsync(network, A, AddressB), "a still reaches b");
        // The rule lives in b's namespace, never in the root namespace's firewall.
        Assert.Contains("10.211.0.1", network.Exec(B, ["nft", "list", "table", "inet", "twophase_faults"]).StandardOutput, StringComparison.Ordinal);
        Assert.DoesNotContain("twophase_faults", HostCommand.Run("nft", ["list", "tables"]).StandardOutput, StringComparison.Ordinal);

        await network.Links.HealAsync();
        Assert.True(await ConnectsFromHarnessAsync(AddressB), "after heal the harness connects again");
    }

    [Fact]
    public async Task Loss50Percent_SomeConnectsFailSomeSucceed_AllSucceedAfterHeal()
    {
        RootRequired.Check();
        using var network = TopologyNetwork.Create([(A, AddressA), (B, AddressB)]);
        await using var listener = await ListenAsync(network, B, AddressB);

        await network.Links.LossAsync(LinkFaults.Harness, B, 50);
        // A connect needs the SYN and the SYN-ACK through (0.5 x 0.5); within 400 ms there is no retransmission (1 s).
        var results = new List<bool>();
        for (var i = 0; i < 40; i++)
        {
            results.Add(await ConnectsFromHarnessAsync(AddressB, TimeSpan.FromMilliseconds(400)));
        }

        Assert.Contains(false, results);
        Assert.Contains(true, results);

        await network.Links.HealAsync();
        for (var i = 0; i < 10; i++)
        {
            Assert.True(await ConnectsFromHarnessAsync(AddressB), $"connect {i} after heal");
        }
    }

    [Fact]
    public async Task Slow_PutsATokenBucketOnTheNodesInterface_HealRemovesIt()
    {
        RootRequired.Check();
        using var network = TopologyNetwork.Create([(A, AddressA), (B, AddressB)]);
        await network.Links.SlowAsync(A, 256);
        Assert.Contains("tbf", network.Exec(A, ["tc", "qdisc", "show", "dev", "eth0"]).StandardOutput, StringComparison.Ordinal);
        await network.Links.HealAsync();
        Assert.DoesNotContain("tbf", network.Exec(A, ["tc", "qdisc", "show", "dev", "eth0"]).StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Delay_WithoutNetem_IsRefusedClearly()
    {
        RootRequired.Check();
        using var network = TopologyNetwork.Create([(A, AddressA), (B, AddressB)]);
        // The probe in a scratch namespace must agree with the kernel: tc netem either works or it does not.
        var netem = network.Exec(A, ["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"], check: false).ExitCode == 0;
        Assert.Equal(netem, LinkFaults.DelaySupported);
        if (!netem)
        {
            await Assert.ThrowsAsync<NotSupportedException>(() => network.Links.DelayAsync(A, B, TimeSpan.FromMilliseconds(50)));
        }
        else
        {
            await network.Links.DelayAsync(A, B, TimeSpan.FromMilliseconds(50));
            Assert.Contains("netem", network.Exec(A, ["tc", "qdisc", "show", "dev", "eth0"]).StandardOutput, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Dispose_LeavesNoNamespaceNoVethNoBridge()
    {
        RootRequired.Check();
        var network = TopologyNetwork.Create([(A, AddressA), (B, AddressB)]);
        Assert.Contains("tp-node-a", RootRequired.Leftovers(), StringComparison.Ordinal);
        network.Dispose();
        Assert.Equal("", RootRequired.Leftovers());
    }

    [Fact]
    public async Task UnknownNodeOrAddressOutsideTheSubnet_IsRefused()
    {
        RootRequired.Check();
        Assert.Throws<ArgumentException>(() => TopologyNetwork.Create([(A, "192.0.2.9")]));
        Assert.Throws<ArgumentException>(() => TopologyNetwork.Create([(A, "10.211.0.1")]));
        using var network = TopologyNetwork.Create([(A, AddressA), (B, AddressB)]);
        await Assert.ThrowsAsync<ArgumentException>(() => network.Links.CutAsync(A, "nobody"));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => network.Links.LossAsync(A, B, 0));
        Assert.Empty(network.Links.Active);
    }

    /// <summary>An HAProxy listening in the node's namespace: a TCP listener made with a tool the topology needs anyway.</summary>
    private static Task<HaProxy> ListenAsync(TopologyNetwork network, string node, string address) =>
        HaProxy.StartAsync(new HaProxyOptions("listener-" + node, address, Port, [new Uri("http://127.0.0.1:9/")], Path.Combine(Path.GetTempPath(), "twophase-linkfaults-" + Guid.NewGuid().ToString("N")[..8]))
        {
            Namespace = network.Nodes[node].Namespace,
        });

    /// <summary>A TCP connect from inside <paramref name="node"/>'s namespace, bounded by coreutils timeout.</summary>
    private static Task<bool> ConnectsFromAsync(TopologyNetwork network, string node, string address) =>
        Task.Run(() => network.Exec(node, ["timeout", "2", "bash", "-c", $"exec 3<>/dev/tcp/{address}/{Port}"], check: false, timeout: TimeSpan.FromSeconds(10)).ExitCode == 0);

    private static async Task<bool> ConnectsFromHarnessAsync(string address, TimeSpan? timeout = null)
    {
        using var client = new TcpClient();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(2));
        try
        {
            await client.ConnectAsync(address, Port, cts.Token);
            return true;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            return false;
        }
    }
}

/// <summary>The topology tests share one subnet and one bridge name: they run one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TopologyCollection
{
    public const string Name = "Topology (namespaces, one at a time)";
}
