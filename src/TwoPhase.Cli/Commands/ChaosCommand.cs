using System.CommandLine;
using System.Diagnostics;
using Spectre.Console;
using TwoPhase.Cli.Chaos;
using TwoPhase.Harness.Load;
using TwoPhase.Cli.Rendering;
using TwoPhase.Harness;
using TwoPhase.Harness.Audit;
using TwoPhase.Harness.Client;

namespace TwoPhase.Cli.Commands;

/// <summary>
/// <c>chaos</c>: start the three services (on SQLite, or each on a throwaway PostgreSQL cluster of its own), run the
/// simulator, and at random moments of the load inject faults of every kind, one at a time: SIGKILL and restart of
/// a service, an immediate stop and restart of a service's PostgreSQL cluster, SIGSTOP/SIGCONT of a service for
/// longer than the prepare deadline, and message faults on the coordinator's link to each participant (dropped
/// request, dropped response, duplicate, delay past the deadline) through an in-process proxy. Then wait until the
/// system has converged, audit it against every answer a client got, and exit non-zero on any violation.
/// </summary>
internal static class ChaosCommand
{
    // Ports below the kernel's ephemeral range (32768+ on Linux): a port picked from that range can be
    // taken as the source port of one of our own connections while its service is down for a restart.
    private const int FirstBasePort = 18100;
    private const int BasePortTries = 50;

    // Shorter than the pauses (DESIGN §2 default), so that a pause of a participant aborts what it held up.
    private const int PrepareDeadlineMs = 2000;

