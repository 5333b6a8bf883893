using System.Diagnostics;
using TwoPhase.Harness;
using TwoPhase.Harness.Audit;
using TwoPhase.Harness.Client;
using TwoPhase.Harness.Faults;
using TwoPhase.Harness.Load;
using TwoPhase.Harness.Topology;

namespace TwoPhase.Cli.Chaos;

/// <summary>What a <c>chaos --topology</c> run does.</summary>
public sealed record TopologyChaosSettings
{
    public int Orders { get; init; } = 20_000;

    public int Faults { get; init; } = 100;

    public int Coordinators { get; init; } = 3;

    public int StorageReplicas { get; init; } = 2;

    public int DeliveryReplicas { get; init; } = 2;

    /// <summary>Seed of the order mix and of the nemesis schedule.</summary>
    public int Seed { get; init; } = 42;

    /// <summary>Orders in flight at once (closed loop).</summary>
    public int Concurrency { get; init; } = 32;

    /// <summary>Each fault lasts a random time between these.</summary>
    public TimeSpan MinFault { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxFault { get; init; } = TimeSpan.FromSeconds(4);

    /// <summary><c>TwoPhase:Coordinator:RecoveryLease</c> of every coordinator replica; the convergence bound is this plus 10 s.</summary>
    public TimeSpan RecoveryLease { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The coordinators' prepare deadline: shorter than the longest pause, so a paused participant aborts what it held up.</summary>
    public int PrepareDeadlineMs { get; init; } = 2000;

    /// <summary>Time bound of the fault phase; faults not started by then are skipped and the run fails.</summary>
    public TimeSpan MaxChaos { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>How long to poll for convergence after the last heal before giving up.</summary>
    public TimeSpan ConvergeTimeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>Logs, configs and data; a temporary folder when null.</summary>
    public string? Folder { get; init; }

    public string Configuration { get; init; } = RepoLocator.BuildConfiguration;

    /// <summary>The bound within which everything must converge after the last heal: lease expiry + 10 s.</summary>
    public TimeSpan ConvergeBound => RecoveryLease + TimeSpan.FromSeconds(10);
}

/// <summary>Everything a topology chaos run saw.</summary>
public sealed record TopologyChaosResult(
    TopologyChaosSettings Settings,
    IReadOnlyList<NemesisNode> Nodes,
    IReadOnlyList<NemesisEvent> Schedule,
    IReadOnlyList<NemesisRecord> Faults,
    int PeakConcurrent,
    bool ChaosTimedOut,
    ChaosLoadResult Load,
    DispatchStats Dispatched,
    TimeSpan LoadEnded,
    TimeSpan LastHealed,
    LeftoverResult? Leftovers,
    ConvergenceResult Converged,
    AuditReport Audit,
    bool DelaySupported,
    string Folder)
{
    public bool Passed => Audit.Passed;
}

/// <summary>
/// The run behind <c>chaos --topology</c> and the topology test: starts a <see cref="TopologySystem"/> in network
/// namespaces (a PostgreSQL cluster per service, replicas, an HAProxy per service), seeds through the balancers, drives
/// orders through lb-order with the chaos load (lost answers retried with the same key, bounded), runs a seeded nemesis
/// schedule over the load, heals everything, waits for convergence (<see cref="ConvergenceProbe"/>) and audits every
/// client answer with the one <see cref="Auditor"/>.
/// </summary>
public static class TopologyChaosRun
{
    /// <summary>Why this machine cannot run it (not root, no ip/nft/tc/haproxy), or null.</summary>
    public static string? Preflight()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "chaos --topology needs Linux network namespaces.";
        }

        if (!Environment.IsPrivilegedProcess)
        {
            return "chaos --topology needs root: it creates network namespaces, veths, a bridge and nftables rules (CI runs as root).";
        }

        foreach (var tool in new[] { "ip", "nft", "tc", "haproxy" })
        {
            var found = (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").Split(':')
                .Append("/usr/sbin").Append("/sbin")
                .Any(dir => File.Exists(Path.Combine(dir, tool)));
            if (!found)
            {
                return $"chaos --topology needs '{tool}' (scripts/test.sh installs iproute2, nftables and haproxy).";
            }
        }

        return null;
    }

    /// <summary>The problems of settings that cannot run, or none.</summary>
    public static IEnumerable<string> Problems(TopologyChaosSettings s)
    {
        ArgumentNullException.ThrowIfNull(s);
        if (s.Faults > 0 && s.Orders < NemesisSchedule.MinOrders(s.Faults))
        {
            yield return $"--orders must be at least {NemesisSchedule.MinOrders(s.Faults):N0} for {s.Faults} faults: each fault falls at its own order.";
        }

        if (s.MinFault <= TimeSpan.Zero || s.MaxFault < s.MinFault)
        {
            yield return "fault durations: the shortest must be positive and not longer than the longest.";
        }
    }

    /// <param name="settings">What to run.</param>
    /// <param name="log">Progress lines (start, seeding, faults, convergence).</param>
    /// <param name="onAnswer">Each order's final answer, from any thread.</param>
    /// <param name="cancellationToken">Stops the run; the topology is removed all the same.</param>
    public static async Task<TopologyChaosResult> RunAsync(
        TopologyChaosSettings settings, Action<string>? log, Action<ClientAnswer>? onAnswer, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (Preflight() is { } problem)
        {
            throw new InvalidOperationException(problem);
        }

        if (Problems(settings).FirstOrDefault() is { } bad)
        {
            throw new ArgumentException(bad, nameof(settings));
        }

        log ??= _ => { };
        var options = new TopologyOptions
        {
            Coordinators = settings.Coordinators,
            StorageReplicas = settings.StorageReplicas,
            DeliveryReplicas = settings.DeliveryReplicas,
            Namespaces = true,
            Configuration = settings.Configuration,
            Folder = settings.Folder,
            Recovery = RecoverySettings.Chaos,
            PrepareDeadlineMs = settings.PrepareDeadlineMs,
            ExtraEnvironment = new Dictionary<string, string>
            {
                ["TwoPhase__Coordinator__RecoveryLeaseMs"] = ((int)settings.RecoveryLease.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture),
            },
        };
        log($"Starting the topology: {settings.Coordinators} coordinators, {settings.StorageReplicas} storage, {settings.DeliveryReplicas} delivery, a PostgreSQL cluster and an HAProxy per service...");
        await using var system = await TopologySystem.StartAsync(options, log, cancellationToken);
        var target = new TopologyNemesisTarget(system);
        var schedule = NemesisSchedule.Create(target.Nodes, new NemesisScheduleOptions
        {
            Faults = settings.Faults,
            Orders = settings.Orders,
            MinDuration = settings.MinFault,
            MaxDuration = settings.MaxFault,
        }, settings.Seed + 1);

        using var http = HttpClients.Create(settings.Concurrency + 32);
        var endpoints = new ServiceEndpoints(system.EntryUrl(ServiceKind.Order), system.EntryUrl(ServiceKind.Storage), system.EntryUrl(ServiceKind.Delivery));
        var seedPlan = SeedPlan.ForOrders(settings.Orders);
        log($"Seeding {seedPlan.Couriers:N0} couriers and the products through the balancers...");
        await TopologySeeding.SeedAsync(http, endpoints.Storage, endpoints.Delivery, system.Secret, seedPlan, cancellationToken);

        var retry = new ClientRetryPolicy();
        var generator = new LoadGenerator(http, new LoadOptions
        {
            OrderUrl = endpoints.Order,
            Orders = settings.Orders,
            Concurrency = settings.Concurrency,
            RandomSeed = settings.Seed,
            RunTag = "topo-" + Guid.NewGuid().ToString("N")[..8],
            RequestTimeout = retry.RequestTimeout,
        });
        var gate = new LoadGate(schedule.Count > 0 ? schedule[0].AfterOrder : int.MaxValue);
        var clock = Stopwatch.StartNew();
        var runner = new NemesisRunner(target, schedule, gate, clock);
        await using var dispatcher = new CourierDispatcher(http, endpoints.Delivery, system.Secret);
        var probe = new ConvergenceProbe(http, endpoints, system.Secret);

        log($"Placing {settings.Orders:N0} orders at concurrency {settings.Concurrency} through lb-order with {schedule.Count} faults...");
        var lastAnswer = TimeSpan.Zero;
        var answerLock = new Lock();
        using var stopChaos = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var chaos = runner.RunAsync(settings.MaxChaos, stopChaos.Token);
        var loadTask = new ChaosLoad(generator, settings.Concurrency, retry, gate).RunAsync(answer =>
        {
            if (answer is { Outcome: AnswerOutcome.Committed, TransactionId: { } tx })
            {
                dispatcher.Complete(tx);
            }

            lock (answerLock)
            {
                lastAnswer = clock.Elapsed;
            }

            onAnswer?.Invoke(answer);
        }, cancellationToken);

        if (await Task.WhenAny(chaos, loadTask) == loadTask && loadTask.IsFaulted)
        {
            await stopChaos.CancelAsync();
            await Task.WhenAny(chaos);
            await loadTask;
        }

        await chaos;
        log($"All {runner.Records.Count} faults healed; healing everything and checking every node is ready...");
        // Whatever the schedule did, leave nothing behind: no rule, no stopped process, every node ready.
        if (system.Links is { } links)
        {
            await links.HealAsync(CancellationToken.None);
        }

        foreach (var node in system.Nodes)
        {
            system.Resume(node);
        }

        await system.WaitAllReadyAsync(options.ReadyTimeout, cancellationToken);
        var lastHealed = runner.LastHealedAt ?? clock.Elapsed;
        var leftovers = runner.Records.Count == 0 ? null : await probe.WaitForLeftoversAsync(clock, lastHealed, settings.ConvergeTimeout, cancellationToken);
        var load = await loadTask;
        var dispatched = await dispatcher.StopAsync();
        TimeSpan loadEnded;
        lock (answerLock)
        {
            loadEnded = lastAnswer;
        }

        var settleFrom = lastHealed > loadEnded ? lastHealed : loadEnded;
        log("Waiting for convergence...");
        var converged = await probe.WaitAsync(clock, settleFrom, settings.ConvergeTimeout, null, cancellationToken);
        var reader = new ServiceSnapshotReader(http, endpoints, system.Secret);
        var snapshot = await reader.WaitForQuietAsync(TimeSpan.FromSeconds(30), null, cancellationToken);
        var records = runner.Records;
        var audit = new Auditor().Check(snapshot, load.All);
        audit = audit with
        {
            Results =
            [
                NemesesRun(schedule, records, runner.TimedOut),
                ChaosChecks.Convergence(leftovers, converged, settings.ConvergeBound),
                .. audit.Results,
                ChaosChecks.ProtocolViolationsLogged(system.Nodes.Select(n => n.Process).OfType<ServiceProcess>()),
            ],
        };
        return new TopologyChaosResult(settings, target.Nodes, schedule, records, runner.PeakConcurrent, runner.TimedOut, load, dispatched,
            loadEnded, lastHealed, leftovers, converged, audit, LinkFaults.DelaySupported, system.Folder);
    }

    /// <summary>Every scheduled fault was injected and healed without an error, and every nemesis the schedule holds ran.</summary>
    public static InvariantResult NemesesRun(IReadOnlyList<NemesisEvent> schedule, IReadOnlyList<NemesisRecord> records, bool timedOut)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        ArgumentNullException.ThrowIfNull(records);
        var problems = new List<string>();
        if (records.Count < schedule.Count)
        {
            problems.Add($"{records.Count} of {schedule.Count} faults ran{(timedOut ? " (the chaos time bound ran out)" : "")}");
        }

        foreach (var failed in records.Where(r => r.Error is not null))
        {
            problems.Add($"fault #{failed.Number} ({failed.Event.Description}): {failed.Error}");
        }

        foreach (var kind in schedule.Select(e => e.Kind).Distinct())
        {
            if (!records.Any(r => r.Event.Kind == kind && r.Error is null))
            {
                problems.Add($"no {kind} fault ran cleanly");
            }
        }

        var kinds = string.Join(", ", Enum.GetValues<NemesisKind>().Select(k => $"{schedule.Count(e => e.Kind == k)} {k}"));
        return new InvariantResult("nemeses run", $"{schedule.Count} faults ({kinds}), each injected and healed", problems.Count, problems);
    }
}
