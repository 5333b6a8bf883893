using System.CommandLine;
using Spectre.Console;
using TwoPhase.Cli.Bench;
using TwoPhase.Cli.Rendering;
using TwoPhase.Harness.Audit;
using TwoPhase.Harness.Client;
using TwoPhase.Harness;
using TwoPhase.Harness.Topology;

namespace TwoPhase.Cli.Commands;

/// <summary>
/// <c>bench</c>: fixed closed-loop workloads against the three services on PostgreSQL with durable commits,
/// each after a warm-up and followed by an audit, plus the direct bound (the same database work from one
/// process). See docs/performance.md.
/// </summary>
internal static class BenchCommand
{
    private const string Release = "Release";

    public static Command Create()
    {
        var postgres = new Option<string?>("--postgres")
        {
            Description = "PostgreSQL connection string without Database (\"Host=127.0.0.1;Port=5447;Username=postgres\"). Fresh databases per workload and for the bound; dropped afterwards.",
        };
        var urls = new Option<string?>("--urls")
        {
            Description = "Bench running services instead: order=URL,storage=URL,delivery=URL. All workloads share that system; the bound still needs --postgres.",
        };
        var duration = new Option<int>("--duration")
        {
            Description = "Measured seconds per workload.",
            DefaultValueFactory = _ => 10,
            Validators = { r => CommandSupport.Between(r, 1, 3600) },
        };
        var warmup = new Option<int>("--warmup")
        {
            // Each workload starts fresh processes. Measured at concurrency 64: after 8 s the tiered JIT still runs
            // much of the hot path as tier-0 or instrumented code (528 orders/s), after 15 s 937/s, after 30 s the
            // steady state (1,251/s, the same as with the JIT's call-counting delay off and 15 s).
            Description = "Warm-up seconds before each measured window (not counted).",
            DefaultValueFactory = _ => 30,
            Validators = { r => CommandSupport.Between(r, 0, 600) },
        };
        var json = new Option<FileInfo?>("--json") { Description = "Also write the results as JSON to this file." };
        var only = new Option<string[]>("--workload")
        {
            Description = "Run only these workloads (plentiful, hot-sku, abort-heavy; NAME:CONCURRENCY for one concurrency, e.g. plentiful:64); repeatable. Default: all.",
            AllowMultipleArgumentsPerToken = true,
        };
        var noBound = new Option<bool>("--no-bound") { Description = "Skip the direct bound." };
        var allowNonDurable = new Option<bool>("--allow-non-durable") { Description = "Run even if the server has fsync or synchronous_commit off (the figures are then not the durable ones)." };
        var quietTimeout = CommandSupport.QuietTimeoutOption();
        var secret = CommandSupport.SecretOption();
        var noBuild = new Option<bool>("--no-build") { Description = "Do not build the services (Release) first." };
        var runDir = new Option<string?>("--run-dir") { Description = "Folder for the service logs (default: a fresh folder under the temp folder)." };
        var repo = new Option<string?>("--repo") { Description = "Repository root (default: found by walking up to TwoPhase.slnx)." };
        var overload = new Option<bool>("--overload")
        {
            Description = "Instead of the workloads: measure the peak (plentiful, closed loop at 64, --warmup then --duration), then offer it open loop for 10 s, "
                          + "--overload-factor times it for 30 s, and the peak again for 15 s; per-second table and a verdict (docs/performance.md).",
        };
        var overloadPeak = new Option<int?>("--overload-peak")
        {
            Description = "With --overload: use this many committed/s as the peak instead of the closed-loop measurement (which still runs, as the warm-up), "
                          + "so runs on a noisy machine offer the same rates.",
            Validators = { r => CommandSupport.Between(r, 1, 100_000) },
        };
        var overloadFactor = new Option<int>("--overload-factor")
        {
            Description = "With --overload: the offered load during the overload, as a multiple of the measured peak.",
            DefaultValueFactory = _ => 3,
            Validators = { r => CommandSupport.Between(r, 2, 20) },
        };

        var sweep = new Option<bool>("--sweep")
        {
            Description = "Instead of the workloads: the open-loop latency-throughput curve. Measure the peak (plentiful, closed loop at 64) or take --peak-rate, "
                          + "then offer --sweep-rates percentages of it open loop, each for --duration; latency from each order's intended start. Writes the picture (--plot).",
        };
        var peakRate = new Option<int?>("--peak-rate") { Description = "With --sweep: the peak in committed/s to take the percentages of (the closed loop then only warms up)." };
        var sweepRates = new Option<string?>("--sweep-rates") { Description = "With --sweep: comma-separated percentages of the peak (1-500, at most 20). Default 10,25,50,75,90,100,110." };
        var plot = new Option<FileInfo?>("--plot") { Description = "With --sweep: write the curve to this .svg or .png (default: next to --json as NAME.png, else sweep.png in the run folder)." };
        var sqlite = new Option<bool>("--sqlite") { Description = "Run the services on the embedded default, SQLite (a file per service in the run folder) instead of --postgres; the bound and the monolith need PostgreSQL and are skipped." };
        var soak = new Option<int?>("--soak") { Description = "Instead of the workloads: SECONDS (10-86400) of open-loop plentiful at --soak-rate, each service's working set sampled every --soak-sample seconds; first, last, max and slope." };
        var soakRate = new Option<int>("--soak-rate") { Description = "With --soak: orders/s offered.", DefaultValueFactory = _ => 100 };
        var soakSample = new Option<int>("--soak-sample") { Description = "With --soak: seconds between working-set samples.", DefaultValueFactory = _ => 10 };
        var coordinators = new Option<int>("--coordinators")
        {
            Description = "Run plentiful at 64 through an HAProxy balancer in front of N order-service replicas (one coordinator group; loopback topology with its own PostgreSQL clusters). 1-9.",
            DefaultValueFactory = _ => 1,
        };
        var alternate = new Option<string?>("--alternate") { Description = "Replica counts to alternate, e.g. 1,3: each runs --runs times in turn (topology as --coordinators); prints medians and the ratio." };
        var runsOption = new Option<int>("--runs") { Description = "With --alternate: rounds (1-20).", DefaultValueFactory = _ => 3 };

        var command = new Command("bench", "Measure committed orders/s, latency and CPU per order on PostgreSQL with durable commits, then audit.")
        {
            postgres, urls, duration, warmup, json, only, noBound, allowNonDurable, quietTimeout, secret, noBuild, runDir, repo, overload, overloadFactor, overloadPeak,
            sweep, peakRate, sweepRates, plot, sqlite, soak, soakRate, soakSample, coordinators, alternate, runsOption,
        };
        command.SetAction((parse, ct) => RunAsync(
            new BenchSettings(
                parse.GetValue(postgres),
                parse.GetValue(urls),
                TimeSpan.FromSeconds(parse.GetValue(duration)),
                TimeSpan.FromSeconds(parse.GetValue(warmup)),
                parse.GetValue(json),
                parse.GetValue(only) ?? [],
                parse.GetValue(noBound),
                parse.GetValue(allowNonDurable),
                TimeSpan.FromSeconds(parse.GetValue(quietTimeout)),
                CommandSupport.Secret(parse, secret),
                parse.GetValue(noBuild),
                parse.GetValue(runDir),
                parse.GetValue(repo),
                parse.GetValue(overload),
                parse.GetValue(overloadFactor),
                parse.GetValue(overloadPeak))
            {
                Sweep = parse.GetValue(sweep),
                PeakRate = parse.GetValue(peakRate),
                SweepRates = parse.GetValue(sweepRates),
                Plot = parse.GetValue(plot),
                Sqlite = parse.GetValue(sqlite),
                Soak = parse.GetValue(soak),
                SoakRate = parse.GetValue(soakRate),
                SoakSample = parse.GetValue(soakSample),
                Coordinators = parse.GetValue(coordinators),
                Alternate = parse.GetValue(alternate),
                Runs = parse.GetValue(runsOption),
            },
            ct));
        return command;
    }