    public static Command Create()
    {
        var orders = new Option<int>("--orders")
        {
            Description = "How many orders to place.",
            DefaultValueFactory = _ => 2000,
            Validators = { r => CommandSupport.Between(r, 1, 1_000_000) },
        };
        var kills = FaultCountOption("--kills", 20,
            "How many service kills (SIGKILL, then restart), spread over the load and over the three services (dealt round-robin, each its share).");
        var dbKills = new Option<int?>("--db-kills")
        {
            Description = $"How many PostgreSQL cluster kills (pg_ctl stop -m immediate, then start), dealt over the three clusters. Only with --postgres and no connection string. Default: {DefaultDbKills} there, else 0.",
            Validators = { r => CommandSupport.Between(r, 0, 1000) },
        };
        var pauses = FaultCountOption("--pauses", 6,
            "How many SIGSTOP/SIGCONT pauses of a service, each longer than the prepare deadline, dealt over the three services.");
        var messageFaults = FaultCountOption("--message-faults", 8,
            "How many message faults on the coordinator's links (drop request, drop response, duplicate, delay past the deadline), dealt over both participants and the four kinds.");
        var concurrency = CommandSupport.ConcurrencyOption();
        var randomSeed = CommandSupport.RandomSeedOption();
        randomSeed.Description = "Seed of the order mix and of the fault plan (when, what, whom, how long).";
        var maxDown = new Option<int>("--max-down-ms")
        {
            Description = "Longest pause between a kill (of a service or a database) and the restart (the pause is random, at least 100 ms).",
            DefaultValueFactory = _ => 1500,
            Validators = { r => CommandSupport.Between(r, 100, 60_000) },
        };
        var maxChaos = new Option<int>("--max-chaos-seconds")
        {
            Description = "Time bound of the fault phase; faults not done by then are skipped and the run fails.",
            DefaultValueFactory = _ => 600,
            Validators = { r => CommandSupport.Between(r, 10, 3600) },
        };
        var convergeBound = new Option<int>("--converge-bound")
        {
            Description = "Seconds after the last fault healed by which the system must have converged.",
            DefaultValueFactory = _ => 10,
            Validators = { r => CommandSupport.Between(r, 1, 3600) },
        };
        var convergeTimeout = new Option<int>("--converge-timeout")
        {
            Description = "Seconds after the last fault healed to keep polling for convergence before giving up.",
            DefaultValueFactory = _ => 120,
            Validators = { r => CommandSupport.Between(r, 1, 3600) },
        };
        var basePort = new Option<int?>("--base-port")
        {
            Description = $"Order service port; delivery and storage take the next two. Default: the first free trio from {FirstBasePort}.",
            Validators = { r => CommandSupport.Between(r, 1024, 65533) },
        };
        var postgres = new Option<string?>("--postgres")
        {
            Description = "Run on PostgreSQL. Alone: each service on a throwaway cluster of its own (initdb, 127.0.0.1, fsync and synchronous_commit on), " +
                          "removed after the run; the database kills need this. With a connection string without Database " +
                          "(e.g. \"Host=127.0.0.1;Username=postgres\"): three fresh databases on that one server instead, and no database kills.",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var postgresPort = new Option<int>("--postgres-port")
        {
            Description = "First port tried for the throwaway clusters on 127.0.0.1; each takes the next free one.",
            DefaultValueFactory = _ => 15432,
            Validators = { r => CommandSupport.Between(r, 1024, 65000) },
        };
        var keep = new Option<bool>("--keep") { Description = "Keep the PostgreSQL databases (or the stopped clusters' folders) after the run (SQLite files and logs are always kept)." };
        var noBuild = new Option<bool>("--no-build") { Description = "Do not build the services first." };
        var runDir = new Option<string?>("--run-dir") { Description = "Folder for logs and SQLite files (default: a fresh folder under the temp folder)." };
        var repo = new Option<string?>("--repo") { Description = "Repository root (default: found by walking up to TwoPhase.slnx)." };

        var command = new Command("chaos",
            "Start the services, place orders while killing services and databases, pausing services and losing, duplicating and delaying messages; wait for convergence, audit.")
        {
            orders, kills, dbKills, pauses, messageFaults, concurrency, randomSeed, maxDown, maxChaos, convergeBound, convergeTimeout, basePort,
            postgres, postgresPort, keep, noBuild, runDir, repo,
        };
        command.SetAction((parse, ct) =>
        {
            var store = StoreOf(parse.GetResult(postgres), parse.GetValue(postgres));
            var settings = new ChaosSettings(
                parse.GetValue(orders),
                Counts(store, parse.GetValue(kills), parse.GetValue(dbKills), parse.GetValue(pauses), parse.GetValue(messageFaults)),
                parse.GetValue(concurrency),
                parse.GetValue(randomSeed),
                TimeSpan.FromMilliseconds(parse.GetValue(maxDown)),
                TimeSpan.FromSeconds(parse.GetValue(maxChaos)),
                TimeSpan.FromSeconds(parse.GetValue(convergeBound)),
                TimeSpan.FromSeconds(parse.GetValue(convergeTimeout)),
                parse.GetValue(basePort),
                store,
                parse.GetValue(postgresPort),
                parse.GetValue(keep),
                parse.GetValue(noBuild),
                parse.GetValue(runDir),
                parse.GetValue(repo));
            // Checked here, not in a command validator: there, options left at their defaults read as 0.
            if (Problems(settings).ToList() is { Count: > 0 } problems)
            {
                foreach (var problem in problems)
                {
                    AnsiConsole.Console.MarkupLine($"[red]{Markup.Escape(problem)}[/]");
                }

                return Task.FromResult(ExitCodes.SetupFailed);
            }

            return RunAsync(settings, ct);
        });
        return command;
    }

    private const int DefaultDbKills = 6;

    private static Option<int> FaultCountOption(string name, int defaultCount, string description) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => defaultCount,
        Validators = { r => CommandSupport.Between(r, 0, 1000) },
    };

    /// <summary>Where the services keep their data: SQLite files, three throwaway clusters, or three databases on a given server.</summary>
    private abstract record PostgresStore
    {
        public sealed record None : PostgresStore;

        public sealed record Clusters : PostgresStore;

        public sealed record Server(string ConnectionString) : PostgresStore;
    }

    private static IEnumerable<string> Problems(ChaosSettings s)
    {
        if (s.Faults.DatabaseKills > 0 && s.Postgres is not PostgresStore.Clusters)
        {
            yield return "--db-kills needs --postgres without a connection string: the command kills only clusters it made itself (on SQLite, the store dies with its service: see --kills).";
        }

        if (s.Faults.Total > 0 && s.Orders < FaultPlan.MinOrders(s.Faults.Total))
        {
            yield return $"--orders must be at least {FaultPlan.MinOrders(s.Faults.Total):N0} for {s.Faults.Total} faults: each fault falls at its own order.";
        }
    }

    /// <summary>No --postgres: SQLite; --postgres alone: throwaway clusters; --postgres with a value: that server.</summary>
    private static PostgresStore StoreOf(System.CommandLine.Parsing.OptionResult? given, string? value) =>
        given is null
            ? new PostgresStore.None()
            : value is { Length: > 0 } cs ? new PostgresStore.Server(cs) : new PostgresStore.Clusters();

