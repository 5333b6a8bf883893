using System.CommandLine;
using Spectre.Console;
using TwoPhase.Harness.Load;
using TwoPhase.Cli.Rendering;
using TwoPhase.Harness.Audit;
using TwoPhase.Harness.Client;
using TwoPhase.Harness;

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
        var keepRunning = new Option<bool>("--keep-running")
        {
            Description = "After the audit, keep the services running (the dashboard's URL is printed) until Ctrl+C, then stop everything.",
        };

        var command = new Command("demo", "Start all three services on fresh stores, seed, fire a burst of orders, audit, stop.")
        {
            orders, concurrency, randomSeed, quietTimeout, basePort, postgres, keep, noBuild, runDir, repo, keepRunning,
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
                parse.GetValue(repo),
                parse.GetValue(keepRunning)),
            ct));
        return command;
    }

    private sealed record DemoSettings(
        int Orders, int Concurrency, int RandomSeed, TimeSpan QuietTimeout, int? BasePort,
        string? Postgres, bool Keep, bool NoBuild, string? RunDir, string? Repo, bool KeepRunning);

    private static async Task<int> RunAsync(DemoSettings settings, CancellationToken ct)
    {
        var console = AnsiConsole.Console;
        if (CommandSupport.PrepareRun(console, "demo", settings.Repo, settings.RunDir, sqliteFilesThere: settings.Postgres is null) is not { } place)
        {
            return ExitCodes.SetupFailed;
        }

        var (repoRoot, runId, runFolder) = place;
        using var http = HttpClients.Create(settings.Concurrency + 16);
        ReferenceSystem? system = null;
        using var exit = CommandSupport.OnProcessExit(() => system?.KillAllNow());
        return await CommandSupport.GuardAsync(console, async () =>
        {
            try
            {
                if (!settings.NoBuild)
                {
                    await CommandSupport.BuildServicesAsync(console, place, RepoLocator.BuildConfiguration, ct);
                }

                if (CommandSupport.ChoosePorts(console, settings.BasePort, ServicePorts.Default.Order, tries: 1) is not { } ports)
                {
                    return ExitCodes.SetupFailed;
                }

                system = new ReferenceSystem(new SystemOptions
                {
                    RepoRoot = repoRoot,
                    Ports = ports,
                    Folder = runFolder,
                    Store = settings.Postgres is null ? Store.Sqlite : Store.Postgres,
                    PostgresServer = settings.Postgres,
                    DatabasePrefix = $"twophase_demo_{runId}",
                    // Dropped by the command, which says so (CommandSupport.StopAsync).
                    KeepDatabases = true,
                });
                var sut = system;
                await console.Status().StartAsync("Starting the services...", _ => sut.StartAsync(ct));
                if (sut.Databases is { } databases)
                {
                    // Three services with default pools would exceed a stock server's 100 connections and fail requests
                    // with "too many clients"; the harness shares what the server allows instead.
                    console.MarkupLine($"PostgreSQL databases: {Markup.Escape(string.Join(", ", databases.Names.Values))} " +
                                       $"(pool {databases.PoolSizePerService} per service; server allows {databases.AvailableConnections} connections)");
                }

                PrintServices(console, sut);
                var endpoints = new ServiceEndpoints(sut.UrlOf(ServiceKind.Order), sut.UrlOf(ServiceKind.Storage), sut.UrlOf(ServiceKind.Delivery));
                var plan = SeedPlan.ForOrders(settings.Orders);
                await console.Status().StartAsync("Seeding products and couriers...",
                    _ => new Seeder(http, endpoints.Storage, endpoints.Delivery, sut.Secret).SeedAsync(plan, ct));
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

                var reader = new ServiceSnapshotReader(http, endpoints, sut.Secret);
                var report = await CommandSupport.RunAuditAsync(console, reader, load.Answers, settings.QuietTimeout, ct);
                if (summary.Errors > 0)
                {
                    console.MarkupLine($"[red]{summary.Errors:N0} order(s) got an error instead of an outcome; see the logs in {Markup.Escape(runFolder)}.[/]");
                }

                var result = report.Passed && summary.Errors == 0 ? ExitCodes.Ok : ExitCodes.Failed;
                if (settings.KeepRunning)
                {
                    await KeepRunningAsync(console, sut, ct);
                }

                return result;
            }
            finally
            {
                await CommandSupport.StopAsync(console, system, settings.Keep);
            }
        }, ct);
    }

    /// <summary>
    /// Waits for Ctrl+C with the system up, so a user sees the dashboard on a system that has just done work. Ctrl+C is
    /// the normal end here, not an interruption: the run's own result stands, and the caller's finally stops everything.
    /// </summary>
    private static async Task KeepRunningAsync(IAnsiConsole console, ReferenceSystem system, CancellationToken ct)
    {
        console.MarkupLine($"[bold]The system keeps running.[/] Dashboard: [link]{Markup.Escape(system.UrlOf(ServiceKind.Order).ToString())}[/]");
        console.MarkupLine($"Storage: {Markup.Escape(system.UrlOf(ServiceKind.Storage).ToString())}v1/products, delivery: {Markup.Escape(system.UrlOf(ServiceKind.Delivery).ToString())}v1/couriers. Press Ctrl+C to stop everything.");
        try
        {
            await Task.Delay(Timeout.Infinite, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            console.MarkupLine("Stopping...");
        }
    }

    private static void PrintServices(IAnsiConsole console, ReferenceSystem system)
    {
        var table = new Table().Border(TableBorder.Rounded).AddColumn("service").AddColumn("url").AddColumn("pid").AddColumn("log");
        foreach (var service in system.Services)
        {
            table.AddRow(service.Kind.ProjectName(), service.Url.ToString(), service.ProcessId?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-", Markup.Escape(service.LogPath));
        }

        console.Write(table);
    }
}