    private sealed record BenchSettings(
        string? Postgres, string? Urls, TimeSpan Duration, TimeSpan Warmup, FileInfo? Json, string[] Only, bool NoBound,
        bool AllowNonDurable, TimeSpan QuietTimeout, string? Secret, bool NoBuild, string? RunDir, string? Repo, bool Overload, int OverloadFactor, int? OverloadPeak)
    {
        public bool Sweep { get; init; }
        public int? PeakRate { get; init; }
        public string? SweepRates { get; init; }
        public FileInfo? Plot { get; init; }
        public bool Sqlite { get; init; }
        public int? Soak { get; init; }
        public int SoakRate { get; init; } = 100;
        public int SoakSample { get; init; } = 10;
        public int Coordinators { get; init; } = 1;
        public string? Alternate { get; init; }
        public int Runs { get; init; } = 3;

        /// <summary>The sweep's percentages (valid after <see cref="BenchArguments.Check"/>).</summary>
        public IReadOnlyList<int> SweepPercents => SweepPlan.Parse(SweepRates, out _) ?? SweepPlan.DefaultPercents;

        public BenchArguments Arguments => new(
            Postgres is not null, Urls is not null, Sqlite, Overload, Sweep, PeakRate, SweepRates, Plot?.FullName, Soak, SoakRate, SoakSample, Coordinators, Alternate, Runs, Only);

        /// <summary>Whether the order service runs as N replicas behind a balancer.</summary>
        public bool Topology => Coordinators > 1 || Alternate is not null;
    }

