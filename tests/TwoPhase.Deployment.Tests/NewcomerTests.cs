using System.Text.Json;
using TwoPhase.Harness;
using Xunit.Abstractions;

namespace TwoPhase.Deployment.Tests;

/// <summary>What a new user does first: start the three services by hand, run simulate; install the CLI as a tool.</summary>
public sealed class NewcomerTests(ITestOutputHelper output)
{
    private const int Orders = 200;

    [Fact]
    public async Task Simulate200_AgainstServicesWithTheirOwnSeed_CommitsMostOrders()
    {
        // As the README starts them: fresh SQLite files, each service seeding itself (two products, five couriers).
        var folder = Directory.CreateTempSubdirectory("twophase-newcomer-").FullName;
        await using var system = new ReferenceSystem(new SystemOptions { Folder = folder, Ports = PortAllocator.PickFree(), SeedEnabled = true });
        await system.StartAsync(CancellationToken.None);

        var answers = Path.Combine(folder, "answers.json");
        var run = await Run.DotnetAsync(TimeSpan.FromMinutes(10), Repo.Dll("TwoPhase.Cli"), "simulate", "--orders", Orders.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--order-url", system.UrlOf(ServiceKind.Order).ToString(), "--storage-url", system.UrlOf(ServiceKind.Storage).ToString(),
            "--delivery-url", system.UrlOf(ServiceKind.Delivery).ToString(), "--secret", system.Secret, "--out", answers);
        output.WriteLine(run.Output);
        Assert.True(run.ExitCode == 0, $"simulate exited {run.ExitCode}:\n{run.Tail()}");

        using var json = JsonDocument.Parse(await File.ReadAllTextAsync(answers));
        var outcomes = json.RootElement.EnumerateArray().Select(a => a.GetProperty("outcome").ToString()).ToList();
        var committed = outcomes.Count(o => string.Equals(o, "committed", StringComparison.OrdinalIgnoreCase));
        output.WriteLine($"{committed} of {outcomes.Count} committed");
        Assert.Equal(Orders, outcomes.Count);
        Assert.True(committed >= Orders * 9 / 10, $"only {committed} of {Orders} orders committed:\n{run.Tail()}");
    }

    [Fact]
    public async Task Cli_PackedAsATool_InstallsAndAnswersHelp()
    {
        var folder = Directory.CreateTempSubdirectory("twophase-tool-").FullName;
        var feed = Path.Combine(folder, "feed");
        var tools = Path.Combine(folder, "tools");
        var pack = await Run.DotnetAsync(TimeSpan.FromMinutes(15), "pack", Repo.PathOf("src", "TwoPhase.Cli", "TwoPhase.Cli.csproj"), "-c", "Release", "-o", feed, "-nologo");
        Assert.True(pack.ExitCode == 0, $"dotnet pack exited {pack.ExitCode}:\n{pack.Tail()}");
        Assert.Single(Directory.GetFiles(feed, "TwoPhase.Cli.*.nupkg"));

        var install = await Run.DotnetAsync(TimeSpan.FromMinutes(10), "tool", "install", "TwoPhase.Cli", "--tool-path", tools, "--add-source", feed);
        Assert.True(install.ExitCode == 0, $"dotnet tool install exited {install.ExitCode}:\n{install.Tail()}");

        var help = await Run.ProcessAsync(Path.Combine(tools, "twophase"), ["--help"], TimeSpan.FromMinutes(2), workingDirectory: folder);
        Assert.True(help.ExitCode == 0, $"twophase --help exited {help.ExitCode}:\n{help.Tail()}");
        foreach (var command in new[] { "demo", "simulate", "audit", "chaos", "bench" })
        {
            Assert.Contains(command, help.Output, StringComparison.Ordinal);
        }
    }
}
