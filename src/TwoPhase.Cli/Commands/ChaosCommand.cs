using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Spectre.Console;
using TwoPhase.Cli.Api;
using TwoPhase.Cli.Audit;
using TwoPhase.Cli.Chaos;
using TwoPhase.Cli.Hosting;
using TwoPhase.Cli.Load;
using TwoPhase.Cli.Rendering;

namespace TwoPhase.Cli.Commands;

/// <summary>
/// <c>chaos</c>: start the three services, run the simulator, SIGKILL and restart random services at
/// random moments of the load (a bounded number, within a time bound), wait until the system has
/// converged, audit it against every answer a client got, and exit non-zero on any violation.
/// </summary>
internal static class ChaosCommand
{
    // Ports below the kernel's ephemeral range (32768+ on Linux): a port picked from that range can be
    // taken as the source port of one of our own connections while its service is down for a restart.
    private const int FirstBasePort = 18100;
    private const int BasePortTries = 50;

    /// <summary>
    /// Recovery settings tighter than the defaults (DESIGN §2: recovery scan 1 s, in-doubt after 5 s,
    /// retries capped at 5 s), so that the system converges within seconds of the last restart.
    /// </summary>
    private static readonly IReadOnlyDictionary<ServiceKind, IReadOnlyDictionary<string, string>> RecoverySettings =
        new Dictionary<ServiceKind, IReadOnlyDictionary<string, string>>
        {
            [ServiceKind.Order] = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["Coordinator__RecoveryIntervalMs"] = "250",
                ["Coordinator__RetryMaxDelayMs"] = "1000",
                ["Coordinator__PrepareDeadlineMs"] = "2000",
            },
            [ServiceKind.Delivery] = ParticipantRecovery(),
            [ServiceKind.Storage] = ParticipantRecovery(),
        };

    private static Dictionary<string, string> ParticipantRecovery() => new(StringComparer.Ordinal)
    {
        ["Participant__InDoubtAfterMs"] = "1000",
        ["Participant__CheckIntervalMs"] = "250",
        ["Participant__RetryMaxDelayMs"] = "1000",
    };

    public static Command Create()
    {
        var orders = new Option<int>("--orders")
        {
            Description = "How many orders to place.",
            DefaultValueFactory = _ => 2000,
            Validators = { r => Between(r, 1, 1_000_000) },
        };
        var kills = new Option<int>("--kills")
        {
            Description = "How many SIGKILLs to send, spread over the load and over the three services (each at least a quarter of them).",
            DefaultValueFactory = _ => 20,
            Validators = { r => Between(r, 0, 1000) },
        };
        var concurrency = CommandSupport.ConcurrencyOption();
        var randomSeed = CommandSupport.RandomSeedOption();
        randomSeed.Description = "Seed of the order mix and of the kill plan (when, whom, how long down).";
        var maxDown = new Option<int>("--max-down-ms")
        {
            Description = "Longest pause between a kill and the restart (the pause is random, at least 100 ms).",
            DefaultValueFactory = _ => 1500,
            Validators = { r => Between(r, 100, 60_000) },
        };
        var maxChaos = new Option<int>("--max-chaos-seconds")
        {
            Description = "Time bound of the kill phase; kills not done by then are skipped and the run fails.",
            DefaultValueFactory = _ => 600,
            Validators = { r => Between(r, 10, 3600) },
        };
        var convergeBound = new Option<int>("--converge-bound")
        {
            Description = "Seconds after the last restart by which the system must have converged.",
            DefaultValueFactory = _ => 10,
            Validators = { r => Between(r, 1, 3600) },
        };
        var convergeTimeout = new Option<int>("--converge-timeout")
        {
            Description = "Seconds after the last restart to keep polling for convergence before giving up.",
            DefaultValueFactory = _ => 120,
            Validators = { r => Between(r, 1, 3600) },
        };
        var basePort = new Option<int?>("--base-port")
        {
            Description = $"Order service port; delivery and storage take the next two. Default: the first free trio from {FirstBasePort}.",
            Validators = { r => Between(r, 1024, 65533) },
        };
        var postgres = new Option<string?>("--postgres")
        {
            Description = "Run on PostgreSQL: a connection string without Database (e.g. \"Host=127.0.0.1;Username=postgres\"); three fresh databases are created and dropped.",
        };
        var keep = new Option<bool>("--keep") { Description = "Keep the PostgreSQL databases after the run (SQLite files and logs are always kept)." };
        var noBuild = new Option<bool>("--no-build") { Description = "Do not build the services first." };
        var runDir = new Option<string?>("--run-dir") { Description = "Folder for logs and SQLite files (default: a fresh folder under the temp folder)." };
        var repo = new Option<string?>("--repo") { Description = "Repository root (default: found by walking up to TwoPhase.slnx)." };

        var command = new Command("chaos", "Start the services, place orders while killing (SIGKILL) and restarting random services, wait for convergence, audit.")
        {
            orders, kills, concurrency, randomSeed, maxDown, maxChaos, convergeBound, convergeTimeout, basePort, postgres, keep, noBuild, runDir, repo,
        };
        command.Validators.Add(r =>
        {
            var (o, k) = (r.GetValue(orders), r.GetValue(kills));
            if (k > 0 && o < KillPlan.MinOrders(k))
            {
                r.AddError($"--orders must be at least {KillPlan.MinOrders(k):N0} for {k} kills: each kill falls at its own order.");
            }
        });
        command.SetAction((parse, ct) => RunAsync(
            new ChaosSettings(
                parse.GetValue(orders),
                parse.GetValue(kills),
                parse.GetValue(concurrency),
                parse.GetValue(randomSeed),
                TimeSpan.FromMilliseconds(parse.GetValue(maxDown)),
                TimeSpan.FromSeconds(parse.GetValue(maxChaos)),
                TimeSpan.FromSeconds(parse.GetValue(convergeBound)),
                TimeSpan.FromSeconds(parse.GetValue(convergeTimeout)),
                parse.GetValue(basePort),
                parse.GetValue(postgres),
                parse.GetValue(keep),
                parse.GetValue(noBuild),
                parse.GetValue(runDir),
                parse.GetValue(repo)),
            ct));
        return command;
    }

    private sealed record ChaosSettings(
        int Orders, int Kills, int Concurrency, int RandomSeed, TimeSpan MaxDown, TimeSpan MaxChaos, TimeSpan ConvergeBound,
        TimeSpan ConvergeTimeout, int? BasePort, string? Postgres, bool Keep, bool NoBuild, string? RunDir, string? Repo);

    private static async Task<int> RunAsync(ChaosSettings settings, CancellationToken ct)
    {
        var console = AnsiConsole.Console;
        if (CommandSupport.PrepareRun(console, "chaos", settings.Repo, settings.RunDir, sqliteFilesThere: settings.Postgres is null) is not { } place)
        {
            return ExitCodes.SetupFailed;
        }

        var (repoRoot, runId, runFolder) = place;
        var configuration = RepoLocator.BuildConfiguration;

        // Load, readiness probes, convergence polls and the dispatcher share one pool.
        using var http = HttpClients.Create(settings.Concurrency + 32);
        PostgresDatabases? databases = null;
        SystemUnderTest? system = null;
        void KillOnExit(object? sender, EventArgs e) => system?.KillAllNow();
        AppDomain.CurrentDomain.ProcessExit += KillOnExit;
        try
        {
            if (!settings.NoBuild)
            {
                await CommandSupport.BuildServicesAsync(console, place, configuration, ct);
            }

            var ports = ChoosePorts(console, settings.BasePort);
            if (ports is null)
            {
                return ExitCodes.SetupFailed;
            }

            IReadOnlyDictionary<ServiceKind, DatabaseSetup> stores;
            var extraEnvironment = new Dictionary<string, string>(StringComparer.Ordinal);
            string storeText;
            if (settings.Postgres is { } pg)
            {
                databases = await PostgresDatabases.CreateAsync(pg, $"twophase_chaos_{runId}", ct);
                stores = databases.ConnectionStrings.ToDictionary(kv => kv.Key, kv => DatabaseSetup.Postgres(kv.Value));
                // As in the demo: three services' pools must fit the server's connection limit, also
                // while a killed service's connections are still being torn down by the server.
                extraEnvironment["Database__MaxPoolSize"] = databases.PoolSizePerService.ToString(CultureInfo.InvariantCulture);
                storeText = $"PostgreSQL: {string.Join(", ", databases.Names.Values)} (pool {databases.PoolSizePerService} per service)";
            }
            else
            {
                stores = ServiceKinds.All.ToDictionary(k => k, k => DatabaseSetup.Sqlite(runFolder, k));
                storeText = $"SQLite files in {runFolder}";
            }

            var secret = SystemUnderTest.NewSecret();
            system = new SystemUnderTest(
                new SystemUnderTestOptions
                {
                    RepoRoot = repoRoot,
                    Configuration = configuration,
                    Ports = ports,
                    Databases = stores,
                    Secret = secret,
                    LogFolder = runFolder,
                    ExtraEnvironment = extraEnvironment,
                    ServiceEnvironment = RecoverySettings,
                },
                http);
            var sut = system;
            var timings = new ChaosTimings { MaxDown = settings.MaxDown, MaxChaos = settings.MaxChaos, OrdersWhileDown = Math.Max(1, settings.Concurrency / 2) };
            var retry = new ClientRetryPolicy();
            var plan = KillPlan.Create(settings.Orders, settings.Kills, new Random(settings.RandomSeed));
            var seedPlan = SeedPlan.ForOrders(settings.Orders);
            ChaosReport.PrintSettings(console, SettingsRows(settings, storeText, ports, timings, retry, seedPlan));

            await console.Status().StartAsync("Starting the services...", _ => sut.StartAsync(ct));
            var endpoints = new ServiceEndpoints(sut.UrlOf(ServiceKind.Order), sut.UrlOf(ServiceKind.Storage), sut.UrlOf(ServiceKind.Delivery));
            await console.Status().StartAsync("Seeding products and couriers...",
                _ => new Seeder(http, endpoints.Storage, endpoints.Delivery, secret).SeedAsync(seedPlan, ct));

            var generator = new LoadGenerator(http, new LoadOptions
            {
                OrderUrl = endpoints.Order,
                Orders = settings.Orders,
                Concurrency = settings.Concurrency,
                RandomSeed = settings.RandomSeed,
                RunTag = "chaos-" + runId.Replace('_', '-'),
                RequestTimeout = retry.RequestTimeout,
            });
            var gate = new LoadGate(plan.Count > 0 ? plan[0].AfterOrder : int.MaxValue);
            var clock = Stopwatch.StartNew();
            var monkey = new ChaosMonkey(sut, plan, gate, timings, new Random(settings.RandomSeed + 1), clock);
            await using var dispatcher = new CourierDispatcher(http, endpoints.Delivery, secret);

            var (load, loadEnded) = await RunUnderChaosAsync(console, settings, generator, retry, gate, monkey, dispatcher, clock, ct);
            var dispatched = await dispatcher.StopAsync();

            // With no kills the clock starts at the end of the load: how long the system takes to settle.
            var lastRestart = monkey.Kills.Count > 0 ? monkey.Kills[^1].ReadyAt : loadEnded;
            var probe = new ConvergenceProbe(http, endpoints, secret);
            var converged = await console.Status().StartAsync("Waiting for convergence...", ctx =>
                probe.WaitAsync(clock, lastRestart, settings.ConvergeTimeout, p =>
                    ctx.Status($"Waiting for convergence: {p.Unfinished} unfinished, {p.StoragePrepared} + {p.DeliveryPrepared} prepared{(p.Error is null ? "" : " (a service did not answer)")}..."), ct));

            var reader = new ServiceSnapshotReader(http, endpoints, secret);
            var snapshot = await console.Status().StartAsync("Reading the three services for the audit...",
                _ => reader.WaitForQuietAsync(TimeSpan.FromSeconds(30), null, ct));

            ChaosReport.PrintKills(console, monkey.Kills);
            ChaosReport.PrintOutcomes(console, load, snapshot, dispatched);
            ChaosReport.PrintConvergence(console, lastRestart, loadEnded, converged, settings.ConvergeBound);

            // Every answer of every try: the system owes each of them, not just the last.
            var audit = new Auditor().Check(snapshot, load.All);
            audit = audit with
            {
                Results =
                [
                    ChaosChecks.Kills(settings.Kills, monkey.Kills, monkey.TimedOut),
                    ChaosChecks.Convergence(converged, settings.ConvergeBound),
                    .. audit.Results,
                    ChaosChecks.ProtocolViolationsLogged(sut.Hosts),
                ],
            };
            ConsoleReport.PrintAudit(console, audit);
            return audit.Passed ? ExitCodes.Ok : ExitCodes.Failed;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            console.MarkupLine("[yellow]Interrupted.[/]");
            return ExitCodes.Interrupted;
        }
        catch (ChaosRestartException ex)
        {
            // A service that cannot come back after a kill is a finding, not a setup problem.
            console.MarkupLine($"[red bold]{Markup.Escape(ex.Message)}[/]");
            return ExitCodes.Failed;
        }
        catch (Exception ex) when (ex is ServiceStartException or ApiException or HttpRequestException)
        {
            console.MarkupLine($"[red]{Markup.Escape(ex.Message)}[/]");
            return ExitCodes.SetupFailed;
        }
        finally
        {
            if (system is not null)
            {
                await system.DisposeAsync();
                console.MarkupLine($"Services stopped. Logs: {Markup.Escape(runFolder)}");
            }

            AppDomain.CurrentDomain.ProcessExit -= KillOnExit;
            await DropDatabasesAsync(console, databases, settings.Keep);
        }
    }

    /// <summary>The load and the monkey side by side, with a progress bar; returns the load and when its last answer came (on <paramref name="clock"/>).</summary>
    private static async Task<(ChaosLoadResult Load, TimeSpan Ended)> RunUnderChaosAsync(
        IAnsiConsole console, ChaosSettings settings, LoadGenerator generator, ClientRetryPolicy retry, LoadGate gate,
        ChaosMonkey monkey, CourierDispatcher dispatcher, Stopwatch clock, CancellationToken ct)
    {
        console.MarkupLine($"Placing [bold]{settings.Orders:N0}[/] orders at concurrency [bold]{settings.Concurrency}[/] with [bold]{settings.Kills}[/] kills...");
        int committed = 0, aborted = 0, lost = 0;
        var lastAnswerAt = TimeSpan.Zero;
        return await console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .StartAsync(async ctx =>
            {
                var task = ctx.AddTask("orders", maxValue: settings.Orders);
                var progress = new Lock();
                using var stopChaos = CancellationTokenSource.CreateLinkedTokenSource(ct);
                using var stopLoad = CancellationTokenSource.CreateLinkedTokenSource(ct);
                var chaos = monkey.RunAsync(stopChaos.Token);
                var loadTask = new ChaosLoad(generator, settings.Concurrency, retry, gate).RunAsync(answer =>
                {
                    switch (answer.Outcome)
                    {
                        case AnswerOutcome.Committed:
                            Interlocked.Increment(ref committed);
                            if (answer.TransactionId is { } tx)
                            {
                                dispatcher.Complete(tx);
                            }

                            break;
                        case AnswerOutcome.Aborted:
                            Interlocked.Increment(ref aborted);
                            break;
                        default:
                            Interlocked.Increment(ref lost);
                            break;
                    }

                    lock (progress)
                    {
                        task.Description = $"orders [green]{Volatile.Read(ref committed)}[/] committed, [yellow]{Volatile.Read(ref aborted)}[/] aborted, " +
                                           $"{Volatile.Read(ref lost)} other; kills {monkey.Kills.Count}/{settings.Kills}";
                        task.Increment(1);
                        lastAnswerAt = clock.Elapsed;
                    }
                }, stopLoad.Token);

                var first = await Task.WhenAny(chaos, loadTask);
                if (first == loadTask && loadTask.IsFaulted)
                {
                    // The load broke (not a service: the load survives dead services); stop the monkey and report it.
                    stopChaos.Cancel();
                    await Task.WhenAny(chaos);
                    await loadTask;
                }

                try
                {
                    await chaos;
                }
                catch (ServiceStartException ex)
                {
                    // Orders against a service that stays dead would each retry for the whole budget: stop them.
                    stopLoad.Cancel();
                    await Task.WhenAny(loadTask);
                    throw new ChaosRestartException($"A service did not come back after a kill: {ex.Message}", ex);
                }

                var load = await loadTask;
                lock (progress)
                {
                    return (load, lastAnswerAt);
                }
            });
    }

    /// <summary>The requested ports, or the first free trio from <see cref="FirstBasePort"/>, or any three free ports.</summary>
    private static ServicePorts? ChoosePorts(IAnsiConsole console, int? basePort)
    {
        if (basePort is { } b)
        {
            var requested = ServicePorts.FromBase(b);
            var busy = requested.All().Where(p => !PortAllocator.IsFree(p)).ToList();
            if (busy.Count == 0)
            {
                return requested;
            }

            console.MarkupLine($"[red]Port(s) {string.Join(", ", busy)} on 127.0.0.1 are in use; choose another --base-port.[/]");
            return null;
        }

        for (var i = 0; i < BasePortTries; i++)
        {
            var candidate = ServicePorts.FromBase(FirstBasePort + (i * 10));
            if (candidate.All().All(PortAllocator.IsFree))
            {
                return candidate;
            }
        }

        return PortAllocator.PickFree();
    }

    private static IEnumerable<(string, string)> SettingsRows(
        ChaosSettings s, string store, ServicePorts ports, ChaosTimings timings, ClientRetryPolicy retry, SeedPlan seed)
    {
        yield return ("store", store);
        yield return ("ports", $"order {ports.Order}, delivery {ports.Delivery}, storage {ports.Storage}");
        yield return ("orders", $"{s.Orders:N0} at concurrency {s.Concurrency}, seed {s.RandomSeed}");
        yield return ("stock and couriers", $"{SeedPlan.PlentifulProducts.Count} products x {seed.PlentifulStock:N0}, {SeedPlan.ScarceSku} x {seed.ScarceStock:N0}, {seed.Couriers:N0} couriers (freed by completing deliveries)");
        yield return ("kills", $"{s.Kills} SIGKILLs at random orders between 5% and 90% of the load, one service down at a time; " +
                               $"while it is down at most {timings.OrdersWhileDown} new orders start besides those in flight");
        yield return ("restart", $"after a random {timings.MinDown.TotalMilliseconds:0}-{timings.MaxDown.TotalMilliseconds:0} ms pause; kill phase bounded by {timings.MaxChaos.TotalSeconds:0} s");
        yield return ("client retries", $"lost answers retried with the same Idempotency-Key: at most {retry.MaxAttempts} tries within {retry.Budget.TotalSeconds:0} s, {retry.RequestTimeout.TotalSeconds:0} s per try");
        foreach (var (kind, env) in RecoverySettings)
        {
            yield return ($"{kind.ShortName()} recovery", string.Join(", ", env.Select(kv => $"{kv.Key}={kv.Value}")));
        }

        yield return ("convergence", $"must be reached within {s.ConvergeBound.TotalSeconds:0} s of the last restart (polled up to {s.ConvergeTimeout.TotalSeconds:0} s)");
    }

    private static async Task DropDatabasesAsync(IAnsiConsole console, PostgresDatabases? databases, bool keep)
    {
        if (databases is null)
        {
            return;
        }

        if (keep)
        {
            console.MarkupLine($"Kept PostgreSQL databases: {Markup.Escape(string.Join(", ", databases.Names.Values))}");
            return;
        }

        // Not the run's token: cleanup must still happen after Ctrl+C.
        var problems = await databases.DropAsync(CancellationToken.None);
        console.MarkupLine(problems.Count == 0
            ? "Dropped the PostgreSQL databases."
            : $"[yellow]Could not drop: {Markup.Escape(string.Join("; ", problems))}[/]");
    }

    private static void Between(System.CommandLine.Parsing.OptionResult result, int min, int max)
    {
        var value = result.GetValueOrDefault<int?>();
        if (value is { } v && (v < min || v > max))
        {
            result.AddError($"{result.Option.Name} must be between {min:N0} and {max:N0}.");
        }
    }
}
