using System.CommandLine;
using System.Security.Cryptography;
using Npgsql;
using Spectre.Console;
using TwoPhase.Harness.Load;
using TwoPhase.Cli.Rendering;
using TwoPhase.Harness.Audit;
using TwoPhase.Harness;
using TwoPhase.Harness.Client;

namespace TwoPhase.Cli.Commands;

/// <summary>Exit codes shared by all commands.</summary>
internal static class ExitCodes
{
    /// <summary>The run was clean: no errors, audit passed.</summary>
    public const int Ok = 0;

    /// <summary>The system misbehaved: errors during the burst or an audit violation.</summary>
    public const int Failed = 1;

    /// <summary>The run could not be set up: build failed, a service did not start, bad arguments.</summary>
    public const int SetupFailed = 2;

    /// <summary>Interrupted with Ctrl+C (128 + SIGINT, as shells report it).</summary>
    public const int Interrupted = 130;
}

/// <summary>Options and steps that more than one command uses, defined once.</summary>
internal static class CommandSupport
{
    public static Option<int> OrdersOption() => new("--orders")
    {
        Description = "How many orders to place.",
        DefaultValueFactory = _ => 1000,
        Validators = { r => Between(r, 1, 1_000_000) },
    };

    public static Option<int> ConcurrencyOption() => new("--concurrency")
    {
        Description = "How many orders are in flight at once.",
        DefaultValueFactory = _ => 32,
        Validators = { r => Between(r, 1, 4096) },
    };

    public static Option<int> RandomSeedOption() => new("--random-seed")
    {
        Description = "Seed of the order mix; the same seed sends the same orders.",
        DefaultValueFactory = _ => 42,
    };

    public static Option<int> QuietTimeoutOption() => new("--quiet-timeout")
    {
        Description = "Seconds the audit waits for the system to settle (nothing prepared, nothing pending) before checking.",
        DefaultValueFactory = _ => 30,
        Validators = { r => Between(r, 1, 3600) },
    };

    public static Option<string?> SecretOption() => new("--secret")
    {
        Description = "Shared secret sent as 'Authorization: Bearer' on participant and admin reads (default: $TWOPHASE_SECRET, " +
            "else the one services started with none configured generated for this user, in ~/.config/twophase/secret).",
        // No DefaultValueFactory: help prints a default's value, and this one is a secret (see Secret below).
    };

    /// <summary>The <c>--secret</c> given, else <c>$TWOPHASE_SECRET</c>, else the cookie file's.</summary>
    public static string? Secret(ParseResult parse, Option<string?> option) =>
        parse.GetValue(option) ?? (Environment.GetEnvironmentVariable("TWOPHASE_SECRET") is { Length: > 0 } secret ? secret : CookieSecret());

