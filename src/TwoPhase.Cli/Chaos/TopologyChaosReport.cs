using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using TwoPhase.Cli.Rendering;
using TwoPhase.Harness.Audit;
using TwoPhase.Harness.Faults;
using TwoPhase.Harness.Topology;

namespace TwoPhase.Cli.Chaos;

/// <summary>What <c>chaos --topology</c> prints and writes with --json. Names from the system are escaped: data, not markup.</summary>
public static class TopologyChaosReport
{
    public static void Print(IAnsiConsole console, TopologyChaosResult r)
    {
        ArgumentNullException.ThrowIfNull(console);
        ArgumentNullException.ThrowIfNull(r);
        var s = r.Settings;
        var settings = new Table().Border(TableBorder.Rounded).Title("[bold]Topology chaos[/]").AddColumn("setting").AddColumn("value");
        settings.AddRow("topology", Markup.Escape($"{s.Coordinators} coordinator replicas (one group, one decision log), {s.StorageReplicas} storage, {s.DeliveryReplicas} delivery; " +
                                                   "a PostgreSQL cluster and an HAProxy per service; every node in its own network namespace on 10.211.0.0/24"));
        settings.AddRow("nodes", Markup.Escape(string.Join(" ", r.Nodes.Select(n => n.Name))));
        settings.AddRow("orders", Markup.Escape($"{s.Orders:N0} through lb-order at concurrency {s.Concurrency}, seed {s.Seed}"));
        settings.AddRow("faults", Markup.Escape($"{r.Schedule.Count}, each {s.MinFault.TotalSeconds:0.#}-{s.MaxFault.TotalSeconds:0.#} s, at most 2 at once (peak {r.PeakConcurrent})"));
        settings.AddRow("lease", Markup.Escape($"{s.RecoveryLease.TotalSeconds:0.#} s; convergence bound lease + 10 s = {s.ConvergeBound.TotalSeconds:0.#} s"));
        settings.AddRow("delay (tc netem)", r.DelaySupported ? "supported by this kernel, not a scheduled nemesis" : "not run: this kernel has no netem (CONFIG_NET_SCH_NETEM)");
        settings.AddRow("folder", Markup.Escape(r.Folder));
        console.Write(settings);

        var roles = Enum.GetValues<NodeRole>();
        var perKind = new Table().Border(TableBorder.Rounded).Title("[bold]Faults per nemesis[/] (columns: faults touching a node of that kind)")
            .AddColumn("nemesis").AddColumn(new TableColumn("planned").RightAligned()).AddColumn(new TableColumn("run").RightAligned())
            .AddColumn(new TableColumn("failed").RightAligned());
        foreach (var role in roles)
        {
            perKind.AddColumn(new TableColumn(role.ToString().ToLowerInvariant()).RightAligned());
        }

        perKind.AddColumn(new TableColumn("mean outage").RightAligned()).AddColumn(new TableColumn("longest").RightAligned());
        foreach (var kind in Enum.GetValues<NemesisKind>())
        {
            var mine = r.Faults.Where(f => f.Event.Kind == kind).ToList();
            var row = new List<string> { kind.ToString(), N(r.Schedule.Count(e => e.Kind == kind)), N(mine.Count), N(mine.Count(f => f.Error is not null)) };
            row.AddRange(roles.Select(role => N(mine.Count(f => Touches(r, f.Event, role)))));
            row.Add(mine.Count == 0 ? "-" : Sec(TimeSpan.FromTicks((long)mine.Average(f => f.Outage.Ticks))));
            row.Add(mine.Count == 0 ? "-" : Sec(mine.Max(f => f.Outage)));
            perKind.AddRow(row.ToArray());
        }

        perKind.AddRow(["delay", "-", "not run", "", .. roles.Select(_ => ""), "", ""]);
        var total = new List<string> { "[bold]total[/]", N(r.Schedule.Count), N(r.Faults.Count), N(r.Faults.Count(f => f.Error is not null)) };
        total.AddRange(roles.Select(role => N(r.Faults.Count(f => Touches(r, f.Event, role)))));
        total.AddRange(["", ""]);
        perKind.AddRow(total.ToArray());
        console.Write(perKind);

        foreach (var failed in r.Faults.Where(f => f.Error is not null).Take(10))
        {
            console.MarkupLine($"[red]fault #{failed.Number} {Markup.Escape(failed.Event.Description)}: {Markup.Escape(failed.Error!)}[/]");
        }

        var answers = new Table().Border(TableBorder.Rounded).Title("[bold]Client answers[/] (final answer per order; unknown: no definite answer after the retries)")
            .AddColumn("answer").AddColumn(new TableColumn("orders").RightAligned());
        answers.AddRow("sent", N(r.Load.Final.Count));
        foreach (var outcome in Enum.GetValues<AnswerOutcome>())
        {
            answers.AddRow(outcome.ToString().ToLowerInvariant(), N(r.Load.Final.Count(a => a.Outcome == outcome)));
        }

        answers.AddRow("retried (same Idempotency-Key)", N(r.Load.Retried));
        answers.AddRow("answers checked (every try)", N(r.Load.All.Count));
        answers.AddRow("load time", Sec(r.Load.Elapsed));
        answers.AddRow("committed orders/s", r.Load.Elapsed > TimeSpan.Zero ? (r.Load.Final.Count(a => a.Outcome == AnswerOutcome.Committed) / r.Load.Elapsed.TotalSeconds).ToString("0.0", CultureInfo.InvariantCulture) : "-");
        answers.AddRow("deliveries completed / given up", $"{N(r.Dispatched.Completed)} / {N(r.Dispatched.GaveUp)}");
        console.Write(answers);

        var convergence = new Table().Border(TableBorder.Rounded).Title("[bold]Convergence[/] (times on the run's clock)").AddColumn("what").AddColumn("value");
        convergence.AddRow("last fault healed at", Sec(r.LastHealed));
        convergence.AddRow("load ended at", Sec(r.LoadEnded));
        convergence.AddRow("left by the faults", r.Leftovers is { } l
            ? $"{N(l.Count)} unfinished or prepared at the last heal, finished {(l.After is { } a ? Sec(a) : "[red]not within the timeout[/]")} after it"
            : "-");
        convergence.AddRow("converged", r.Converged.After is { } c
            ? $"{Sec(c)} after the later of the last heal and the load's end ({N(r.Converged.Polls)} polls)"
            : "[red]not within the timeout[/]");
        convergence.AddRow("bound", $"{Sec(r.Settings.ConvergeBound)} (lease {Sec(r.Settings.RecoveryLease)} + 10 s)");
        console.Write(convergence);

        ConsoleReport.PrintAudit(console, r.Audit);
        console.MarkupLine(r.Passed ? "[green bold]PASS[/]: every invariant holds." : "[red bold]FAIL[/]: see the invariants above.");
    }

