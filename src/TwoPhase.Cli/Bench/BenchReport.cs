using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace TwoPhase.Cli.Bench;

/// <summary>One workload's figures and whether the audit after it was clean.</summary>
public sealed record WorkloadRun(Workload Workload, WindowResult Result, string Audit)
{
    /// <summary>The services' working sets under the load and after it; null when not sampled (the monolith, remote services).</summary>
    public MemoryUsage? Memory { get; init; }

    public long TotalErrors => Result.Errors + Result.CompletionErrors;
}

/// <summary>Per service: working set (MiB) under the load (max and mean of the samples in the measured window) and after it settled.</summary>
public sealed record MemoryUsage(IReadOnlyDictionary<string, ServiceMemory> Services, double SettleSeconds);

/// <summary>One service's working set in MiB; null where it could not be read.</summary>
public sealed record ServiceMemory(double? UnderLoadMaxMiB, double? UnderLoadMeanMiB, double? AfterMiB, int Samples)
{
    /// <summary>From the samples under load and the one after the settle.</summary>
    public static MemoryUsage Of(IReadOnlyList<string> sources, IReadOnlyList<MemorySample> underLoad, MemorySample? after, double settleSeconds)
    {
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentNullException.ThrowIfNull(underLoad);
        return new MemoryUsage(
            sources.ToDictionary(
                s => s,
                s =>
                {
                    var values = underLoad.Select(x => x.MiB.GetValueOrDefault(s)).OfType<double>().ToList();
                    return new ServiceMemory(
                        values.Count == 0 ? null : values.Max(),
                        values.Count == 0 ? null : Math.Round(values.Average(), 1),
                        after?.MiB.GetValueOrDefault(s),
                        values.Count);
                },
                StringComparer.Ordinal),
            settleSeconds);
    }
}

/// <summary>The machine the bench ran on, for the table's caption; load averages because the machine may be shared.</summary>
public sealed record MachineInfo(string Cpu, int Cores, double MemoryGiB, string Os, string Runtime, string? Postgres, string LoadAverageAtStart)
{
    public static MachineInfo Read(string? postgresVersion) => new(
        ReadCpuModel(),
        Environment.ProcessorCount,
        Math.Round(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1024.0 * 1024 * 1024), 1),
        RuntimeInformation.OSDescription,
        RuntimeInformation.FrameworkDescription,
        postgresVersion,
        LoadAverage());

    /// <summary>The 1, 5 and 15 minute load averages, or "n/a".</summary>
    public static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "n/a";
        }
    }

    private static string ReadCpuModel()
    {
        try
        {
            return File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal)) is { } line
                ? line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim()
                : RuntimeInformation.ProcessArchitecture.ToString();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return RuntimeInformation.ProcessArchitecture.ToString();
        }
    }
}

/// <summary>The bench's output: a Markdown table (pasteable into docs/performance.md) and the JSON file.</summary>
public static class BenchReport
{
    /// <summary>The CPU columns, in order: the three services, PostgreSQL, and the bench process itself.</summary>
    public static IReadOnlyList<string> CpuSources { get; } = ["order", "storage", "delivery", "postgres", "bench"];

    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static string Table(IReadOnlyList<WorkloadRun> runs, WindowResult? bound)
    {
        ArgumentNullException.ThrowIfNull(runs);
        var text = new StringBuilder();
        text.AppendLine("| workload | conc. | committed/s | aborted/s | p50 ms | p95 ms | p99 ms | max ms | errors | audit | CPU s / 1k committed: order | storage | delivery | postgres | bench |");
        text.AppendLine("|---|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|");
        foreach (var run in runs)
        {
            AppendRow(text, run.Workload.Name, run.Result, run.TotalErrors, run.Audit);
        }

        if (bound is not null)
        {
            AppendRow(text, "bound (plentiful, in-process, no HTTP)", bound, bound.Errors, "-");
        }

        return text.ToString();
    }

    /// <summary>Real plentiful throughput at the bound's concurrency divided by the bound's; null if either is missing.</summary>
    public static double? Ratio(IReadOnlyList<WorkloadRun> runs, WindowResult? bound) =>
        bound is { CommittedPerSecond: > 0 } && runs.FirstOrDefault(r => r.Workload.Kind == WorkloadKind.Plentiful && r.Workload.Concurrency == bound.Concurrency) is { } real
            ? real.Result.CommittedPerSecond / bound.CommittedPerSecond
            : null;

    /// <summary>Per concurrency where both ran: plentiful committed/s over the monolith's (the price of distribution).</summary>
    public static IReadOnlyList<(int Concurrency, double Plentiful, double Monolith, double Share)> MonolithShares(IReadOnlyList<WorkloadRun> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        return [.. runs.Where(r => r.Workload.Kind == WorkloadKind.Monolith && r.Result.CommittedPerSecond > 0)
            .Select(m => (m, p: runs.FirstOrDefault(r => r.Workload.Kind == WorkloadKind.Plentiful && r.Workload.Concurrency == m.Workload.Concurrency)))
            .Where(x => x.p is not null)
            .Select(x => (x.m.Workload.Concurrency, x.p!.Result.CommittedPerSecond, x.m.Result.CommittedPerSecond, x.p.Result.CommittedPerSecond / x.m.Result.CommittedPerSecond))];
    }