    /// <summary>The database kills default to <see cref="DefaultDbKills"/> on throwaway clusters and to none elsewhere.</summary>
    private static FaultCounts Counts(PostgresStore store, int kills, int? dbKills, int pauses, int messageFaults) =>
        new(kills, dbKills ?? (store is PostgresStore.Clusters ? DefaultDbKills : 0), pauses, messageFaults);

    private sealed record ChaosSettings(
        int Orders, FaultCounts Faults, int Concurrency, int RandomSeed, TimeSpan MaxDown, TimeSpan MaxChaos, TimeSpan ConvergeBound,
        TimeSpan ConvergeTimeout, int? BasePort, PostgresStore Postgres, int PostgresPort, bool Keep, bool NoBuild, string? RunDir, string? Repo);

    private static async Task<int> RunAsync(ChaosSettings settings, CancellationToken ct)
    {
        var console = AnsiConsole.Console;
        if (CommandSupport.PrepareRun(console, "chaos", settings.Repo, settings.RunDir, sqliteFilesThere: settings.Postgres is PostgresStore.None) is not { } place)
        {
            return ExitCodes.SetupFailed;
        }

        var (repoRoot, runId, runFolder) = place;
        // Load, readiness probes, convergence polls and the dispatcher share one pool.
        using var http = HttpClients.Create(settings.Concurrency + 32);
        PostgresClusters? clusters = null;
        ReferenceSystem? system = null;
        using var exit = CommandSupport.OnProcessExit(() =>
        {
            system?.KillAllNow();
            clusters?.StopNow();
        });
        return await CommandSupport.GuardAsync(console, async () =>
        {
            try
            {
                if (!settings.NoBuild)
                {
                    await CommandSupport.BuildServicesAsync(console, place, RepoLocator.BuildConfiguration, ct);
                }

                if (CommandSupport.ChoosePorts(console, settings.BasePort, FirstBasePort, BasePortTries) is not { } ports)
                {
                    return ExitCodes.SetupFailed;
                }

                if (settings.Postgres is PostgresStore.Clusters)
                {
                    clusters = await console.Status().StartAsync("Creating three PostgreSQL clusters (initdb)...",
                        _ => PostgresClusters.CreateAsync(runFolder, settings.PostgresPort, ct));
                }

                // The coordinator reaches each participant through a proxy of ours, which the message faults arm.
                system = new ReferenceSystem(new SystemOptions
                {
                    RepoRoot = repoRoot,
                    Ports = ports,
                    Folder = runFolder,
                    Store = settings.Postgres is PostgresStore.None ? Store.Sqlite : Store.Postgres,
                    PostgresServer = (settings.Postgres as PostgresStore.Server)?.ConnectionString,
                    PostgresServers = clusters?.Servers ?? new Dictionary<ServiceKind, string>(),
                    DatabasePrefix = $"twophase_chaos_{runId}",
                    KeepDatabases = true,
                    Proxied = new HashSet<ServiceKind> { ServiceKind.Storage, ServiceKind.Delivery },
                    ProxyOptions = new FaultProxyOptions { RecordLimit = 0 },
                    PrepareDeadlineMs = PrepareDeadlineMs,
                    Recovery = RecoverySettings.Chaos,
                });
                var sut = system;
                var timings = new ChaosTimings { MaxDown = settings.MaxDown, MaxChaos = settings.MaxChaos, OrdersWhileDown = Math.Max(1, settings.Concurrency / 2) };
                var retry = new ClientRetryPolicy();
                var plan = FaultPlan.Create(settings.Orders, settings.Faults, new Random(settings.RandomSeed));
                var seedPlan = SeedPlan.ForOrders(settings.Orders);
                await console.Status().StartAsync("Starting the services...", _ => sut.StartAsync(ct));
                ChaosReport.PrintSettings(console, SettingsRows(settings, StoreText(sut, clusters), sut, timings, retry, seedPlan));
                var endpoints = new ServiceEndpoints(sut.UrlOf(ServiceKind.Order), sut.UrlOf(ServiceKind.Storage), sut.UrlOf(ServiceKind.Delivery));
                await console.Status().StartAsync("Seeding products and couriers...",
                    _ => new Seeder(http, endpoints.Storage, endpoints.Delivery, sut.Secret).SeedAsync(seedPlan, ct));

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
                var monkey = new ChaosMonkey(new ChaosTargets(sut, clusters?.Clusters ?? new Dictionary<ServiceKind, PostgresCluster>()), plan, gate, timings, new Random(settings.RandomSeed + 1), clock);
                await using var dispatcher = new CourierDispatcher(http, endpoints.Delivery, sut.Secret);

                var probe = new ConvergenceProbe(http, endpoints, sut.Secret);
                var (load, loadEnded, leftovers) = await RunUnderChaosAsync(console, settings, plan.Count, generator, retry, gate, monkey, dispatcher, probe, clock, ct);
                var dispatched = await dispatcher.StopAsync();

                // The load may still run on the healed system after the last fault: the convergence clock then starts
                // when it ends (what the faults left behind is timed from the heal, by the leftovers). With no faults
                // it starts at the end of the load: how long the system takes to settle.
                var lastHealed = monkey.Faults.Count > 0 ? monkey.Faults.Max(f => f.HealedAt) : loadEnded;
                var settleFrom = lastHealed > loadEnded ? lastHealed : loadEnded;
                var converged = await console.Status().StartAsync("Waiting for convergence...", ctx =>
                    probe.WaitAsync(clock, settleFrom, settings.ConvergeTimeout, p =>
                        ctx.Status($"Waiting for convergence: {p.Unfinished} unfinished, {p.StoragePrepared} + {p.DeliveryPrepared} prepared{(p.Error is null ? "" : " (a service did not answer)")}..."), ct));

                var reader = new ServiceSnapshotReader(http, endpoints, sut.Secret);
                var snapshot = await console.Status().StartAsync("Reading the three services for the audit...",
                    _ => reader.WaitForQuietAsync(TimeSpan.FromSeconds(30), null, ct));

                ChaosReport.PrintFaults(console, monkey.Faults, settings.Faults);
                ChaosReport.PrintOutcomes(console, load, snapshot, dispatched);
                ChaosReport.PrintConvergence(console, lastHealed, loadEnded, leftovers, converged, settings.ConvergeBound);

                // Every answer of every try: the system owes each of them, not just the last.
                var audit = new Auditor().Check(snapshot, load.All);
                audit = audit with
                {
                    Results =
                    [
                        ChaosChecks.Faults(plan, monkey.Faults, monkey.TimedOut),
                        ChaosChecks.Convergence(leftovers, converged, settings.ConvergeBound),
                        .. audit.Results,
                        ChaosChecks.ProtocolViolationsLogged(sut.Services),
                    ],
                };
                ConsoleReport.PrintAudit(console, audit);
                return audit.Passed ? ExitCodes.Ok : ExitCodes.Failed;
            }
            catch (ChaosRestartException ex)
            {
                // A service or database that cannot come back after a fault is a finding, not a setup problem.
                console.MarkupLine($"[red bold]{Markup.Escape(ex.Message)}[/]");
                return ExitCodes.Failed;
            }
            finally
            {
                await CommandSupport.StopAsync(console, system, settings.Keep);
                await RemoveClustersAsync(console, clusters, settings.Keep);
            }
        }, ct);
    }

