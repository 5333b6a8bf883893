using Xunit.Abstractions;

namespace TwoPhase.Simulation.Tests;

public sealed class ExploreTests(ITestOutputHelper output)
{
    [Fact]
    public void Explore()
    {
        var from = int.Parse(Environment.GetEnvironmentVariable("SIM_FROM") ?? "1");
        var count = int.Parse(Environment.GetEnvironmentVariable("SIM_COUNT") ?? "200");
        var variant = Enum.Parse<BrokenVariant>(Environment.GetEnvironmentVariable("SIM_VARIANT") ?? "None");
        var summary = SimRunner.Run(from, count, variant);
        output.WriteLine($"{summary.Passed}/{summary.Count} passed, {summary.HistoriesPerSecond:0} histories/s, {summary.Steps / summary.Count} steps/history, {summary.Elapsed}");
        foreach (var f in summary.Failures.Take(3))
        {
            output.WriteLine(f.Report());
        }
        var groups = summary.Failures.GroupBy(f => f.Violation!.Split(':')[0] + ":" + (f.Violation.Split(':').ElementAtOrDefault(1) ?? "")).Select(g => $"{g.Count()} x {g.Key}");
        output.WriteLine(string.Join("\n", groups));
        Assert.True(true);
    }
}
