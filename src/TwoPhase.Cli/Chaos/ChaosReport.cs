using System.Globalization;
using Spectre.Console;
using TwoPhase.Cli.Audit;
using TwoPhase.Cli.Hosting;

namespace TwoPhase.Cli.Chaos;

/// <summary>What the chaos command prints. Everything from a service is escaped: it is data, not markup.</summary>
public static class ChaosReport
{
    private const int MaxReasons = 6;

    /// <summary>The settings a run used, so a reader can tell what the numbers were measured under.</summary>
    public static void PrintSettings(IAnsiConsole console, IEnumerable<(string What, string Value)> rows)
    {
        ArgumentNullException.ThrowIfNull(console);
        ArgumentNullException.ThrowIfNull(rows);
        var table = new Table().Border(TableBorder.Rounded).Title("[bold]Chaos settings[/]").AddColumn("setting").AddColumn("value");
        foreach (var (what, value) in rows)
        {
            table.AddRow(Markup.Escape(what), Markup.Escape(value));
        }

        console.Write(table);
    }

    public static void PrintKills(IAnsiConsole console, IReadOnlyList<KillRecord> kills)
    {
        ArgumentNullException.ThrowIfNull(console);
        ArgumentNullException.ThrowIfNull(kills);
        var log = new Table().Border(TableBorder.Rounded).Title("[bold]Kills[/] (times from the start of the load)")
            .AddColumn(new TableColumn("#").RightAligned()).AddColumn("service").AddColumn(new TableColumn("orders started").RightAligned())
            .AddColumn(new TableColumn("killed at").RightAligned()).AddColumn(new TableColumn("paused").RightAligned())
            .AddColumn(new TableColumn("ready again at").RightAligned()).AddColumn(new TableColumn("outage").RightAligned());
        foreach (var k in kills)
        {
            log.AddRow(
                k.Number.ToString(CultureInfo.InvariantCulture), k.Service.ShortName(), k.AfterOrder.ToString("N0", CultureInfo.InvariantCulture),
                Seconds(k.KilledAt), Millis(k.Down), Seconds(k.ReadyAt), Seconds(k.Outage));
        }

        console.Write(log);

        var perService = new Table().Border(TableBorder.Rounded).Title("[bold]Kills per service[/]")
            .AddColumn("service").AddColumn(new TableColumn("kills").RightAligned()).AddColumn(new TableColumn("mean outage").RightAligned())
            .AddColumn(new TableColumn("longest outage").RightAligned());
        foreach (var kind in ServiceKinds.All)
        {
            var mine = kills.Where(k => k.Service == kind).ToList();
            perService.AddRow(
                kind.ShortName(), mine.Count.ToString(CultureInfo.InvariantCulture),
                mine.Count == 0 ? "-" : Seconds(TimeSpan.FromTicks((long)mine.Average(k => k.Outage.Ticks))),
                mine.Count == 0 ? "-" : Seconds(mine.Max(k => k.Outage)));
        }

        perService.AddRow("[bold]total[/]", $"[bold]{kills.Count}[/]", "", "");
        console.Write(perService);
    }

    /// <summary>Orders by what the client was finally told, and what each lost answer turned out to be.</summary>
    public static void PrintOutcomes(IAnsiConsole console, ChaosLoadResult load, SystemSnapshot snapshot, DispatchStats dispatch)
    {
        ArgumentNullException.ThrowIfNull(console);
        ArgumentNullException.ThrowIfNull(load);
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(dispatch);
        var final = load.Final;
        var table = new Table().Border(TableBorder.Rounded).Title("[bold]Orders by outcome[/] (the last answer each client got)")
            .AddColumn("outcome").AddColumn(new TableColumn("orders").RightAligned());
        table.AddRow("orders placed", N(final.Count));
        table.AddRow("[green]told committed[/]", N(final.Count(a => a.Outcome == AnswerOutcome.Committed)));
        table.AddRow("[yellow]told aborted[/]", N(final.Count(a => a.Outcome == AnswerOutcome.Aborted)));
        foreach (var group in final.Where(a => a.Outcome == AnswerOutcome.Aborted)
                     .GroupBy(a => a.ReasonClass ?? "no reason given", StringComparer.Ordinal)
                     .OrderByDescending(g => g.Count()).Take(MaxReasons))
        {
            table.AddRow($"  [grey]{Markup.Escape(group.Key)}[/]", N(group.Count()));
        }

        var lost = final.Where(ChaosLoad.IsLost).ToList();
        table.AddRow("answer lost (dropped, timed out, 5xx, pending) after all tries", N(lost.Count));
        if (lost.Count > 0)
        {
            var byClientId = snapshot.Orders.Where(o => o.ClientOrderId is not null)
                .GroupBy(o => o.ClientOrderId!, StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => g.First().Status, StringComparer.Ordinal);
            foreach (var group in lost.GroupBy(a => byClientId.GetValueOrDefault(a.ClientOrderId) ?? "no transaction").OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                table.AddRow($"  [grey]turned out {Markup.Escape(group.Key)}[/]", N(group.Count()));
            }
        }

        table.AddRow("rejected (4xx)", N(final.Count(a => a.Outcome == AnswerOutcome.Rejected)));
        table.AddRow("orders retried with the same Idempotency-Key", N(load.Retried));
        table.AddRow("answers kept (every try)", N(load.All.Count));
        table.AddRow("deliveries completed (couriers freed)", N(dispatch.Completed));
        if (dispatch.GaveUp > 0)
        {
            table.AddRow("deliveries not completed (gave up)", N(dispatch.GaveUp));
        }

        table.AddRow("load duration", Seconds(load.Elapsed));
        console.Write(table);
    }

    public static void PrintConvergence(IAnsiConsole console, TimeSpan lastRestart, TimeSpan loadEnded, ConvergenceResult result, TimeSpan bound)
    {
        ArgumentNullException.ThrowIfNull(console);
        ArgumentNullException.ThrowIfNull(result);
        var table = new Table().Border(TableBorder.Rounded).Title("[bold]Convergence[/] (unfinished transactions at the order service, prepared rows at both participants)")
            .AddColumn("what").AddColumn(new TableColumn("value").RightAligned());
        table.AddRow("last restart ready at", Seconds(lastRestart));
        table.AddRow("last answer at", $"{Seconds(loadEnded)} ({Seconds(loadEnded - lastRestart)} after the last restart)");
        table.AddRow("polls", N(result.Polls));
        if (result.After is { } after)
        {
            var within = after <= bound;
            table.AddRow("[bold]converged after the last restart[/]",
                $"[bold {(within ? "green" : "red")}]{after.TotalSeconds:0.00} s[/] (bound {bound.TotalSeconds:0} s)");
        }
        else
        {
            var last = result.Last;
            table.AddRow("[bold red]not converged[/]",
                Markup.Escape($"{last.Unfinished} unfinished, {last.StoragePrepared} + {last.DeliveryPrepared} prepared{(last.Error is null ? "" : $"; {last.Error}")}"));
        }

        console.Write(table);
    }

    private static string N(int n) => n.ToString("N0", CultureInfo.InvariantCulture);

    private static string Seconds(TimeSpan t) => $"{t.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture)} s";

    private static string Millis(TimeSpan t) => $"{t.TotalMilliseconds.ToString("0", CultureInfo.InvariantCulture)} ms";
}
