using System.CommandLine;
using Spectre.Console;
using TwoPhase.Cli.Hosting;
using TwoPhase.Cli.Load;
using TwoPhase.Cli.Rendering;
using TwoPhase.Harness.Audit;
using TwoPhase.Harness.Client;

namespace TwoPhase.Cli.Commands;

/// <summary>
/// <c>demo</c>: build and start the three services on fresh stores, seed with contention, fire a
/// burst, print the summary, audit, and stop everything it started (also on Ctrl+C and errors).
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var orders = CommandSupport.OrdersOption();
        var concurrency = CommandSupport.ConcurrencyOption();
        var randomSeed = CommandSupport.RandomSeedOption();
        var quietTimeout = CommandSupport.QuietTimeoutOption();
        var basePort = new Option<int?>("--base-port")
        {
            Description = "Order service port; delivery and storage take the next two. Default 8000 (free ports are picked if 8000-8002 are taken).",
        };
        var postgres = new Option<string?>("--postgres")
        {
            Description = "Run on PostgreSQL: a connection string without Database (e.g. \"Host=127.0.0.1;Username=postgres\"); three fresh databases are created and dropped.",
        };
        var keep = new Option<bool>("--keep") { Description = "Keep the PostgreSQL databases after the run (SQLite files and logs are always kept)." };
        var noBuild = new Option<bool>("--no-build") { Description = "Do not build the services first." };
        var runDir = new Option<string?>("--run-dir") { Description = "Folder for logs and SQLite files (default: a fresh folder under the temp folder)." };
        var repo = new Option<string?>("--repo") { Description = "Repository root (default: found by walking up to TwoPhase.slnx)." };

        var command = new Command("demo", "Start all three services on fresh stores, seed, fire a burst of orders, audit, stop.")
        {
            orders, concurrency, randomSeed, quietTimeout, basePort, postgres, keep, noBuild, runDir, repo,
        };
        command.SetAction((parse, ct) => RunAsync(
            new DemoSettings(
                parse.GetValue(orders),
                parse.GetValue(concurrency),
                parse.GetValue(randomSeed),
                TimeSpan.FromSeconds(parse.GetValue(quietTimeout)),
                parse.GetValue(basePort),
                parse.GetValue(postgres),
                parse.GetValue(keep),
                parse.GetValue(noBuild),
                parse.GetValue(runDir),
                parse.GetValue(repo)),
            ct));
        return command;
    }

    private sealed record DemoSettings(
        int Orders, int Concurrency, int RandomSeed, TimeSpan QuietTimeout, int? BasePort,
        string? Postgres, bool Keep, bool NoBuild, string? RunDir, string? Repo);

    private static async Task<int> RunAsync(DemoSettings settings, CancellationToken ct)
    {
        var console = AnsiConsole.Console;
        if (CommandSupport.PrepareRun(console, "demo", settings.Repo, settings.RunDir, sqliteFilesThere: settings.Postgres is null) is not { } place)
        {
            return ExitCodes.SetupFailed;
        }

        var (repoRoot, runId, runFolder) = place;
        var configuration = RepoLocator.BuildConfiguration;

        using var http = HttpClients.Create(settings.Concurrency + 16);
        PostgresDatabases? databases = null;
        SystemUnderTest? system = null;
        void KillOnExit(object? sender, EventArgs e) => system?.KillAllNow();
        // Ctrl+C cancels ct and the finally below stops the services; this covers the rest
        // (SIGTERM, an unhandled exception tearing the process down).
        AppDomain.CurrentDomain.ProcessExit += KillOnExit;
        try
        {
            if (!settings.NoBuild)
            {
                await CommandSupport.BuildServicesAsync(console, place, configuration, ct);
            }

            // Ports are chosen after the build, right before the start: a build takes long
            // enough for something else to take a port that was free before it.
            var ports = ChoosePorts(console, settings.BasePort);
            if (ports is null)
            {
                return ExitCodes.SetupFailed;
            }

            IReadOnlyDictionary<ServiceKind, DatabaseSetup> stores;
            var extraEnvironment = new Dictionary<string, string>(StringComparer.Ordinal);
            if (settings.Postgres is { } pg)
            {
                databases = await PostgresDatabases.CreateAsync(pg, $"twophase_demo_{runId}", ct);
                stores = databases.ConnectionStrings.ToDictionary(kv => kv.Key, kv => DatabaseSetup.Postgres(kv.Value));
                // Three services with default pools would exceed a stock server's 100 connections
                // and fail requests with "too many clients"; share what the server allows instead.
                extraEnvironment["Database__MaxPoolSize"] = databases.PoolSizePerService.ToString(System.Globalization.CultureInfo.InvariantCulture);
                console.MarkupLine($"PostgreSQL databases: {Markup.Escape(string.Join(", ", databases.Names.Values))} " +
                                   $"(pool {databases.PoolSizePerService} per service; server allows {databases.AvailableConnections} connections)");
            }
            else
            {
                stores = ServiceKinds.All.ToDictionary(k => k, k => DatabaseSetup.Sqlite(runFolder, k));
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
                },
                http);
            var sut = system;
            await console.Status().StartAsync("Starting the services...", _ => sut.StartAsync(ct));
            PrintServices(console, sut);

            var endpoints = new ServiceEndpoints(sut.UrlOf(ServiceKind.Order), sut.UrlOf(ServiceKind.Storage), sut.UrlOf(ServiceKind.Delivery));
            var plan = SeedPlan.ForOrders(settings.Orders);
            await console.Status().StartAsync("Seeding products and couriers...",
                _ => new Seeder(http, endpoints.Storage, endpoints.Delivery, secret).SeedAsync(plan, ct));
            console.MarkupLine($"Seeded {SeedPlan.PlentifulProducts.Count} plentiful products ({plan.PlentifulStock:N0} each), " +
                               $"[bold]{SeedPlan.ScarceSku}[/] x {plan.ScarceStock:N0}, [bold]{plan.Couriers:N0}[/] couriers.");

            var load = await CommandSupport.RunLoadAsync(console, http, new LoadOptions
            {
                OrderUrl = endpoints.Order,
                Orders = settings.Orders,
                Concurrency = settings.Concurrency,
                RandomSeed = settings.RandomSeed,
                RunTag = "demo-" + runId.Replace('_', '-'),
            }, ct);
            var summary = LoadSummary.From(load);
            ConsoleReport.PrintSummary(console, summary);

            var reader = new ServiceSnapshotReader(http, endpoints, secret);
            var report = await CommandSupport.RunAuditAsync(console, reader, load.Answers, settings.QuietTimeout, ct);
            var ok = report.Passed && summary.Errors == 0;
            if (summary.Errors > 0)
            {
                console.MarkupLine($"[red]{summary.Errors:N0} order(s) got an error instead of an outcome; see the logs in {Markup.Escape(runFolder)}.[/]");
            }

            return ok ? ExitCodes.Ok : ExitCodes.Failed;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            console.MarkupLine("[yellow]Interrupted.[/]");
            return ExitCodes.Interrupted;
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

    /// <summary>The requested ports if free; the defaults if free; otherwise three free ports, said out loud.</summary>
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

            console.MarkupLine($"[red]Port(s) {string.Join(", ", busy)} on 127.0.0.1 are in use; choose another --base-port or stop what listens there.[/]");
            return null;
        }

        var defaults = ServicePorts.Default;
        var taken = defaults.All().Where(p => !PortAllocator.IsFree(p)).ToList();
        if (taken.Count == 0)
        {
            return defaults;
        }

        var picked = PortAllocator.PickFree();
        console.MarkupLine($"[yellow]Default port(s) {string.Join(", ", taken)} are in use; using order {picked.Order}, delivery {picked.Delivery}, storage {picked.Storage} instead.[/]");
        return picked;
    }

    private static void PrintServices(IAnsiConsole console, SystemUnderTest system)
    {
        var table = new Table().Border(TableBorder.Rounded).AddColumn("service").AddColumn("url").AddColumn("pid").AddColumn("log");
        foreach (var host in system.Hosts)
        {
            table.AddRow(host.Kind.ProjectName(), host.Url.ToString(), host.ProcessId?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-", Markup.Escape(host.LogPath));
        }

        console.Write(table);
    }

    private static async Task DropDatabasesAsync(IAnsiConsole console, PostgresDatabases? databases, bool keep)
    {
        if (databases is null)
        {
            return;
        }

        if (keep)
        {
            console.MarkupLine($"Kept PostgreSQL databases: {Markup.Escape(string.Join(", ", databases.ConnectionStrings.Values))}");
            return;
        }

        // Not the run's token: cleanup must still happen after Ctrl+C; bounded by the command timeout.
        var problems = await databases.DropAsync(CancellationToken.None);
        console.MarkupLine(problems.Count == 0
            ? "Dropped the PostgreSQL databases."
            : $"[yellow]Could not drop: {Markup.Escape(string.Join("; ", problems))}[/]");
    }
}
