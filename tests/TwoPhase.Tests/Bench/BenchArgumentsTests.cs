using System.CommandLine;
using TwoPhase.Cli.Bench;
using TwoPhase.Cli.Commands;

namespace TwoPhase.Tests.Bench;

/// <summary>The bench's new options: what is accepted, and a clear message with exit code 2 (nothing run) for what is not.</summary>
public sealed class BenchArgumentsTests
{
    private static BenchArguments Args(
        bool postgres = true, bool urls = false, bool sqlite = false, bool overload = false, bool sweep = false, int? peak = null, string? rates = null, string? plot = null,
        int? soak = null, int soakRate = 100, int soakSample = 10, int coordinators = 1, string? alternate = null, int runs = 3, string[]? workloads = null) =>
        new(postgres, urls, sqlite, overload, sweep, peak, rates, plot, soak, soakRate, soakSample, coordinators, alternate, runs, workloads ?? []);

    public static TheoryData<BenchArguments> Accepted() =>
    [
        Args(),
        Args(sweep: true),
        Args(sweep: true, peak: 900, rates: "10,50,100", plot: "curve.svg"),
        Args(postgres: false, sqlite: true),
        Args(postgres: false, sqlite: true, sweep: true),
        Args(soak: 600),
        Args(soak: 30, soakRate: 50, soakSample: 5),
        Args(postgres: false, coordinators: 3),
        Args(postgres: false, alternate: "1,3", runs: 5),
        Args(workloads: ["monolith", "plentiful:64", "monolith:16"]),
    ];

    [Theory]
    [MemberData(nameof(Accepted))]
    public void Accepted_ArgumentsPassTheCheck(BenchArguments arguments) => Assert.Null(arguments.Check());

    public static TheoryData<BenchArguments, string> Refused() => new()
    {
        { Args(postgres: false), "needs --postgres" },
        { Args(sweep: true, overload: true), "Choose one of" },
        { Args(sweep: true, soak: 60), "Choose one of" },
        { Args(peak: 100), "belong to --sweep" },
        { Args(rates: "10"), "belong to --sweep" },
        { Args(sweep: true, rates: "10,x"), "'x'" },
        { Args(sweep: true, peak: 0), "--peak-rate" },
        { Args(sweep: true, plot: "curve.jpg"), ".svg or .png" },
        { Args(soak: 5), "--soak must be" },
        { Args(soakRate: 50), "belong to --soak" },
        { Args(soak: 60, soakSample: 120), "--soak-sample" },
        { Args(coordinators: 0), "--coordinators must be" },
        { Args(coordinators: 10), "--coordinators must be" },
        { Args(alternate: "3"), "--alternate must be" },
        { Args(alternate: "1,1"), "--alternate must be" },
        { Args(alternate: "1,12"), "--alternate must be" },
        { Args(alternate: "1,3", coordinators: 3), "--alternate names the replica counts" },
        { Args(alternate: "1,3", runs: 0), "--runs must be" },
        { Args(runs: 5), "--runs belongs to --alternate" },
        { Args(postgres: false, urls: true, coordinators: 3), "not with --urls" },
        { Args(postgres: false, urls: true, sqlite: true), "--sqlite starts the services" },
        { Args(workloads: ["plentyful"]), "Unknown workload" },
        { Args(postgres: false, sqlite: true, workloads: ["monolith"]), "monolith workload runs on PostgreSQL" },
        { Args(sweep: true, workloads: ["plentiful"]), "--workload selects the standard runs" },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void Refused_ArgumentsNameTheProblem(BenchArguments arguments, string mentions) =>
        Assert.Contains(mentions, arguments.Check(), StringComparison.Ordinal);

    [Theory]
    [InlineData("1,3", new[] { 1, 3 })]
    [InlineData("3, 1, 2", new[] { 3, 1, 2 })]
    public void ReplicaCounts_Parse(string text, int[] expected) => Assert.Equal(expected, BenchArguments.ParseReplicaCounts(text));

    [Theory]
    [InlineData("--sweep --sweep-rates 10,abc")]
    [InlineData("--sweep --overload")]
    [InlineData("--coordinators 12")]
    [InlineData("--alternate 1")]
    [InlineData("--soak 3")]
    [InlineData("--plot x.svg")]
    [InlineData("--workload monolith --sqlite")]
    public async Task TheRealCommand_RefusesBadOptions_WithExitCode2_BeforeStartingAnything(string options)
    {
        var root = new RootCommand { BenchCommand.Create() };
        var args = new[] { "bench", "--postgres", "Host=127.0.0.1;Port=1;Username=nobody" }.Concat(options.Split(' ')).ToArray();
        var exit = await root.Parse(args).InvokeAsync();

        Assert.Equal(2, exit);
    }

    [Fact]
    public void Median_OddEvenAndNone()
    {
        Assert.Equal(3, BenchCommand.Median([5, 1, 3]));
        Assert.Equal(2.5, BenchCommand.Median([4, 1, 3, 2]));
        Assert.Equal(0, BenchCommand.Median([]));
    }
}
