using System.CommandLine;
using Spectre.Console;
using TwoPhase.Cli.Bench;
using TwoPhase.Cli.Rendering;
using TwoPhase.Harness.Audit;
using TwoPhase.Harness.Client;
using TwoPhase.Harness;

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

        var command = new Command("bench", "Measure committed orders/s, latency and CPU per order on PostgreSQL with durable commits, then audit.")
        {
            postgres, urls, duration, warmup, json, only, noBound, allowNonDurable, quietTimeout, secret, noBuild, runDir, repo, overload, overloadFactor, overloadPeak,
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
                parse.GetValue(overloadPeak)),
            ct));
        return command;
    }

    private sealed record BenchSettings(
        string? Postgres, string? Urls, TimeSpan Duration, TimeSpan Warmup, FileInfo? Json, string[] Only, bool NoBound,
        bool AllowNonDurable, TimeSpan QuietTimeout, string? Secret, bool NoBuild, string? RunDir, string? Repo, bool Overload, int OverloadFactor, int? OverloadPeak);

    private static async Task<int> RunAsync(BenchSettings settings, CancellationToken ct)
    {
        var console = AnsiConsole.Console;
        if (settings.Postgres is null && settings.Urls is null)
        {
            console.MarkupLine("[red]bench needs --postgres (start the services on it) or --urls (bench running services).[/]");
            return ExitCodes.SetupFailed;
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

        var unknown = settings.Only.Where(n => !Workload.Standard.Any(w => w.Matches(n))).ToList();
        if (unknown.Count > 0)
        {
            console.MarkupLine($"[red]Unknown workload(s): {Markup.Escape(string.Join(", ", unknown))}; choose from plentiful, plentiful:1, plentiful:16, plentiful:64, hot-sku, abort-heavy.[/]");
            return ExitCodes.SetupFailed;
        }

        var workloads = settings.Overload
            ? [OverloadPeakWorkload]
            : Workload.Standard.Where(w => settings.Only.Length == 0 || settings.Only.Any(w.Matches)).ToList();
        var runId = CommandSupport.NewRunId();
        var runTag = "bench-" + runId.Replace('_', '-');
        var runFolder = Path.GetFullPath(settings.RunDir ?? Path.Combine(Path.GetTempPath(), $"twophase-bench-{runId}"));
        Directory.CreateDirectory(runFolder);
        using var http = HttpClients.Create(settings.Overload ? OverloadMaxConnections : workloads.Max(w => w.Concurrency) + 16);

        var runs = new List<WorkloadRun>();
        WindowResult? bound = null;
        ReferenceSystem? system = null;
        using var exit = CommandSupport.OnProcessExit(() => system?.KillAllNow());
        return await CommandSupport.GuardAsync(console, async () =>
        {
            try
            {
                PostgresServer? server = null;
                if (settings.Postgres is { } pg)
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
                    await seeder.SeedAsync(new BenchCatalog(runTag), settings.Overload ? OverloadCouriers : workloads.Max(w => w.Couriers), runTag, ct);
                }

                for (var i = 0; i < workloads.Count; i++)
                {
                    var workload = workloads[i];
                    console.MarkupLine($"[bold]{workload.Name}[/] at concurrency {workload.Concurrency}: {settings.Warmup.TotalSeconds:0} s warm-up, {settings.Duration.TotalSeconds:0} s measured (load average {MachineInfo.LoadAverage()})");
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
                        var bench = new HttpBench(http, endpoints, secret, $"{runTag}-{i}", settings.Overload ? OverloadRequestTimeout : null);
                        var catalog = new BenchCatalog(runTag);
                        if (given is null)
                        {
                            await bench.SeedAsync(catalog, settings.Overload ? OverloadCouriers : workload.Couriers, runTag, ct);
                        }

                        if (settings.Overload)
                        {
                            return await RunOverloadAsync(console, workload, catalog, settings, cpu, bench, new ServiceSnapshotReader(http, endpoints, secret), $"{runTag}-{i}", ct);
                        }

                        var result = await RunWorkloadAsync(workload, catalog, settings, cpu, bench.PlaceAsync, bench.CompleteAsync, $"{runTag}-{i}", ct);
                        var audit = await AuditAsync(console, new ServiceSnapshotReader(http, endpoints, secret), [.. bench.Answers], settings.QuietTimeout, ct);
                        var run = new WorkloadRun(workload, result, audit);
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

                if (!settings.NoBound && settings.Postgres is { } boundPg)
                {
                    bound = await RunBoundAsync(console, boundPg, runId, runTag, server!, settings, ct);
                }
                else if (!settings.NoBound)
                {
                    console.MarkupLine("[yellow]No --postgres: the direct bound is skipped.[/]");
                }

                console.WriteLine();
                Console.Out.Write(BenchReport.Table(runs, bound));
                if (BenchReport.Ratio(runs, bound) is { } ratio)
                {
                    console.MarkupLine($"Real plentiful at concurrency {bound!.Concurrency} reaches [bold]{ratio:P0}[/] of the bound ({bound.CommittedPerSecond:0} committed/s).");
                }

                console.MarkupLine($"Machine: {Markup.Escape(machine.Cpu)}, {machine.Cores} cores; load average at start {machine.LoadAverageAtStart}, at end {MachineInfo.LoadAverage()}.");
                if (settings.Json is { } file)
                {
                    var settingsDoc = new
                    {
                        mode = given is null ? "started" : "urls",
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
            Store = Store.Postgres,
            PostgresServer = settings.Postgres,
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