    private static async Task<int> RunAsync(BenchSettings settings, CancellationToken ct)
    {
        var console = AnsiConsole.Console;
        if (settings.Arguments.Check() is { } bad)
        {
            console.MarkupLine($"[red]{Markup.Escape(bad)}[/]");
            return ExitCodes.SetupFailed;
        }

        if (settings.Topology)
        {
            return await RunTopologyAsync(console, settings,
                settings.Alternate is { } alt ? BenchArguments.ParseReplicaCounts(alt)! : [settings.Coordinators], settings.Alternate is null ? 1 : settings.Runs, ct);
        }

        ServiceEndpoints? given = null;
        if (settings.Urls is not null)
        {
            given = ParseUrls(settings.Urls);
            if (given is null)
            {
                console.MarkupLine("[red]--urls must be order=URL,storage=URL,delivery=URL with absolute http(s) URLs.[/]");
                return ExitCodes.SetupFailed;
            }
        }

        var openLoopMode = settings.Overload || settings.Sweep || settings.Soak is not null;
        var candidates = settings.Postgres is not null && !settings.Sqlite ? Workload.Standard.Concat(Workload.Monoliths).ToList() : [.. Workload.Standard];
        var workloads = openLoopMode
            ? [OverloadPeakWorkload]
            : candidates.Where(w => settings.Only.Length == 0 || settings.Only.Any(w.Matches)).ToList();
        if (workloads.Count == 0)
        {
            console.MarkupLine("[red]No workload left to run (the monolith needs --postgres without --sqlite).[/]");
            return ExitCodes.SetupFailed;
        }
        var runId = CommandSupport.NewRunId();
        var runTag = "bench-" + runId.Replace('_', '-');
        var runFolder = Path.GetFullPath(settings.RunDir ?? Path.Combine(Path.GetTempPath(), $"twophase-bench-{runId}"));
        Directory.CreateDirectory(runFolder);
        using var http = HttpClients.Create(openLoopMode ? OverloadMaxConnections : workloads.Max(w => w.Concurrency) + 16);

        var runs = new List<WorkloadRun>();
        WindowResult? bound = null;
        ReferenceSystem? system = null;
        using var exit = CommandSupport.OnProcessExit(() => system?.KillAllNow());
        return await CommandSupport.GuardAsync(console, async () =>
        {
            try
            {
                PostgresServer? server = null;
                if (settings.Postgres is { } pg && !settings.Sqlite)
                {
                    server = await PostgresServer.InspectAsync(pg, ct);
                    console.MarkupLine($"PostgreSQL {Markup.Escape(server.Version)}: fsync={server.Fsync}, synchronous_commit={server.SynchronousCommit}, " +
                                       (server.PostmasterPid is { } pm ? $"postmaster pid {pm} (CPU measured)" : "[yellow]postmaster not visible here (PostgreSQL CPU n/a)[/]"));
                    if (!server.Durable && !settings.AllowNonDurable)
                    {
                        console.MarkupLine("[red]The server does not commit durably (fsync and synchronous_commit must be on); pass --allow-non-durable to run anyway.[/]");
                        return ExitCodes.SetupFailed;
                    }
                }

                var machine = MachineInfo.Read(server?.Version);
                console.MarkupLine($"Machine: {Markup.Escape(machine.Cpu)}, {machine.Cores} cores, {machine.MemoryGiB} GiB, load average {machine.LoadAverageAtStart}. Logs: {Markup.Escape(runFolder)}");

                string? repoRoot = null;
                if (given is null)
                {
                    repoRoot = settings.Repo is not null ? Path.GetFullPath(settings.Repo) : RepoLocator.FindRepoRoot();
                    if (repoRoot is null || !Directory.Exists(Path.Combine(repoRoot, "src")))
                    {
                        console.MarkupLine($"[red]Cannot find the repository (no {RepoLocator.SolutionFile} above {Markup.Escape(Directory.GetCurrentDirectory())}); pass --repo.[/]");
                        return ExitCodes.SetupFailed;
                    }

                    if (RepoLocator.BuildConfiguration != Release)
                    {
                        console.MarkupLine($"[yellow]This CLI is a {RepoLocator.BuildConfiguration} build; the services still run in Release. Use `dotnet run -c Release` for a Release load generator.[/]");
                    }

                    if (!settings.NoBuild)
                    {
                        var buildLog = Path.Combine(runFolder, "build.log");
                        await console.Status().StartAsync($"Building the services (Release); log: {Markup.Escape(buildLog)}",
                            _ => ServiceBuilder.BuildAsync(repoRoot, Release, buildLog, DotnetHost.Path, ct));
                    }
                }
                else
                {
                    // One system for all workloads: one catalog, and couriers for the busiest workload.
                    var seeder = new HttpBench(http, given, settings.Secret, runTag);
                    await seeder.SeedAsync(new BenchCatalog(runTag), openLoopMode ? OverloadCouriers : workloads.Max(w => w.Couriers), runTag, ct);
                }

                for (var i = 0; i < workloads.Count; i++)
                {
                    var workload = workloads[i];
                    console.MarkupLine($"[bold]{workload.Name}[/] at concurrency {workload.Concurrency}: {settings.Warmup.TotalSeconds:0} s warm-up, {settings.Duration.TotalSeconds:0} s measured (load average {MachineInfo.LoadAverage()})");
                    if (workload.Kind == WorkloadKind.Monolith)
                    {
                        var monolithRun = await RunMonolithAsync(console, workload, settings.Postgres!, $"twophase_bench_{runId}_{i}", runTag, server, settings, ct);
                        runs.Add(monolithRun);
                        PrintLine(console, monolithRun);
                        continue;
                    }

                    try
                    {
                        ServiceEndpoints endpoints;
                        CpuMeter cpu;
                        if (given is null)
                        {
                            system = StartOptions(repoRoot!, settings, $"twophase_bench_{runId}_{i}", Path.Combine(runFolder, $"{i}-{workload.Name}-{workload.Concurrency}"));
                            var sut = system;
                            await console.Status().StartAsync("Starting the services (fresh databases)...", _ => sut.StartAsync(ct));
                            endpoints = new ServiceEndpoints(sut.UrlOf(ServiceKind.Order), sut.UrlOf(ServiceKind.Storage), sut.UrlOf(ServiceKind.Delivery));
                            cpu = new CpuMeter()
                                .AddProcess("order", sut.Order.ProcessId)
                                .AddProcess("storage", sut.Storage.ProcessId)
                                .AddProcess("delivery", sut.Delivery.ProcessId);
                        }
                        else
                        {
                            endpoints = given;
                            cpu = new CpuMeter()
                                .AddProcess("order", LocalPid(given.Order))
                                .AddProcess("storage", LocalPid(given.Storage))
                                .AddProcess("delivery", LocalPid(given.Delivery));
                        }

                        cpu.AddPostgres("postgres", server?.PostmasterPid).AddSelf("bench");
                        var secret = system?.Secret ?? settings.Secret;
                        var bench = new HttpBench(http, endpoints, secret, $"{runTag}-{i}", openLoopMode ? OverloadRequestTimeout : null);
                        var catalog = new BenchCatalog(runTag);
                        if (given is null)
                        {
                            await bench.SeedAsync(catalog, openLoopMode ? OverloadCouriers : workload.Couriers, runTag, ct);
                        }

                        var memory = new MemorySampler()
                            .Add("order", system?.Order.ProcessId ?? LocalPid(endpoints.Order))
                            .Add("storage", system?.Storage.ProcessId ?? LocalPid(endpoints.Storage))
                            .Add("delivery", system?.Delivery.ProcessId ?? LocalPid(endpoints.Delivery));
                        var reader = new ServiceSnapshotReader(http, endpoints, secret);
                        if (settings.Overload)
                        {
                            return await RunOverloadAsync(console, workload, catalog, settings, cpu, bench, reader, $"{runTag}-{i}", ct);
                        }

                        if (settings.Sweep)
                        {
                            return await RunSweepAsync(console, workload, catalog, settings, cpu, bench, reader, machine, runFolder, $"{runTag}-{i}", ct);
                        }

                        if (settings.Soak is { } soakSeconds)
                        {
                            return await RunSoakAsync(console, workload, catalog, settings, cpu, bench, reader, memory, soakSeconds, $"{runTag}-{i}", ct);
                        }

                        var (result, usage) = await WithMemoryAsync(memory, settings.Warmup, () => RunWorkloadAsync(workload, catalog, settings, cpu, bench.PlaceAsync, bench.CompleteAsync, $"{runTag}-{i}", ct), ct);
                        var audit = await AuditAsync(console, reader, [.. bench.Answers], settings.QuietTimeout, ct);
                        var run = new WorkloadRun(workload, result, audit) { Memory = usage };
                        runs.Add(run);
                        PrintLine(console, run);
                    }
                    finally
                    {
                        // The databases go with the system: each workload starts on fresh ones.
                        if (system is not null)
                        {
                            await system.DisposeAsync();
                            system = null;
                        }
                    }
                }

                if (!settings.NoBound && settings.Postgres is { } boundPg && !settings.Sqlite)
                {
                    bound = await RunBoundAsync(console, boundPg, runId, runTag, server!, settings, ct);
                }
                else if (!settings.NoBound)
                {
                    console.MarkupLine(settings.Sqlite ? "[yellow]--sqlite: the direct bound (PostgreSQL) is skipped.[/]" : "[yellow]No --postgres: the direct bound is skipped.[/]");
                }

                console.WriteLine();
                Console.Out.Write(BenchReport.Table(runs, bound));
                if (BenchReport.Ratio(runs, bound) is { } ratio)
                {
                    console.MarkupLine($"Real plentiful at concurrency {bound!.Concurrency} reaches [bold]{ratio:P0}[/] of the bound ({bound.CommittedPerSecond:0} committed/s).");
                }

                if (BenchReport.MonolithShares(runs).Count > 0)
                {
                    console.WriteLine();
                    Console.Out.Write(BenchReport.MonolithTable(runs));
                }

                if (runs.Any(r => r.Memory is not null))
                {
                    console.WriteLine();
                    Console.Out.Write(BenchReport.MemoryTable(runs));
                }

                console.MarkupLine($"Machine: {Markup.Escape(machine.Cpu)}, {machine.Cores} cores; load average at start {machine.LoadAverageAtStart}, at end {MachineInfo.LoadAverage()}.");
                if (settings.Json is { } file)
                {
                    var settingsDoc = new
                    {
                        mode = given is null ? "started" : "urls",
                        store = settings.Sqlite ? "sqlite" : "postgres",
                        durationSeconds = settings.Duration.TotalSeconds,
                        warmupSeconds = settings.Warmup.TotalSeconds,
                        postgres = server is null ? null : new { server.Version, server.Fsync, server.SynchronousCommit },
                        loadAverageAtEnd = MachineInfo.LoadAverage(),
                    };
                    await BenchReport.WriteJsonAsync(file, machine, settingsDoc, runs, bound, ct);
                    console.MarkupLine($"JSON written to {Markup.Escape(file.FullName)}");
                }

                var failed = runs.Where(r => r.Audit != "clean" || r.TotalErrors > 0).Select(r => $"{r.Workload.Name}@{r.Workload.Concurrency}").ToList();
                if (bound is { Errors: > 0 } or { CompletionErrors: > 0 })
                {
                    failed.Add("bound");
                }

                if (failed.Count > 0)
                {
                    console.MarkupLine($"[red bold]FAIL[/]: audit violations or errors in {Markup.Escape(string.Join(", ", failed))}.");
                    return ExitCodes.Failed;
                }

                return ExitCodes.Ok;
            }
            finally
            {
                if (system is not null)
                {
                    await system.DisposeAsync();
                }
            }
        }, ct);
    }