    /// <summary>The Markdown table of <see cref="MonolithShares"/>.</summary>
    public static string MonolithTable(IReadOnlyList<WorkloadRun> runs)
    {
        var text = new StringBuilder();
        text.AppendLine("| conc. | plentiful (2PC, 3 services) committed/s | monolith (1 local transaction, 1 database) committed/s | 2PC as share of monolith |");
        text.AppendLine("|--:|--:|--:|--:|");
        foreach (var (c, p, m, share) in MonolithShares(runs))
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"| {c} | {p:0.0} | {m:0.0} | {share * 100:0.0} % |");
        }

        return text.ToString();
    }

    /// <summary>The services' working sets per workload (MiB).</summary>
    public static string MemoryTable(IReadOnlyList<WorkloadRun> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        var text = new StringBuilder();
        text.AppendLine("| workload | conc. | service | working set under load, max MiB | mean MiB | after settle MiB |");
        text.AppendLine("|---|--:|---|--:|--:|--:|");
        foreach (var run in runs.Where(r => r.Memory is not null))
        {
            foreach (var (service, m) in run.Memory!.Services)
            {
                text.AppendLine(CultureInfo.InvariantCulture,
                    $"| {run.Workload.Name} | {run.Workload.Concurrency} | {service} | {Mib(m.UnderLoadMaxMiB)} | {Mib(m.UnderLoadMeanMiB)} | {Mib(m.AfterMiB)} |");
            }
        }

        return text.ToString();
    }

    private static string Mib(double? value) => value is { } v ? v.ToString("0.0", CultureInfo.InvariantCulture) : "n/a";

    public static async Task WriteJsonAsync(FileInfo file, MachineInfo machine, object settings, IReadOnlyList<WorkloadRun> runs, WindowResult? bound, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(runs);
        var document = new
        {
            machine,
            settings,
            workloads = runs.Select(r => new
            {
                name = r.Workload.Name,
                concurrency = r.Workload.Concurrency,
                committedPerSecond = Round(r.Result.CommittedPerSecond),
                abortedPerSecond = Round(r.Result.AbortedPerSecond),
                p50Ms = Round(r.Result.Percentile(50)),
                p95Ms = Round(r.Result.Percentile(95)),
                p99Ms = Round(r.Result.Percentile(99)),
                maxMs = Round(r.Result.MaxMs),
                errors = r.TotalErrors,
                orderErrors = r.Result.Errors,
                completionErrors = r.Result.CompletionErrors,
                pending = r.Result.Pending,
                completions = r.Result.Completions,
                ordersTotal = r.Result.OrdersTotal,
                windowSeconds = Round(r.Result.Window.TotalSeconds),
                audit = r.Audit,
                errorSamples = r.Result.ErrorSamples,
                cpuSecondsPer1000Committed = Cpu(r.Result),
                memory = r.Memory,
            }).ToList(),
            monolith = MonolithShares(runs).Select(x => new
            {
                concurrency = x.Concurrency,
                plentifulCommittedPerSecond = Round(x.Plentiful),
                monolithCommittedPerSecond = Round(x.Monolith),
                share = Math.Round(x.Share, 3),
            }).ToList(),
            bound = bound is null ? null : new
            {
                committedPerSecond = Round(bound.CommittedPerSecond),
                concurrency = bound.Concurrency,
                p50Ms = Round(bound.Percentile(50)),
                p95Ms = Round(bound.Percentile(95)),
                p99Ms = Round(bound.Percentile(99)),
                maxMs = Round(bound.MaxMs),
                errors = bound.Errors + bound.CompletionErrors,
                realToBoundRatio = Ratio(runs, bound) is { } ratio ? Math.Round(ratio, 3) : (double?)null,
                errorSamples = bound.ErrorSamples,
                cpuSecondsPer1000Committed = Cpu(bound),
            },
        };
        await using var stream = file.Create();
        await JsonSerializer.SerializeAsync(stream, document, JsonOptions, cancellationToken);
    }

    private static Dictionary<string, double?> Cpu(WindowResult result) =>
        CpuSources.Where(result.CpuBefore.ContainsKey).ToDictionary(s => s, s => result.CpuPerThousand(s) is { } v ? Math.Round(v, 3) : (double?)null, StringComparer.Ordinal);

    private static void AppendRow(StringBuilder text, string name, WindowResult r, long errors, string audit)
    {
        var cpu = CpuSources.Select(s => r.CpuPerThousand(s) is { } v ? v.ToString("0.00", CultureInfo.InvariantCulture) : r.CpuBefore.ContainsKey(s) ? "n/a" : "-");
        text.AppendLine(CultureInfo.InvariantCulture,
            $"| {name} | {r.Concurrency} | {r.CommittedPerSecond:0.0} | {r.AbortedPerSecond:0.0} | {r.Percentile(50):0.0} | {r.Percentile(95):0.0} | {r.Percentile(99):0.0} | {r.MaxMs:0.0} | {errors} | {audit} | {string.Join(" | ", cpu)} |");
    }

    private static double Round(double value) => Math.Round(value, 2);
}
