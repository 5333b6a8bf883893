using System.CommandLine;
using System.Text.Json;
using Spectre.Console;
using TwoPhase.Harness.Load;
using TwoPhase.Cli.Rendering;
using TwoPhase.Harness.Audit;
using TwoPhase.Harness;
using TwoPhase.Harness.Client;

namespace TwoPhase.Cli.Commands;

/// <summary><c>simulate</c>: the demo's burst and summary against services that are already running.</summary>
internal static class SimulateCommand
{
    public static Command Create()
    {
        var orderUrl = CommandSupport.UrlOption("--order-url", "http://127.0.0.1:8000", "order service (coordinator)");
        var storageUrl = CommandSupport.UrlOption("--storage-url", "http://127.0.0.1:8002", "storage service (for --seed-data and --audit)");
        var deliveryUrl = CommandSupport.UrlOption("--delivery-url", "http://127.0.0.1:8001", "delivery service (for --seed-data and --audit)");
        var orders = CommandSupport.OrdersOption();
        var concurrency = CommandSupport.ConcurrencyOption();
        var randomSeed = CommandSupport.RandomSeedOption();
        var quietTimeout = CommandSupport.QuietTimeoutOption();
        var secret = CommandSupport.SecretOption();
        var output = new Option<FileInfo?>("--out") { Description = "Write every answer (committed, aborted, unknown...) as JSON, for `audit --answers`." };
        var seedData = new Option<bool>("--seed-data") { Description = "Create the demo products and couriers first (existing products are kept)." };
        var audit = new Option<bool>("--audit") { Description = "Audit afterwards, holding the system to the answers received." };
        var noComplete = new Option<bool>("--no-complete-deliveries")
        {
            Description = "Leave every committed order's delivery active (its courier stays busy); by default each is completed right after it commits, as the bench does.",
        };

        var command = new Command("simulate", "Fire a burst of orders at running services and summarize the answers.")
        {
            orderUrl, storageUrl, deliveryUrl, orders, concurrency, randomSeed, quietTimeout, secret, output, seedData, audit, noComplete,
        };
        command.SetAction(async (parse, ct) =>
        {
            var console = AnsiConsole.Console;
            var count = parse.GetValue(orders);
            var endpoints = new ServiceEndpoints(parse.GetValue(orderUrl)!, parse.GetValue(storageUrl)!, parse.GetValue(deliveryUrl)!);
            using var http = HttpClients.Create(parse.GetValue(concurrency) + 16);
            try
            {
                if (parse.GetValue(seedData))
                {
                    var seed = SeedPlan.ForOrders(count);
                    await new Seeder(http, endpoints.Storage, endpoints.Delivery, CommandSupport.Secret(parse, secret)).SeedAsync(seed, ct);
                    console.MarkupLine($"Seeded products and {seed.Couriers:N0} couriers.");
                }

                var completeDeliveries = !parse.GetValue(noComplete);
                var api = new Api(http, endpoints.Order, endpoints.Storage, endpoints.Delivery);
                if (SimulatePlan.From(await api.ProductsAsync(), await api.CouriersAsync(), count, parse.GetValue(concurrency), completeDeliveries, out var problem)
                    is not { } plan)
                {
                    console.MarkupLine($"[red]{Markup.Escape(problem!)}[/]");
                    return ExitCodes.SetupFailed;
                }

                console.MarkupLine($"Ordering what storage sells: {Markup.Escape(string.Join(", ", plan.Plentiful))}" +
                                   (plan.Scarce is { } scarceSku ? $", and {Markup.Escape(scarceSku)} in {plan.ScarceShare:P0} of the orders" : ""));
                foreach (var note in plan.Notes)
                {
                    console.MarkupLine($"[yellow]Note:[/] {Markup.Escape(note)}");
                }

                // Each committed order's delivery is completed before its worker sends the next order, so its courier is free again.
                await using var dispatcher = new CourierDispatcher(http, endpoints.Delivery, CommandSupport.Secret(parse, secret) ?? "");
                int completed = 0, notCompleted = 0;
                async Task CompleteAsync(ClientAnswer answer, CancellationToken token)
                {
                    if (answer.Outcome == AnswerOutcome.Committed && answer.TransactionId is { } tx)
                    {
                        _ = await dispatcher.CompleteNowAsync(tx, token) ? Interlocked.Increment(ref completed) : Interlocked.Increment(ref notCompleted);
                    }
                }

                var load = await CommandSupport.RunLoadAsync(console, http, new LoadOptions
                {
                    OrderUrl = endpoints.Order,
                    Orders = count,
                    Concurrency = plan.Concurrency,
                    RandomSeed = parse.GetValue(randomSeed),
                    RunTag = "sim-" + CommandSupport.NewRunId().Replace('_', '-'),
                    PlentifulSkus = plan.Plentiful,
                    ScarceSku = plan.Scarce ?? plan.Plentiful[0],
                    ScarceShare = plan.ScarceShare,
                }, ct, completeDeliveries ? CompleteAsync : null);
                var summary = LoadSummary.From(load);
                ConsoleReport.PrintSummary(console, summary);
                if (completeDeliveries)
                {
                    console.MarkupLine($"Deliveries completed: {completed:N0}" + (notCompleted > 0 ? $" ([yellow]{notCompleted:N0} could not be completed[/])" : ""));
                }

                if (parse.GetValue(output) is { } file)
                {
                    await using var stream = file.Create();
                    await JsonSerializer.SerializeAsync(stream, load.Answers, Json.Options, ct);
                    console.MarkupLine($"Answers written to {Markup.Escape(file.FullName)}");
                }

                var passed = true;
                if (parse.GetValue(audit))
                {
                    var reader = new ServiceSnapshotReader(http, endpoints, CommandSupport.Secret(parse, secret));
                    var report = await CommandSupport.RunAuditAsync(console, reader, load.Answers, TimeSpan.FromSeconds(parse.GetValue(quietTimeout)), ct);
                    passed = report.Passed;
                }

                return passed && summary.Errors == 0 ? ExitCodes.Ok : ExitCodes.Failed;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                console.MarkupLine("[yellow]Interrupted.[/]");
                return ExitCodes.Interrupted;
            }
            catch (Exception ex) when (ex is ApiException or HttpRequestException or IOException)
            {
                console.MarkupLine($"[red]{Markup.Escape(ex.Message)}[/]");
                return ExitCodes.SetupFailed;
            }
        });
        return command;
    }
}