    private static ReferenceSystem StartOptions(string repoRoot, BenchSettings settings, string databasePrefix, string folder) =>
        new(new SystemOptions
        {
            RepoRoot = repoRoot,
            Configuration = Release,
            Folder = folder,
            Store = settings.Sqlite ? Store.Sqlite : Store.Postgres,
            PostgresServer = settings.Sqlite ? null : settings.Postgres,
            DatabasePrefix = databasePrefix,
            // Information-level request logs would measure the console, not the protocol.
            LogLevel = "Warning",
            // --allow-non-durable: the services refuse a server with fsync=off unless told the same. The runtime's JIT
            // settings are the defaults (tiered, with dynamic PGO); the warm-up gives them time to reach the steady state
            // (docs/performance.md). DOTNET_* variables set for the bench are inherited by the services, to compare other settings.
            ExtraEnvironment = new Dictionary<string, string>(StringComparer.Ordinal) { ["TwoPhase__Database__AllowUnsafeFsyncOff"] = settings.AllowNonDurable ? "true" : "false" },
        });

    private static Task<WindowResult> RunWorkloadAsync(
        Workload workload,
        BenchCatalog catalog,
        BenchSettings settings,
        CpuMeter cpu,
        Func<IReadOnlyList<OrderLine>, string, CancellationToken, Task<Attempt>> place,
        Func<Attempt, CancellationToken, Task<bool>> complete,
        string orderTag,
        CancellationToken ct)
    {
        // One generator per worker: Random is not thread-safe, and fixed seeds make runs comparable.
        var randoms = Enumerable.Range(0, workload.Concurrency).Select(w => new Random(7919 * (w + 1))).ToArray();
        return ClosedLoop.RunAsync(
            workload.Concurrency,
            settings.Warmup,
            settings.Duration,
            cpu,
            (worker, sequence, token) => place(catalog.NextOrder(workload.Kind, randoms[worker], worker, sequence), $"{orderTag}-w{worker:D3}-{sequence:D7}", token),
            complete,
            ct);
    }

    // --overload: the peak is measured where the issue measures it; the rest is sized for three times that peak.
    private static readonly Workload OverloadPeakWorkload = new(WorkloadKind.Plentiful, 64);

    // Bounded time per order in the open loop: well past the prepare deadline, short enough that a collapse shows.
    private static readonly TimeSpan OverloadRequestTimeout = TimeSpan.FromSeconds(10);

    // Committed orders hold a courier until their completion; the open loop may have thousands outstanding.
    private const int OverloadCouriers = 4096;

    // Connections to the order service: the open loop's outstanding bound, not the closed loop's workers.
    private const int OverloadMaxConnections = 16_384;

