using Spectre.Console;
using TwoPhase.Harness.Load;
using TwoPhase.Harness.Audit;

namespace TwoPhase.Cli.Rendering;

/// <summary>Prints summaries and audit results. Everything from a service is escaped: it is data, not markup.</summary>
public static class ConsoleReport
{
    public static void PrintSummary(IAnsiConsole console, LoadSummary s)
    {
        ArgumentNullException.ThrowIfNull(console);
        ArgumentNullException.ThrowIfNull(s);
        var table = new Table().Border(TableBorder.Rounded).Title("[bold]Burst summary[/]")
            .AddColumn("what").AddColumn(new TableColumn("value").RightAligned());
        table.AddRow("orders sent", $"{s.Sent:N0}");
        table.AddRow("[green]committed[/]", $"{s.Committed:N0}");
        table.AddRow("[yellow]aborted[/]", $"{s.Aborted:N0}");
        foreach (var (reason, count) in s.AbortsByReason)
        {
            table.AddRow($"  [grey]{Markup.Escape(reason)}[/]", $"{count:N0}");
        }

        if (s.Pending > 0)
        {
            table.AddRow("pending (decision still being driven)", $"{s.Pending:N0}");
        }

        table.AddRow(s.Errors > 0 ? "[red]errors[/]" : "errors", $"{s.Errors:N0}");
        AddIfAny(table, "  transport (dropped, timed out)", s.TransportErrors);
        AddIfAny(table, "  server errors (5xx)", s.ServerErrors);
        AddIfAny(table, "  rejected (4xx)", s.Rejected);
        AddIfAny(table, "  unreadable answers", s.BadAnswers);
        foreach (var (sample, count) in s.ErrorSamples)
        {
            table.AddRow($"    [grey]{Markup.Escape(sample)}[/]", $"{count:N0}");
        }

        table.AddRow("duration", $"{s.Elapsed.TotalSeconds:0.00} s");
        table.AddRow("orders/s", $"{s.OrdersPerSecond:N1}");
        table.AddRow("latency p50 / p95 / p99", $"{s.P50Ms:0.0} / {s.P95Ms:0.0} / {s.P99Ms:0.0} ms");
        table.AddRow("latency max", $"{s.MaxMs:0.0} ms");
        console.Write(table);
    }

    public static void PrintAudit(IAnsiConsole console, AuditReport report)
    {
        ArgumentNullException.ThrowIfNull(console);
        ArgumentNullException.ThrowIfNull(report);
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"[bold]Audit[/] ({report.OrdersChecked:N0} orders{(report.AnswersChecked > 0 ? $", {report.AnswersChecked:N0} client answers" : "")}{(report.WasQuiet ? "" : ", [yellow]system was not quiet[/]")})")
            .AddColumn("invariant").AddColumn("result").AddColumn("violations");
        foreach (var r in report.Results)
        {
            table.AddRow(
                new Markup($"[bold]{Markup.Escape(r.Name)}[/]\n[grey]{Markup.Escape(r.Description)}[/]"),
                new Markup(r.Passed ? "[green]PASS[/]" : "[red]FAIL[/]"),
                new Markup(r.Passed ? "0" : $"{r.ViolationCount:N0}"));
        }

        console.Write(table);
        foreach (var r in report.Results.Where(r => !r.Passed))
        {
            console.MarkupLine($"[red]{Markup.Escape(r.Name)}[/]: {r.ViolationCount:N0} violation(s){(r.ViolationCount > r.Violations.Count ? $", first {r.Violations.Count}" : "")}");
            foreach (var v in r.Violations)
            {
                console.MarkupLine($"  - {Markup.Escape(v)}");
            }
        }

        console.MarkupLine(report.Passed ? "[green bold]Audit clean.[/]" : "[red bold]Audit FAILED.[/]");
    }

    private static void AddIfAny(Table table, string label, int count)
    {
        if (count > 0)
        {
            table.AddRow(label, $"{count:N0}");
        }
    }
}
