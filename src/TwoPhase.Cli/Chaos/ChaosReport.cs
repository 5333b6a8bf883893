using System.Globalization;
using Spectre.Console;
using TwoPhase.Harness.Audit;
using TwoPhase.Harness;

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

    /// <summary>Every fault in order, then per nemesis how many hit each service and how long they lasted.</summary>
    public static void PrintFaults(IAnsiConsole console, IReadOnlyList<FaultRecord> faults, FaultCounts requested)
    {
        ArgumentNullException.ThrowIfNull(console);
        ArgumentNullException.ThrowIfNull(faults);
        ArgumentNullException.ThrowIfNull(requested);
        var log = new Table().Border(TableBorder.Rounded)
            .Title("[bold]Faults[/] (times from the start of the load; planned: down, paused or armed for; hit: requests, a batch is one)")
            .AddColumn(new TableColumn("#").RightAligned()).AddColumn("nemesis").AddColumn("target").AddColumn(new TableColumn("orders").RightAligned())
            .AddColumn(new TableColumn("at").RightAligned()).AddColumn(new TableColumn("planned").RightAligned())
            .AddColumn(new TableColumn("healed").RightAligned()).AddColumn(new TableColumn("outage").RightAligned())
            .AddColumn(new TableColumn("hit").RightAligned());
        foreach (var f in faults)
        {
            log.AddRow(
                N(f.Number), Markup.Escape(f.Fault.Describe()), Target(f.Fault), N(f.AfterOrder),
                Seconds(f.StartedAt), Seconds(f.Planned), Seconds(f.HealedAt), Seconds(f.Outage), f.Hits is { } h ? N(h) : "");
        }

        console.Write(log);

        var summary = new Table().Border(TableBorder.Rounded).Title("[bold]Faults per nemesis[/] (and per service; outage: from the fault to its heal)")
            .AddColumn("nemesis").AddColumn(new TableColumn("asked").RightAligned()).AddColumn(new TableColumn("done").RightAligned());
        foreach (var kind in ServiceKinds.All)
        {
            summary.AddColumn(new TableColumn(kind.ShortName()).RightAligned());
        }

        summary.AddColumn(new TableColumn("mean").RightAligned()).AddColumn(new TableColumn("longest").RightAligned())
            .AddColumn(new TableColumn("hit").RightAligned());
        foreach (var (label, mine, want) in Groups(faults, requested))
        {
            var row = new List<string> { Markup.Escape(label), want is { } w ? N(w) : "", N(mine.Count) };
            row.AddRange(ServiceKinds.All.Select(k => N(mine.Count(f => f.Fault.Target == k))));
            row.Add(mine.Count == 0 ? "-" : Seconds(TimeSpan.FromTicks((long)mine.Average(f => f.Outage.Ticks))));
            row.Add(mine.Count == 0 ? "-" : Seconds(mine.Max(f => f.Outage)));
            row.Add(mine.Any(f => f.Hits is not null) ? N(mine.Sum(f => f.Hits ?? 0)) : "");
            summary.AddRow(row.ToArray());
        }

        var total = new List<string> { "[bold]total[/]", $"[bold]{N(requested.Total)}[/]", $"[bold]{N(faults.Count)}[/]" };
        total.AddRange(ServiceKinds.All.Select(k => N(faults.Count(f => f.Fault.Target == k))));
        total.AddRange(["", "", ""]);
        summary.AddRow(total.ToArray());
        console.Write(summary);
    }

    /// <summary>One row per nemesis, and under message faults one per kind of message fault.</summary>
    private static IEnumerable<(string Label, List<FaultRecord> Faults, int? Requested)> Groups(IReadOnlyList<FaultRecord> faults, FaultCounts requested)
    {
        foreach (var nemesis in Enum.GetValues<Nemesis>())
        {
            yield return (nemesis.Label(), faults.Where(f => f.Fault.Nemesis == nemesis).ToList(), requested.Of(nemesis));
            if (nemesis == Nemesis.MessageFault)
            {
                foreach (var kind in Enum.GetValues<Harness.MessageFault>())
                {
                    yield return ("  " + kind.Label(), faults.Where(f => f.Fault.Message == kind).ToList(), null);
                }
            }
        }
    }

    /// <summary>For a message fault: the link from the coordinator to the participant; for a database kill: whose cluster.</summary>
    private static string Target(PlannedFault fault) => fault.Nemesis switch
    {
        Nemesis.MessageFault => $"->{fault.Target.ShortName()}",
        Nemesis.DatabaseKill => $"{fault.Target.ShortName()} db",
        _ => fault.Target.ShortName(),
    };

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

    public static void PrintConvergence(IAnsiConsole console, TimeSpan lastHealed, TimeSpan loadEnded, LeftoverResult? leftovers, ConvergenceResult result, TimeSpan bound)
    {
        ArgumentNullException.ThrowIfNull(console);
        ArgumentNullException.ThrowIfNull(result);
        var table = new Table().Border(TableBorder.Rounded).Title("[bold]Convergence[/] (unfinished transactions at the order service, prepared rows at both participants)")
            .AddColumn("what").AddColumn(new TableColumn("value").RightAligned());
        table.AddRow("last fault healed at", Seconds(lastHealed));
        table.AddRow("last answer at", $"{Seconds(loadEnded)} ({Seconds(loadEnded - lastHealed)} after the last fault healed)");
        if (leftovers is not null)
        {
            table.AddRow("left unfinished or prepared at the last heal", N(leftovers.Count));
            table.AddRow("[bold]those finished after the last fault healed[/]", leftovers.After is { } l
                ? $"[bold {(l <= bound ? "green" : "red")}]{l.TotalSeconds:0.00} s[/] (bound {bound.TotalSeconds:0} s)"
                : $"[bold red]not within the timeout[/] ({Markup.Escape(string.Join(", ", leftovers.Remaining))})");
        }

        table.AddRow("polls after the load", N(result.Polls));
        if (result.After is { } after)
        {
            var within = after <= bound;
            table.AddRow(loadEnded > lastHealed ? "[bold]converged after the load ended[/]" : "[bold]converged after the last fault healed[/]",
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
}
