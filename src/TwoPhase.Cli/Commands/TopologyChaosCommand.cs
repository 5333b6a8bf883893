using System.CommandLine;
using System.CommandLine.Invocation;
using Spectre.Console;
using TwoPhase.Cli.Chaos;

namespace TwoPhase.Cli.Commands;

/// <summary>
/// <c>chaos --topology</c>: the chaos command on the multi-host topology (issue 14): 3 coordinator replicas, 2 storage,
/// 2 delivery, a PostgreSQL cluster and an HAProxy per service, each in a network namespace of its own; load through
/// lb-order; a seeded schedule of every nemesis (isolate, split, bridge, flaky link, slow link, kill -9, pause, database
/// kill) over every kind of node; then heal, converge, audit. Added to the existing chaos command as an option, so
/// <c>chaos</c> without it is unchanged.
/// </summary>
internal static class TopologyChaosCommand
{
    /// <summary>Adds --topology and its options to <paramref name="chaos"/>; with --topology its action runs the topology run.</summary>
    public static Command Extend(Command chaos)
    {
        ArgumentNullException.ThrowIfNull(chaos);
        var topology = new Option<bool>("--topology")
        {
            Description = "Run on the multi-host topology in network namespaces (needs root): replicas, a PostgreSQL cluster and an HAProxy per service, " +
                          "and a random schedule of every nemesis. Uses --orders (default 20000 here), --concurrency, --random-seed/--seed and the options below marked (--topology).",
        };
        var faults = new Option<int>("--faults") { Description = "(--topology) How many faults.", DefaultValueFactory = _ => 100, Validators = { r => CommandSupport.Between(r, 0, 10_000) } };
        var coordinators = new Option<int>("--coordinators") { Description = "(--topology) Order-service replicas.", DefaultValueFactory = _ => 3, Validators = { r => CommandSupport.Between(r, 1, 9) } };
        var storage = new Option<int>("--storage") { Description = "(--topology) Storage replicas.", DefaultValueFactory = _ => 2, Validators = { r => CommandSupport.Between(r, 1, 9) } };
        var delivery = new Option<int>("--delivery") { Description = "(--topology) Delivery replicas.", DefaultValueFactory = _ => 2, Validators = { r => CommandSupport.Between(r, 1, 9) } };
        var leaseMs = new Option<int>("--lease-ms") { Description = "(--topology) The coordinators' recovery lease; convergence must come within it + 10 s of the last heal.", DefaultValueFactory = _ => 5000, Validators = { r => CommandSupport.Between(r, 200, 600_000) } };
        var minFault = new Option<int>("--min-fault-ms") { Description = "(--topology) Shortest fault.", DefaultValueFactory = _ => 1000, Validators = { r => CommandSupport.Between(r, 50, 600_000) } };
        var maxFault = new Option<int>("--max-fault-ms") { Description = "(--topology) Longest fault.", DefaultValueFactory = _ => 4000, Validators = { r => CommandSupport.Between(r, 50, 600_000) } };
        var json = new Option<string?>("--json") { Description = "(--topology) Also write the report as JSON to this file." };
        foreach (var option in new Option[] { topology, faults, coordinators, storage, delivery, leaseMs, minFault, maxFault, json })
        {
            chaos.Options.Add(option);
        }

        var orders = Find<int>(chaos, "--orders");
        var concurrency = Find<int>(chaos, "--concurrency");
        var seed = Find<int>(chaos, "--random-seed");
        seed.Aliases.Add("--seed");
        var maxChaos = Find<int>(chaos, "--max-chaos-seconds");
        var convergeTimeout = Find<int>(chaos, "--converge-timeout");
        var noBuild = Find<bool>(chaos, "--no-build");
        var runDir = Find<string?>(chaos, "--run-dir");
        var repo = Find<string?>(chaos, "--repo");
        var plain = chaos.Action as AsynchronousCommandLineAction ?? throw new InvalidOperationException("The chaos command has no asynchronous action.");
        chaos.SetAction((parse, ct) =>
        {
            if (!parse.GetValue(topology))
            {
                return plain.InvokeAsync(parse, ct);
            }

            var given = parse.GetResult(orders) is { Implicit: false };
            var settings = new TopologyChaosSettings
            {
                Orders = given ? parse.GetValue(orders) : 20_000,
                Faults = parse.GetValue(faults),
                Coordinators = parse.GetValue(coordinators),
                StorageReplicas = parse.GetValue(storage),
                DeliveryReplicas = parse.GetValue(delivery),
                Seed = parse.GetValue(seed),
                Concurrency = parse.GetValue(concurrency),
                RecoveryLease = TimeSpan.FromMilliseconds(parse.GetValue(leaseMs)),
                MinFault = TimeSpan.FromMilliseconds(parse.GetValue(minFault)),
                MaxFault = TimeSpan.FromMilliseconds(parse.GetValue(maxFault)),
                MaxChaos = TimeSpan.FromSeconds(Math.Max(parse.GetValue(maxChaos), 1800)),
                ConvergeTimeout = TimeSpan.FromSeconds(parse.GetValue(convergeTimeout)),
            };
            return RunAsync(settings, parse.GetValue(json), parse.GetValue(noBuild), parse.GetValue(runDir), parse.GetValue(repo), ct);
        });
        return chaos;
    }

