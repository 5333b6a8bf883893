using System.CommandLine;
using Spectre.Console;
using TwoPhase.Simulation;

namespace TwoPhase.Cli.Commands;

/// <summary>
/// <c>simulate-protocol</c>: run the deterministic simulator (docs/simulation.md) over a range of seeds, each one
/// history of the real coordinator and participant rules under crashes and a faulty network. A failing seed prints
/// its trace; the same seed replays it step for step.
/// </summary>
internal static class SimulateProtocolCommand
{
    public static Command Create()
    {
        var seeds = new Option<int>("--seeds") { Description = "How many seeds (histories) to run.", DefaultValueFactory = _ => 1000 };
        var from = new Option<int>("--from") { Description = "The first seed.", DefaultValueFactory = _ => 1 };
        var variant = new Option<BrokenVariant>("--variant") { Description = "Run a deliberately broken protocol, to see the simulator catch it.", DefaultValueFactory = _ => BrokenVariant.None };
        var traces = new Option<int>("--traces") { Description = "How many failing seeds to print with their trace.", DefaultValueFactory = _ => 1 };
        var command = new Command("simulate-protocol", "Run the protocol in the deterministic simulator over a range of seeds.") { seeds, from, variant, traces };
        command.SetAction((parse, ct) =>
        {
            var console = AnsiConsole.Console;
            var count = parse.GetValue(seeds);
            if (count is < 1 or > 10_000_000)
            {
                console.MarkupLine("[red]--seeds must be between 1 and 10,000,000.[/]");
                return Task.FromResult(ExitCodes.SetupFailed);
            }

            var first = parse.GetValue(from);
            var broken = parse.GetValue(variant);
            SimSummary? summary = null;
            try
            {
                console.Progress()
                    .AutoClear(false)
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask("histories", maxValue: count);
                        summary = SimRunner.Run(first, count, broken, progress: done => task.Value = done, cancellationToken: ct);
                    });
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                console.MarkupLine("[yellow]Interrupted.[/]");
                return Task.FromResult(ExitCodes.Interrupted);
            }

            Print(console, summary!, parse.GetValue(traces));
            return Task.FromResult(summary!.Failures.Count == 0 ? ExitCodes.Ok : ExitCodes.Failed);
        });
        return command;
    }

    private static void Print(IAnsiConsole console, SimSummary summary, int traces)
    {
        var table = new Table().AddColumns("seeds", "variant", "passed", "failed", "histories/s", "steps/history", "transactions");
        table.AddRow(
            $"{summary.From:N0}..{summary.From + summary.Count - 1:N0}",
            summary.Variant.ToString(),
            summary.Passed.ToString("N0"),
            summary.Failures.Count.ToString("N0"),
            summary.HistoriesPerSecond.ToString("N0"),
            (summary.Steps / summary.Count).ToString("N0"),
            summary.Transactions.ToString("N0"));
        console.Write(table);
        foreach (var failure in summary.Failures.Take(traces))
        {
            // Plain output: a trace line is not to be wrapped at the console width.
            Console.Out.WriteLine(failure.Report());
        }

        if (summary.Failures.Count > 0)
        {
            console.MarkupLine($"[red]Failing seeds:[/] {string.Join(", ", summary.Failures.Take(50).Select(f => f.Seed))}");
        }
    }
}