    /// <summary>
    /// Peak closed-loop, then the open-loop schedule on the same services (warm by then), then the audit with every
    /// answer. Prints the per-second table, the phase summary and the verdict line; exit code 1 on audit failure or
    /// errors, not on the verdict (a measurement, not a test).
    /// </summary>
    private static async Task<int> RunOverloadAsync(
        IAnsiConsole console, Workload workload, BenchCatalog catalog, BenchSettings settings, CpuMeter cpu, HttpBench bench, ServiceSnapshotReader reader, string orderTag, CancellationToken ct)
    {
        var peakRun = await RunWorkloadAsync(workload, catalog, settings, cpu, bench.PlaceAsync, bench.CompleteAsync, orderTag + "-peak", ct);
        var peak = settings.OverloadPeak ?? peakRun.CommittedPerSecond;
        console.MarkupLine($"  peak (closed loop at {workload.Concurrency}): {peakRun.CommittedPerSecond:0.0} committed/s, p99 {peakRun.Percentile(99):0.0} ms, {peakRun.Errors} errors" +
                           (settings.OverloadPeak is { } given ? $"; the schedule and verdict use the given peak of {given}/s" : ""));
        foreach (var sample in peakRun.ErrorSamples)
        {
            console.MarkupLine($"  [red]error:[/] {Markup.Escape(sample)}");
        }

        if (peak < 1)
        {
            console.MarkupLine("[red]No peak to overload (nothing committed).[/]");
            return ExitCodes.Failed;
        }

        var plan = OverloadPlan.Standard(settings.OverloadFactor);
        var phases = plan.Phases(peak);
        var maxOutstanding = OverloadPlan.MaxOutstanding(peak, plan.Factor, OverloadRequestTimeout);
        console.MarkupLine($"  open loop: {string.Join(", ", phases.Select(p => $"{p.Name} {p.OrdersPerSecond:0}/s for {p.Duration.TotalSeconds:0} s"))}; " +
                           $"at most {maxOutstanding} outstanding, {OverloadRequestTimeout.TotalSeconds:0} s per order (load average {MachineInfo.LoadAverage()})");
        var result = await OpenLoop.RunAsync(
            phases,
            maxOutstanding,
            (sequence, token) => bench.PlaceAsync(
                catalog.NextOrder(workload.Kind, new Random(7919 + (int)(sequence % int.MaxValue)), 0, sequence), $"{orderTag}-o{sequence:D8}", token),
            bench.CompleteAsync,
            ct);
        var audit = await AuditAsync(console, reader, [.. bench.Answers], settings.QuietTimeout, ct);

        console.WriteLine();
        Console.Out.Write(OverloadReport.Seconds(result));
        console.WriteLine();
        Console.Out.Write(OverloadReport.Phases(result));
        var reasons = bench.Answers.Where(a => a.Outcome == AnswerOutcome.Aborted)
            .GroupBy(a => a.ReasonClass ?? "other", StringComparer.Ordinal)
            .OrderByDescending(g => g.Count()).Take(3).Select(g => $"{g.Key}: {g.Count()}").ToList();
        if (reasons.Count > 0)
        {
            console.MarkupLine($"Aborts by reason: {Markup.Escape(string.Join("; ", reasons))}");
        }

        foreach (var sample in result.ErrorSamples)
        {
            console.MarkupLine($"  [red]error:[/] {Markup.Escape(sample)}");
        }

        var verdict = OverloadVerdict.Of(result, peak);
        console.MarkupLine($"Deliveries completed {result.Completions:N0} ({result.CompletionErrors} failed); audit {audit}; load average at end {MachineInfo.LoadAverage()} (a shared machine: the figures move with it).");
        Console.Out.WriteLine(verdict.Line());
        if (settings.Json is { } file)
        {
            await using var stream = file.Create();
            await System.Text.Json.JsonSerializer.SerializeAsync(
                stream,
                new { peak, peakP99Ms = peakRun.Percentile(99), factor = plan.Factor, phases, seconds = result.Seconds, verdict = new { verdict.During, verdict.DuringShare, verdict.RecoverySeconds, verdict.Passed }, audit },
                new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web) { WriteIndented = true },
                ct);
        }