    private static string StoreText(ReferenceSystem system, PostgresClusters? clusters) =>
        (clusters, system.Databases) switch
        {
            ({ } c, _) => $"PostgreSQL, a throwaway cluster per service (fsync and synchronous_commit on): {c.Describe()}",
            (null, { } d) => $"PostgreSQL, one server: {string.Join(", ", d.Names.Values)} (pool {d.PoolSizePerService} per service)",
            _ => $"SQLite files in {system.Folder}",
        };

    /// <summary>The load and the monkey side by side, with a progress bar; returns the load and when its last answer came (on <paramref name="clock"/>).</summary>
    private static async Task<(ChaosLoadResult Load, TimeSpan Ended, LeftoverResult? Leftovers)> RunUnderChaosAsync(
        IAnsiConsole console, ChaosSettings settings, int faults, LoadGenerator generator, ClientRetryPolicy retry, LoadGate gate,
        ChaosMonkey monkey, CourierDispatcher dispatcher, ConvergenceProbe probe, Stopwatch clock, CancellationToken ct)
    {
        console.MarkupLine($"Placing [bold]{settings.Orders:N0}[/] orders at concurrency [bold]{settings.Concurrency}[/] with [bold]{faults}[/] faults...");
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
                                           $"{Volatile.Read(ref lost)} other; faults {monkey.Faults.Count}/{faults}";
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
                catch (Exception ex) when (ex is ServiceStartException or PostgresClusterException or TimeoutException)
                {
                    // Orders against a service that stays dead would each retry for the whole budget: stop them.
                    stopLoad.Cancel();
                    await Task.WhenAny(loadTask);
                    throw new ChaosRestartException($"A fault did not heal: {ex.Message}", ex);
                }

                // Timed from the last heal, while the load runs on: what the faults left behind must be finished in time.
                var leftovers = monkey.Faults.Count == 0
                    ? null
                    : await probe.WaitForLeftoversAsync(clock, monkey.Faults.Max(f => f.HealedAt), settings.ConvergeTimeout, ct);
                var load = await loadTask;
                lock (progress)
                {
                    return (load, lastAnswerAt, leftovers);
                }
            });
    }

    private static IEnumerable<(string, string)> SettingsRows(
        ChaosSettings s, string store, ReferenceSystem system, ChaosTimings timings, ClientRetryPolicy retry, SeedPlan seed)
    {
        var ports = system.Ports;
        yield return ("store", store);
        yield return ("ports", $"order {ports.Order}, delivery {ports.Delivery}, storage {ports.Storage}; the coordinator reaches " +
                               string.Join(" and ", system.Proxies.Select(kv => $"{kv.Key.ShortName()} through the fault proxy on {kv.Value.Url.Port}")));
        yield return ("orders", $"{s.Orders:N0} at concurrency {s.Concurrency}, seed {s.RandomSeed}");
        yield return ("stock and couriers", $"{SeedPlan.PlentifulProducts.Count} products x {seed.PlentifulStock:N0}, {SeedPlan.ScarceSku} x {seed.ScarceStock:N0}, {seed.Couriers:N0} couriers (freed by completing deliveries)");
        var f = s.Faults;
        yield return ("faults", $"{f.Total} at random orders between 5% and 90% of the load, one at a time, kinds mixed; while one lasts at most " +
                                $"{timings.OrdersWhileDown} new orders start besides those in flight; fault phase bounded by {timings.MaxChaos.TotalSeconds:0} s");
        yield return ("  service kills", $"{f.Kills}: SIGKILL, restart after a random {Ms(timings.MinDown)}-{Ms(timings.MaxDown)} pause");
        yield return ("  database kills", s.Postgres is PostgresStore.Clusters
            ? $"{f.DatabaseKills}: pg_ctl stop -m immediate of a service's cluster, start after a random {Ms(timings.MinDown)}-{Ms(timings.MaxDown)} pause (crash recovery)"
            : "0: only on the command's own clusters (--postgres alone); on SQLite the store dies with its service");
        yield return ("  pauses", $"{f.Pauses}: SIGSTOP of a service for a random {Ms(timings.MinPause)}-{Ms(timings.MaxPause)}, then SIGCONT (prepare deadline {PrepareDeadlineMs} ms)");
        yield return ("  message faults", $"{f.MessageFaults}: on the coordinator's link to a participant, for 1-{timings.MaxRequestsPerMessageFault} requests within " +
                                          $"{Ms(timings.MinWindow)}-{Ms(timings.MaxWindow)}: drop request, drop response, duplicate, or delay by {Ms(timings.MinMessageDelay)}-{Ms(timings.MaxMessageDelay)}");
        yield return ("client retries", $"lost answers retried with the same Idempotency-Key: at most {retry.MaxAttempts} tries within {retry.Budget.TotalSeconds:0} s, {retry.RequestTimeout.TotalSeconds:0} s per try");
        foreach (var kind in ServiceKinds.All)
        {
            var env = RecoverySettings.Chaos.For(kind).Where(e => e.Value is not null).Select(e => $"{e.Key}={e.Value}");
            yield return ($"{kind.ShortName()} recovery", string.Join(", ", env));
        }

        yield return ("convergence", $"must be reached within {s.ConvergeBound.TotalSeconds:0} s of the last fault's heal (polled up to {s.ConvergeTimeout.TotalSeconds:0} s)");
    }

    private static string Ms(TimeSpan t) => $"{t.TotalMilliseconds:0} ms";

    private static async Task RemoveClustersAsync(IAnsiConsole console, PostgresClusters? clusters, bool keep)
    {
        if (clusters is null)
        {
            return;
        }

        if (keep)
        {
            await clusters.StopKeepingDataAsync();
            console.MarkupLine($"Stopped the PostgreSQL clusters and kept their folders: {Markup.Escape(string.Join(", ", clusters.Clusters.Values.Select(c => c.Folder)))}");
            return;
        }

        await clusters.DisposeAsync();
        console.MarkupLine("Removed the PostgreSQL clusters.");
    }
}