    /// <summary>The report as JSON, for --json.</summary>
    public static string Json(TopologyChaosResult r)
    {
        ArgumentNullException.ThrowIfNull(r);
        var roles = Enum.GetValues<NodeRole>();
        var doc = new
        {
            passed = r.Passed,
            settings = new
            {
                orders = r.Settings.Orders, faults = r.Settings.Faults, coordinators = r.Settings.Coordinators, storage = r.Settings.StorageReplicas,
                delivery = r.Settings.DeliveryReplicas, seed = r.Settings.Seed, concurrency = r.Settings.Concurrency,
                leaseSeconds = r.Settings.RecoveryLease.TotalSeconds, boundSeconds = r.Settings.ConvergeBound.TotalSeconds,
            },
            answers = Enum.GetValues<AnswerOutcome>().ToDictionary(o => o.ToString().ToLowerInvariant(), o => r.Load.Final.Count(a => a.Outcome == o)),
            retried = r.Load.Retried,
            loadSeconds = r.Load.Elapsed.TotalSeconds,
            faultsPerNemesis = Enum.GetValues<NemesisKind>().ToDictionary(k => k.ToString(), k => r.Faults.Count(f => f.Event.Kind == k)),
            faultsPerNodeKind = roles.ToDictionary(role => role.ToString(), role => r.Faults.Count(f => Touches(r, f.Event, role))),
            delay = r.DelaySupported ? "supported, not scheduled" : "not run: no netem in this kernel",
            peakConcurrent = r.PeakConcurrent,
            lastHealedSeconds = r.LastHealed.TotalSeconds,
            leftovers = r.Leftovers is { } l ? new { count = l.Count, finishedAfterSeconds = l.After?.TotalSeconds } : null,
            convergedAfterSeconds = r.Converged.After?.TotalSeconds,
            invariants = r.Audit.Results.Select(i => new { name = i.Name, passed = i.Passed, violations = i.ViolationCount, examples = i.Violations.Take(10) }),
            faults = r.Faults.Select(f => new
            {
                number = f.Number, kind = f.Event.Kind.ToString(), nodes = f.Event.Nodes, description = f.Event.Description, startedAtSeconds = f.StartedAt.TotalSeconds,
                healedAtSeconds = f.HealedAt.TotalSeconds, plannedSeconds = f.Event.Duration.TotalSeconds, concurrent = f.Concurrent, error = f.Error,
            }),
        };
        return JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>Whether the fault touched a node of <paramref name="role"/> (a split or a bridge touches every node).</summary>
    public static bool Touches(TopologyChaosResult r, NemesisEvent e, NodeRole role)
    {
        ArgumentNullException.ThrowIfNull(r);
        ArgumentNullException.ThrowIfNull(e);
        return e.Nodes.Any(name => r.Nodes.FirstOrDefault(n => n.Name == name)?.Role == role);
    }

    private static string N(int n) => n.ToString("N0", CultureInfo.InvariantCulture);

    private static string Sec(TimeSpan t) => $"{t.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture)} s";
}