        var errors = result.Seconds.Sum(s => s.Errors) + result.CompletionErrors + peakRun.Errors + peakRun.CompletionErrors;
        return audit == "clean" && errors == 0 ? ExitCodes.Ok : ExitCodes.Failed;
    }

    // Working sets: sampled every second in the measured window, then once after the load has settled.
    private static readonly TimeSpan MemoryPeriod = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MemorySettle = TimeSpan.FromSeconds(5);

    /// <summary>Runs a closed-loop workload while sampling the services' working sets after the warm-up, then once after a settle.</summary>
    private static async Task<(WindowResult Result, MemoryUsage Usage)> WithMemoryAsync(MemorySampler memory, TimeSpan warmup, Func<Task<WindowResult>> run, CancellationToken ct)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var sampling = Task.Run(
            async () =>
            {
                try
                {
                    await Task.Delay(warmup, stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                await memory.RunAsync(MemoryPeriod, stop.Token);
            },
            CancellationToken.None);
        WindowResult result;
        try
        {
            result = await run();
        }
        finally
        {
            await stop.CancelAsync();
            await sampling;
        }

        var underLoad = memory.Samples;
        await Task.Delay(MemorySettle, ct);
        var after = memory.Sample();
        return (result, ServiceMemory.Of(memory.Sources, underLoad, after, MemorySettle.TotalSeconds));
    }

    /// <summary>The monolith ceiling at one concurrency: a fresh database on the server, the same closed loop, its own audit.</summary>
    private static async Task<WorkloadRun> RunMonolithAsync(IAnsiConsole console, Workload workload, string pg, string prefix, string runTag, PostgresServer? server, BenchSettings settings, CancellationToken ct)
    {
        var databases = await PostgresDatabases.CreateAsync(pg, prefix, ct);
        try
        {
            var catalog = new BenchCatalog(runTag);
            await using var monolith = await Monolith.CreateAsync(databases.ConnectionStrings[ServiceKind.Order], databases.PoolSizePerService, catalog, workload.Couriers, ct);
            var cpu = new CpuMeter().AddPostgres("postgres", server?.PostmasterPid).AddSelf("bench");
            var result = await RunWorkloadAsync(workload, catalog, settings, cpu, monolith.PlaceAsync, monolith.CompleteAsync, $"{runTag}-monolith-{workload.Concurrency}", ct);
            var problem = await monolith.AuditAsync(ct);
            console.MarkupLine(problem is null ? "  monolith books clean" : $"  [red]monolith books: {Markup.Escape(problem)}[/]");
            return new WorkloadRun(workload, result, problem is null ? "clean" : "FAIL");
        }
        finally
        {
            await DropAsync(console, databases);
        }
    }

    private static Func<long, CancellationToken, Task<Attempt>> OpenLoopPlace(HttpBench bench, BenchCatalog catalog, Workload workload, string orderTag) =>
        (sequence, token) => bench.PlaceAsync(
            catalog.NextOrder(workload.Kind, new Random(7919 + (int)(sequence % int.MaxValue)), 0, sequence), $"{orderTag}-o{sequence:D8}", token);

    /// <summary>
    /// The latency-throughput curve: the closed-loop peak (or the given one), then one open-loop run per rate, each
    /// for --duration and drained before the next; the audit over every answer; table, JSON and picture.
    /// </summary>
    private static async Task<int> RunSweepAsync(
        IAnsiConsole console, Workload workload, BenchCatalog catalog, BenchSettings settings, CpuMeter cpu, HttpBench bench, ServiceSnapshotReader reader,
        MachineInfo machine, string runFolder, string orderTag, CancellationToken ct)
    {
        // With a given peak the closed loop only warms the services up (its one measured second is not used).
        var peakSettings = settings.PeakRate is null ? settings : settings with { Duration = TimeSpan.FromSeconds(1) };
        var peakRun = await RunWorkloadAsync(workload, catalog, peakSettings, cpu, bench.PlaceAsync, bench.CompleteAsync, orderTag + "-peak", ct);
        var peak = settings.PeakRate ?? peakRun.CommittedPerSecond;
        console.MarkupLine(settings.PeakRate is { } given
            ? $"  warmed up closed loop; the sweep uses the given peak of {given}/s"
            : $"  peak (closed loop at {workload.Concurrency}): {peakRun.CommittedPerSecond:0.0} committed/s, p99 {peakRun.Percentile(99):0.0} ms, {peakRun.Errors} errors");
        if (peak < 1)
        {
            console.MarkupLine("[red]No peak to sweep (nothing committed).[/]");
            return ExitCodes.Failed;
        }

        var percents = settings.SweepPercents;
        var rates = SweepPlan.Rates(peak, percents);
        var points = new List<SweepPoint>();
        var completionErrors = 0L;
        for (var i = 0; i < rates.Count; i++)
        {
            var rate = rates[i];
            var maxOutstanding = OverloadPlan.MaxOutstanding(rate, 1, OverloadRequestTimeout);
            console.MarkupLine($"  {percents[i]} % of the peak: {rate:0.0} orders/s for {settings.Duration.TotalSeconds:0} s, at most {maxOutstanding} outstanding (load average {MachineInfo.LoadAverage()})");
            var result = await OpenLoop.RunAsync(
                [new RatePhase($"{percents[i]}%", rate, settings.Duration)],
                maxOutstanding,
                OpenLoopPlace(bench, catalog, workload, $"{orderTag}-r{percents[i]}"),
                bench.CompleteAsync,
                ct);
            var point = SweepPoint.Of(percents[i], rate, result, settings.Duration);
            points.Add(point);
            completionErrors += result.CompletionErrors;
            console.MarkupLine($"    achieved {point.AchievedPerSecond:0.0} committed/s, p50 {point.P50Ms:0.0} / p99 {point.P99Ms:0.0} / p99.9 {point.P999Ms:0.0} ms from the intended start " +
                               $"(p99 {point.ServiceP99Ms:0.0} ms from the send), {point.Shed} shed, {point.Skipped} skipped, {point.Errors} errors");
            foreach (var sample in result.ErrorSamples)
            {
                console.MarkupLine($"    [red]error:[/] {Markup.Escape(sample)}");
            }
        }

        var audit = await AuditAsync(console, reader, [.. bench.Answers], settings.QuietTimeout, ct);
        console.WriteLine();
        Console.Out.Write(SweepReport.Table(peak, points));
        var plotPath = settings.Plot?.FullName
                       ?? (settings.Json is { } j ? Path.ChangeExtension(j.FullName, ".png") : Path.Combine(runFolder, "sweep.png"));
        var caption = $"plentiful, open loop, {settings.Duration.TotalSeconds:0} s per rate, {(settings.Sqlite ? "SQLite" : "PostgreSQL")}; {machine.Cores} cores, load avg {machine.LoadAverageAtStart}";
        SweepReport.Plot(plotPath, peak, points, caption);
        console.MarkupLine($"Curve written to {Markup.Escape(plotPath)}; audit {audit}; load average at end {MachineInfo.LoadAverage()} (a shared machine: the figures move with it).");
        if (settings.Json is { } file)
        {
            await using var stream = file.Create();
            await System.Text.Json.JsonSerializer.SerializeAsync(
                stream,
                new
                {
                    machine,
                    store = settings.Sqlite ? "sqlite" : "postgres",
                    durationSecondsPerRate = settings.Duration.TotalSeconds,
                    peak,
                    peakMeasured = settings.PeakRate is null,
                    peakP99Ms = settings.PeakRate is null ? peakRun.Percentile(99) : (double?)null,
                    latency = "from each order's intended start (coordinated omission corrected); serviceP99Ms from the actual send",
                    curve = points,
                    plot = plotPath,
                    completionErrors,
                    audit,
                    loadAverageAtEnd = MachineInfo.LoadAverage(),
                },
                new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web) { WriteIndented = true },
                ct);
            console.MarkupLine($"JSON written to {Markup.Escape(file.FullName)}");
        }

        var errors = points.Sum(p => p.Errors) + completionErrors + peakRun.Errors + peakRun.CompletionErrors;
        return audit == "clean" && errors == 0 ? ExitCodes.Ok : ExitCodes.Failed;
    }

    /// <summary>
    /// The soak: a warm-up, then open loop at a fixed rate for the soak's seconds, the services' working sets sampled
    /// on a fixed period; first, last, max and the least-squares slope per service, then the audit.
    /// </summary>
    private static async Task<int> RunSoakAsync(
        IAnsiConsole console, Workload workload, BenchCatalog catalog, BenchSettings settings, CpuMeter cpu, HttpBench bench, ServiceSnapshotReader reader,
        MemorySampler memory, int seconds, string orderTag, CancellationToken ct)
    {
        if (settings.Warmup > TimeSpan.Zero)
        {
            await RunWorkloadAsync(workload, catalog, settings with { Duration = TimeSpan.FromSeconds(1) }, cpu, bench.PlaceAsync, bench.CompleteAsync, orderTag + "-warm", ct);
        }

        var rate = settings.SoakRate;
        console.MarkupLine($"  soak: {rate} orders/s open loop for {seconds} s, working sets every {settings.SoakSample} s (load average {MachineInfo.LoadAverage()})");
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var sampling = memory.RunAsync(TimeSpan.FromSeconds(settings.SoakSample), stop.Token);
        OpenLoopResult result;
        try
        {
            result = await OpenLoop.RunAsync(
                [new RatePhase("soak", rate, TimeSpan.FromSeconds(seconds))],
                OverloadPlan.MaxOutstanding(rate, 1, OverloadRequestTimeout),
                OpenLoopPlace(bench, catalog, workload, orderTag + "-soak"),
                bench.CompleteAsync,
                ct);
        }
        finally
        {
            await stop.CancelAsync();
            await sampling;
        }

        memory.Sample();
        var audit = await AuditAsync(console, reader, [.. bench.Answers], settings.QuietTimeout, ct);
        var trends = memory.Sources.Select(s => MemoryTrend.Of(s, memory.Samples)).ToList();
        var recorder = result.Latencies["soak"];
        var errors = result.Seconds.Sum(s => s.Errors) + result.CompletionErrors;
        console.WriteLine();
        Console.Out.WriteLine("| service | samples | first MiB | last MiB | max MiB | slope MiB/min |");
        Console.Out.WriteLine("|---|--:|--:|--:|--:|--:|");
        foreach (var t in trends)
        {
            Console.Out.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"| {t.Source} | {t.Samples} | {t.FirstMiB:0.0} | {t.LastMiB:0.0} | {t.MaxMiB:0.0} | {t.SlopeMiBPerMinute:0.000} |"));
        }

        console.MarkupLine($"Committed {result.Committed:N0} ({result.Committed / (double)seconds:0.0}/s), p99 {recorder.CorrectedMs(99):0.0} ms from the intended start, " +
                           $"{result.Seconds.Sum(s => s.Shed)} shed, {result.Seconds.Sum(s => s.Skipped)} skipped, {errors} errors; audit {audit}; load average at end {MachineInfo.LoadAverage()}.");
        if (settings.Json is { } file)
        {
            await using var stream = file.Create();
            await System.Text.Json.JsonSerializer.SerializeAsync(
                stream,
                new
                {
                    soakSeconds = seconds,
                    rate,
                    sampleSeconds = settings.SoakSample,
                    committed = result.Committed,
                    p99Ms = recorder.CorrectedMs(99),
                    errors,
                    trends,
                    samples = memory.Samples,
                    audit,
                },
                new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web) { WriteIndented = true },
                ct);
            console.MarkupLine($"JSON written to {Markup.Escape(file.FullName)}");
        }

        return audit == "clean" && errors == 0 ? ExitCodes.Ok : ExitCodes.Failed;
    }

    /// <summary>
    /// Issue 14's comparison: plentiful at 64 through the order service's HAProxy balancer in front of N replicas (one
    /// coordinator group sharing one decision log), one storage and one delivery replica, everything on loopback with
    /// the topology's own PostgreSQL clusters. Each count runs <paramref name="rounds"/> times, the counts in turn, so
    /// drift of a shared machine falls on all of them alike; medians per count and the ratio of the last to the first.
    /// </summary>
    private static async Task<int> RunTopologyAsync(IAnsiConsole console, BenchSettings settings, IReadOnlyList<int> counts, int rounds, CancellationToken ct)
    {
        var repoRoot = settings.Repo is not null ? Path.GetFullPath(settings.Repo) : RepoLocator.FindRepoRoot();
        if (repoRoot is null || !Directory.Exists(Path.Combine(repoRoot, "src")))
        {
            console.MarkupLine($"[red]Cannot find the repository (no {RepoLocator.SolutionFile} above {Markup.Escape(Directory.GetCurrentDirectory())}); pass --repo.[/]");
            return ExitCodes.SetupFailed;
        }

        var runId = CommandSupport.NewRunId();
        var runTag = "bench-" + runId.Replace('_', '-');
        var runFolder = Path.GetFullPath(settings.RunDir ?? Path.Combine(Path.GetTempPath(), $"twophase-bench-{runId}"));
        Directory.CreateDirectory(runFolder);
        var machine = MachineInfo.Read(null);
        console.MarkupLine($"Machine: {Markup.Escape(machine.Cpu)}, {machine.Cores} cores, load average {machine.LoadAverageAtStart}. Logs: {Markup.Escape(runFolder)}");
        if (!settings.NoBuild)
        {
            var buildLog = Path.Combine(runFolder, "build.log");
            await console.Status().StartAsync($"Building the services (Release); log: {Markup.Escape(buildLog)}",
                _ => ServiceBuilder.BuildAsync(repoRoot, Release, buildLog, DotnetHost.Path, ct));
        }

        var workload = OverloadPeakWorkload;
        using var http = HttpClients.Create(workload.Concurrency + 16);
        var results = new List<(int Round, int Coordinators, double CommittedPerSecond, double P99Ms, long Errors, string Audit)>();
        return await CommandSupport.GuardAsync(console, async () =>
        {
            for (var round = 1; round <= rounds; round++)
            {
                foreach (var n in counts)
                {
                    console.MarkupLine($"[bold]round {round}, {n} coordinator replica(s)[/]: plentiful at {workload.Concurrency} through HAProxy, {settings.Warmup.TotalSeconds:0} s warm-up, {settings.Duration.TotalSeconds:0} s measured (load average {MachineInfo.LoadAverage()})");
                    var options = new TopologyOptions
                    {
                        Coordinators = n,
                        StorageReplicas = 1,
                        DeliveryReplicas = 1,
                        Namespaces = false,
                        Configuration = Release,
                        Folder = Path.Combine(runFolder, $"r{round}-c{n}"),
                        LogLevel = "Warning",
                    };
                    await using var topology = await TopologySystem.StartAsync(options, null, ct);
                    var endpoints = new ServiceEndpoints(topology.EntryUrl(ServiceKind.Order), topology.EntryUrl(ServiceKind.Storage), topology.EntryUrl(ServiceKind.Delivery));
                    var tag = $"{runTag}-r{round}-c{n}";
                    var bench = new HttpBench(http, endpoints, topology.Secret, tag);
                    var catalog = new BenchCatalog(tag);
                    await bench.SeedAsync(catalog, workload.Couriers, tag, ct);
                    var cpu = new CpuMeter().AddSelf("bench");
                    var result = await RunWorkloadAsync(workload, catalog, settings, cpu, bench.PlaceAsync, bench.CompleteAsync, tag, ct);
                    var audit = await AuditAsync(console, new ServiceSnapshotReader(http, endpoints, topology.Secret), [.. bench.Answers], settings.QuietTimeout, ct);
                    var errors = result.Errors + result.CompletionErrors;
                    results.Add((round, n, result.CommittedPerSecond, result.Percentile(99), errors, audit));
                    console.MarkupLine($"  {result.CommittedPerSecond:0.0} committed/s, p99 {result.Percentile(99):0.0} ms, {errors} errors");
                    foreach (var sample in result.ErrorSamples)
                    {
                        console.MarkupLine($"  [red]error:[/] {Markup.Escape(sample)}");
                    }
                }
            }

            var medians = counts.Select(n => (Coordinators: n, Median: Median(results.Where(r => r.Coordinators == n).Select(r => r.CommittedPerSecond)))).ToList();
            var ratio = medians[0].Median > 0 ? medians[^1].Median / medians[0].Median : (double?)null;
            console.WriteLine();
            Console.Out.WriteLine("| round | coordinators | committed/s | p99 ms | errors | audit |");
            Console.Out.WriteLine("|--:|--:|--:|--:|--:|---|");
            foreach (var r in results)
            {
                Console.Out.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"| {r.Round} | {r.Coordinators} | {r.CommittedPerSecond:0.0} | {r.P99Ms:0.0} | {r.Errors} | {r.Audit} |"));
            }

            console.WriteLine();
            foreach (var m in medians)
            {
                console.MarkupLine($"Median with {m.Coordinators} coordinator replica(s): [bold]{m.Median:0.0}[/] committed/s over {rounds} run(s)");
            }

            if (ratio is { } q)
            {
                console.MarkupLine($"{medians[^1].Coordinators} replicas / {medians[0].Coordinators}: [bold]{q:P1}[/] (issue 14: within 10 %). Load average at end {MachineInfo.LoadAverage()} (a shared machine: the figures move with it).");
            }

            if (settings.Json is { } file)
            {
                await using var stream = file.Create();
                await System.Text.Json.JsonSerializer.SerializeAsync(
                    stream,
                    new
                    {
                        machine,
                        workload = $"{workload.Name}:{workload.Concurrency}",
                        durationSeconds = settings.Duration.TotalSeconds,
                        warmupSeconds = settings.Warmup.TotalSeconds,
                        runs = results.Select(r => new { r.Round, r.Coordinators, r.CommittedPerSecond, r.P99Ms, r.Errors, r.Audit }),
                        medians = medians.Select(m => new { m.Coordinators, committedPerSecond = m.Median }),
                        ratio,
                        loadAverageAtEnd = MachineInfo.LoadAverage(),
                    },
                    new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web) { WriteIndented = true },
                    ct);
                console.MarkupLine($"JSON written to {Markup.Escape(file.FullName)}");
            }

            return results.All(r => r.Audit == "clean" && r.Errors == 0) ? ExitCodes.Ok : ExitCodes.Failed;
        }, ct);
    }

    /// <summary>The median (the mean of the middle two for an even count); 0 for none.</summary>
    internal static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? 0 : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static async Task<WindowResult> RunBoundAsync(IAnsiConsole console, string pg, string runId, string runTag, PostgresServer server, BenchSettings settings, CancellationToken ct)
    {
        var workload = new Workload(WorkloadKind.Plentiful, 64);
        console.MarkupLine($"[bold]bound[/]: plentiful at concurrency {workload.Concurrency}, in process, no HTTP: {settings.Warmup.TotalSeconds:0} s warm-up, {settings.Duration.TotalSeconds:0} s measured (load average {MachineInfo.LoadAverage()})");
        var databases = await PostgresDatabases.CreateAsync(pg, $"twophase_bench_{runId}_bound", ct);
        try
        {
            var catalog = new BenchCatalog(runTag);
            await using var direct = await DirectBound.CreateAsync(
                databases.ConnectionStrings[ServiceKind.Order],
                databases.ConnectionStrings[ServiceKind.Storage],
                databases.ConnectionStrings[ServiceKind.Delivery],
                databases.PoolSizePerService,
                catalog,
                workload.Couriers,
                ct);
            var cpu = new CpuMeter().AddPostgres("postgres", server.PostmasterPid).AddSelf("bench");
            var result = await RunWorkloadAsync(workload, catalog, settings, cpu, direct.PlaceAsync, direct.CompleteAsync, $"{runTag}-bound", ct);
            console.MarkupLine($"  {result.CommittedPerSecond:0.0} committed/s, p99 {result.Percentile(99):0.0} ms, {result.Errors + result.CompletionErrors} errors" +
                               (result.ErrorSamples.Count > 0 ? $" (e.g. {Markup.Escape(result.ErrorSamples[0])})" : ""));
            return result;
        }
        finally
        {
            await DropAsync(console, databases);
        }
    }

    /// <summary>Waits for quiet, audits with every answer of the workload; prints the full report only when it fails.</summary>
    private static async Task<string> AuditAsync(IAnsiConsole console, ServiceSnapshotReader reader, IReadOnlyList<ClientAnswer> answers, TimeSpan quietTimeout, CancellationToken ct)
    {
        var snapshot = await reader.WaitForQuietAsync(quietTimeout, null, ct);
        var report = new Auditor().Check(snapshot, answers);
        if (report.Passed && snapshot.IsQuiet)
        {
            console.MarkupLine($"  audit clean ({report.OrdersChecked:N0} orders, {report.AnswersChecked:N0} answers)");
            return "clean";
        }

        ConsoleReport.PrintAudit(console, report);
        return report.Passed ? "not quiet" : "FAIL";
    }

    private static void PrintLine(IAnsiConsole console, WorkloadRun run)
    {
        var r = run.Result;
        console.MarkupLine($"  {r.CommittedPerSecond:0.0} committed/s, {r.AbortedPerSecond:0.0} aborted/s, p50 {r.Percentile(50):0.0} / p99 {r.Percentile(99):0.0} ms, " +
                           $"{run.TotalErrors} errors, {r.Completions:N0} deliveries completed");
        foreach (var sample in r.ErrorSamples)
        {
            console.MarkupLine($"  [red]error:[/] {Markup.Escape(sample)}");
        }
    }

    private static async Task DropAsync(IAnsiConsole console, PostgresDatabases? databases)
    {
        if (databases is null)
        {
            return;
        }

        // Not the run's token: cleanup must still happen after Ctrl+C.
        var problems = await databases.DropAsync(CancellationToken.None);
        if (problems.Count > 0)
        {
            console.MarkupLine($"[yellow]Could not drop: {Markup.Escape(string.Join("; ", problems))}[/]");
        }
    }

    private static int? LocalPid(Uri url) => url.IsLoopback ? ListeningProcess.Find(url.Port) : null;

    private static ServiceEndpoints? ParseUrls(string text)
    {
        var parts = new Dictionary<string, Uri>(StringComparer.OrdinalIgnoreCase);
        foreach (var pair in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0 || !Uri.TryCreate(pair[(eq + 1)..], UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            {
                return null;
            }

            parts[pair[..eq]] = uri;
        }

        return parts.TryGetValue("order", out var order) && parts.TryGetValue("storage", out var storage) && parts.TryGetValue("delivery", out var delivery) && parts.Count == 3
            ? new ServiceEndpoints(order, storage, delivery)
            : null;
    }
}