    private static Option<T> Find<T>(Command command, string name) =>
        command.Options.OfType<Option<T>>().FirstOrDefault(o => o.Name == name)
        ?? throw new InvalidOperationException($"The chaos command has no option {name}.");

    private static async Task<int> RunAsync(TopologyChaosSettings settings, string? json, bool noBuild, string? runDir, string? repo, CancellationToken ct)
    {
        var console = AnsiConsole.Console;
        var problems = TopologyChaosRun.Problems(settings).ToList();
        if (TopologyChaosRun.Preflight() is { } preflight)
        {
            problems.Insert(0, preflight);
        }

        if (problems.Count > 0)
        {
            foreach (var problem in problems)
            {
                console.MarkupLine($"[red]{Markup.Escape(problem)}[/]");
            }

            return ExitCodes.SetupFailed;
        }

        if (CommandSupport.PrepareRun(console, "chaos-topology", repo, runDir, sqliteFilesThere: false) is not { } place)
        {
            return ExitCodes.SetupFailed;
        }

        return await CommandSupport.GuardAsync(console, async () =>
        {
            if (!noBuild)
            {
                await CommandSupport.BuildServicesAsync(console, place, settings.Configuration, ct);
            }

            int answered = 0;
            TopologyChaosResult result;
            try
            {
                result = await TopologyChaosRun.RunAsync(settings with { Folder = Path.Combine(place.RunFolder, "topology") },
                line => console.MarkupLine($"[grey]{DateTime.UtcNow:HH:mm:ss}[/] {Markup.Escape(line)}"),
                _ =>
                {
                    var n = Interlocked.Increment(ref answered);
                    if (n % 1000 == 0)
                    {
                        console.MarkupLine($"[grey]{DateTime.UtcNow:HH:mm:ss}[/] {n:N0} orders answered");
                    }
                },
                ct);
            }
            catch (Exception ex) when (ex is TwoPhase.Harness.Topology.TopologyException or InvalidOperationException or TimeoutException)
            {
                console.MarkupLine($"[red]{Markup.Escape(ex.Message)}[/]");
                return ExitCodes.Failed;
            }

            TopologyChaosReport.Print(console, result);
            if (json is not null)
            {
                await File.WriteAllTextAsync(json, TopologyChaosReport.Json(result), ct);
                console.MarkupLine($"JSON report: {Markup.Escape(Path.GetFullPath(json))}");
            }

            return result.Passed ? ExitCodes.Ok : ExitCodes.Failed;
        }, ct);
    }
}