    /// <summary>
    /// The secret services started by hand with none configured share (docs/security.md); read, never created. A file
    /// the services would refuse is no secret of theirs either: none then, and the services' 401 says what is missing.
    /// </summary>
    private static string? CookieSecret()
    {
        try
        {
            return TwoPhase.AspNetCore.SecretCookie.ReadExisting(TwoPhase.AspNetCore.SecretCookie.DefaultPath());
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public static Option<Uri> UrlOption(string name, string defaultUrl, string what) => new(name)
    {
        Description = $"Base URL of the {what}.",
        DefaultValueFactory = _ => new Uri(defaultUrl),
        CustomParser = r =>
        {
            var text = r.Tokens.Count == 1 ? r.Tokens[0].Value : "";
            if (Uri.TryCreate(text, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps))
            {
                return uri;
            }

            r.AddError($"{name}: '{text}' is not an absolute http(s) URL.");
            return null;
        },
    };

    /// <summary>Where a run that starts the services works: the repository, a run id and a fresh run folder.</summary>
    public sealed record RunPlace(string RepoRoot, string RunId, string RunFolder);

    /// <summary>
    /// Finds the repository (or says how to point at it) and makes the run folder
    /// (<paramref name="runDir"/>, else a fresh <c>twophase-{kind}-{runId}</c> under the temp folder).
    /// Null when the repository cannot be found; the reason is printed.
    /// </summary>
    public static RunPlace? PrepareRun(IAnsiConsole console, string kind, string? repo, string? runDir, bool sqliteFilesThere)
    {
        var repoRoot = repo is not null ? Path.GetFullPath(repo) : RepoLocator.FindRepoRoot();
        if (repoRoot is null || !Directory.Exists(Path.Combine(repoRoot, "src")))
        {
            console.MarkupLine($"[red]Cannot find the repository (no {RepoLocator.SolutionFile} above {Markup.Escape(Directory.GetCurrentDirectory())}); pass --repo.[/]");
            return null;
        }

        var runId = NewRunId();
        var runFolder = Path.GetFullPath(runDir ?? Path.Combine(Path.GetTempPath(), $"twophase-{kind}-{runId}"));
        Directory.CreateDirectory(runFolder);
        console.MarkupLine($"Run folder (service logs{(sqliteFilesThere ? ", SQLite files" : "")}): [bold]{Markup.Escape(runFolder)}[/]");
        return new RunPlace(repoRoot, runId, runFolder);
    }

    /// <summary>Builds the three services in <paramref name="configuration"/>, logging to the run folder.</summary>
    public static Task BuildServicesAsync(IAnsiConsole console, RunPlace place, string configuration, CancellationToken ct)
    {
        var buildLog = Path.Combine(place.RunFolder, "build.log");
        return console.Status().StartAsync($"Building the services ({configuration}); log: {Markup.Escape(buildLog)}",
            _ => ServiceBuilder.BuildAsync(place.RepoRoot, configuration, buildLog, DotnetHost.Path, ct));
    }

    /// <summary>
    /// The requested ports if free (else null, said out loud); otherwise the first free trio of <paramref name="tries"/> from
    /// <paramref name="firstBase"/> (order on the base, delivery and storage on the next two); otherwise three free ports.
    /// Chosen after the build, right before the start: a build takes long enough for something else to take a port.
    /// </summary>
    public static ServicePorts? ChoosePorts(IAnsiConsole console, int? basePort, int firstBase, int tries)
    {
        if (basePort is { } b)
        {
            var busy = ServicePorts.FromBase(b).All().Where(p => !PortAllocator.IsFree(p)).ToList();
            if (busy.Count == 0)
            {
                return ServicePorts.FromBase(b);
            }

            console.MarkupLine($"[red]Port(s) {string.Join(", ", busy)} on 127.0.0.1 are in use; choose another --base-port or stop what listens there.[/]");
            return null;
        }

        for (var i = 0; i < tries; i++)
        {
            if (ServicePorts.FromBase(firstBase + (i * 10)) is var candidate && candidate.All().All(PortAllocator.IsFree))
            {
                return candidate;
            }
        }

        var picked = PortAllocator.PickFree();
        console.MarkupLine($"[yellow]Ports from {firstBase} are in use; using order {picked.Order}, delivery {picked.Delivery}, storage {picked.Storage} instead.[/]");
        return picked;
    }

    /// <summary>
    /// Kills what <paramref name="kill"/> names if the CLI's own process ends under it: Ctrl+C cancels the command's token
    /// and its finally stops the services, this covers the rest (SIGTERM, an unhandled exception tearing the process down).
    /// </summary>
    public static IDisposable OnProcessExit(Action kill)
    {
        void Handler(object? sender, EventArgs e) => kill();
        AppDomain.CurrentDomain.ProcessExit += Handler;
        return new Unsubscribe(() => AppDomain.CurrentDomain.ProcessExit -= Handler);
    }

    /// <summary>Runs a command's body; Ctrl+C is <see cref="ExitCodes.Interrupted"/>, a set-up that failed <see cref="ExitCodes.SetupFailed"/>, said out loud.</summary>
    public static async Task<int> GuardAsync(IAnsiConsole console, Func<Task<int>> run, CancellationToken ct)
    {
        try
        {
            return await run();
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            console.MarkupLine("[yellow]Interrupted.[/]");
            return ExitCodes.Interrupted;
        }
        catch (Exception ex) when (ex is ServiceStartException or ApiException or HttpRequestException or PostgresClusterException or NpgsqlException or IOException)
        {
            console.MarkupLine($"[red]{Markup.Escape(ex.Message)}[/]");
            return ExitCodes.SetupFailed;
        }
    }

    /// <summary>Stops the system's services and drops its PostgreSQL databases unless <paramref name="keep"/>, saying so.</summary>
    public static async Task StopAsync(IAnsiConsole console, ReferenceSystem? system, bool keep)
    {
        if (system is null)
        {
            return;
        }

        await system.DisposeAsync();
        console.MarkupLine($"Services stopped. Logs: {Markup.Escape(system.Folder)}");
        if (system.Databases is not { } databases)
        {
            return;
        }

        if (keep)
        {
            console.MarkupLine($"Kept PostgreSQL databases: {Markup.Escape(string.Join(", ", databases.Names.Values))}");
            return;
        }

        // Not the run's token: cleanup must still happen after Ctrl+C; bounded by the command timeout.
        var problems = await databases.DropAsync(CancellationToken.None);
        console.MarkupLine(problems.Count == 0
            ? "Dropped the PostgreSQL databases."
            : $"[yellow]Could not drop: {Markup.Escape(string.Join("; ", problems))}[/]");
    }

    /// <summary>A run id usable in file names and PostgreSQL identifiers: UTC time plus random hex.</summary>
    public static string NewRunId() =>
        $"{DateTime.UtcNow:yyyyMMdd_HHmmss}_{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(2))}";

    /// <summary>Fires the burst with a progress bar showing live counts; returns every answer.</summary>
    public static async Task<LoadResult> RunLoadAsync(
        IAnsiConsole console, HttpClient http, LoadOptions options, CancellationToken ct, Func<ClientAnswer, CancellationToken, Task>? afterAnswer = null)
    {
        console.MarkupLine($"Placing [bold]{options.Orders:N0}[/] orders at concurrency [bold]{options.Concurrency}[/] against {Markup.Escape(options.OrderUrl.ToString())}");
        var generator = new LoadGenerator(http, options);
        int committed = 0, aborted = 0, other = 0;
        return await console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .StartAsync(async ctx =>
            {
                var task = ctx.AddTask("orders", maxValue: options.Orders);
                var gate = new Lock();
                return await generator.RunAsync(answer =>
                {
                    _ = answer.Outcome switch
                    {
                        AnswerOutcome.Committed => Interlocked.Increment(ref committed),
                        AnswerOutcome.Aborted => Interlocked.Increment(ref aborted),
                        _ => Interlocked.Increment(ref other),
                    };
                    lock (gate)
                    {
                        task.Description = $"orders [green]{Volatile.Read(ref committed)}[/] committed, [yellow]{Volatile.Read(ref aborted)}[/] aborted, {Volatile.Read(ref other)} other";
                        task.Increment(1);
                    }
                }, ct, afterAnswer);
            });
    }

    /// <summary>Waits for the system to settle, reads it, checks the invariants and prints the result.</summary>
    public static async Task<AuditReport> RunAuditAsync(
        IAnsiConsole console, ServiceSnapshotReader reader, IReadOnlyList<ClientAnswer>? answers, TimeSpan quietTimeout, CancellationToken ct)
    {
        var snapshot = await console.Status().StartAsync("Waiting for the system to settle...", async ctx =>
            await reader.WaitForQuietAsync(quietTimeout, s =>
                ctx.Status($"Waiting for the system to settle ({s.UnsettledCount} prepared rows / pending orders)..."), ct));
        if (!snapshot.IsQuiet)
        {
            console.MarkupLine($"[yellow]The system did not settle within {quietTimeout.TotalSeconds:0} s; auditing what is there.[/]");
        }

        var report = new Auditor().Check(snapshot, answers);
        ConsoleReport.PrintAudit(console, report);
        return report;
    }

    /// <summary>An option validator: a given value must lie in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public static void Between(System.CommandLine.Parsing.OptionResult result, int min, int max)
    {
        var value = result.GetValueOrDefault<int?>();
        if (value is { } v && (v < min || v > max))
        {
            result.AddError($"{result.Option.Name} must be between {min:N0} and {max:N0}.");
        }
    }

    private sealed class Unsubscribe(Action undo) : IDisposable
    {
        public void Dispose() => undo();
    }
}
