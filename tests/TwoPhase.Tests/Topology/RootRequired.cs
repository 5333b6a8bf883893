using TwoPhase.Harness.Topology;

namespace TwoPhase.Tests.Topology;

/// <summary>The topology tests build namespaces, veths and nft rules: they need root, and fail (never skip) without it.</summary>
internal static class RootRequired
{
    public static void Check()
    {
        if (Environment.UserName != "root")
        {
            Assert.Fail($"The topology tests need root (network namespaces, veth pairs, nft rules); running as '{Environment.UserName}'. Run them as root (scripts/test.sh does).");
        }
    }

    /// <summary>Whether anything the topology makes (tp-* namespaces, tp-br0, tpv-* veths) is still on the machine.</summary>
    public static string Leftovers()
    {
        var namespaces = HostCommand.Run("ip", ["netns", "list"]).StandardOutput
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("tp-", StringComparison.Ordinal));
        var links = HostCommand.Run("ip", ["-o", "link", "show"]).StandardOutput
            .Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(':', 3) is { Length: 3 } p ? p[1].Trim().Split('@')[0] : "")
            .Where(n => n == "tp-br0" || n.StartsWith("tpv-", StringComparison.Ordinal));
        return string.Join(", ", namespaces.Concat(links));
    }
}
