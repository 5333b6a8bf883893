using System.Globalization;
using System.Runtime.CompilerServices;
using TwoPhase.Protocol;

namespace TwoPhase.Simulation;

/// <summary>Bounds and periods of a simulated system; the coordinator's are the product's defaults.</summary>
public sealed class SimSettings
{
    public CoordinatorSettings Coordinator { get; init; } = new();

    public TimeSpan RecoveryInterval { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan InDoubtAfter { get; init; } = TimeSpan.FromSeconds(5);

    public TimeSpan InDoubtScan { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan QueryTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>How long after the faults stop everything must have completed (liveness).</summary>
    public TimeSpan SettleWithin { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>Bounds a history's steps, so a livelock fails instead of spinning.</summary>
    public long MaxSteps { get; init; } = 2_000_000;
}

/// <summary>How often each fault strikes while faults are on; drawn per history from its seed.</summary>
public sealed record FaultRates(double Drop, double Duplicate, double Slow, double CrashPerStep, double PausePerPoint, double CrashPerPoint);

/// <summary>One history: its seed, whether it held, the violation and the trace up to it.</summary>
public sealed record SimResult(int Seed, BrokenVariant Variant, string? Violation, IReadOnlyList<string> Trace, long Steps, int Transactions, TimeSpan SimulatedTime)
{
    public bool Passed => Violation is null;

    /// <summary>The seed, the violation and the trace, as a failing run prints them.</summary>
    public string Report() =>
        $"seed {Seed} ({Variant}): {Violation ?? "ok"}; replay with `simulate-protocol --seeds 1 --from {Seed}`{Environment.NewLine}" +
        string.Join(Environment.NewLine, Trace);
}

/// <summary>
/// A whole simulated system for one seed: coordinator replicas over one decision log, participants with their
/// ledgers, clients, the network and the faults, all driven by one <see cref="SimScheduler"/> on one <see cref="SimClock"/>
/// and one <see cref="System.Random"/> seeded from the seed. Nothing else decides anything, so a seed is one history.
/// </summary>
public sealed class World
{
    private readonly List<string>? _trace;
    private readonly List<SimCoordinator> _coordinators = [];
    private readonly List<SimParticipant> _participants = [];
    private readonly Dictionary<string, SimParticipant> _byName = [];
    private readonly Dictionary<string, ParticipantRef> _directory = [];
    private int _clientsRunning;
    private bool _done;

    private World(int seed, BrokenVariant variant, bool trace, SimSettings settings)
    {
        Seed = seed;
        Variant = variant;
        Settings = settings;
        _trace = trace ? [] : null;
        Random = new Random(seed);
        Clock = new SimClock();
        Scheduler = new SimScheduler(Clock, Random);
        Network = new SimNetwork(this);
        Invariants = new HistoryInvariants(this);
        // Each history its own mix: some calm, some stormy.
        var storm = Random.NextDouble();
        Faults = new FaultRates(
            Drop: 0.15 * storm,
            Duplicate: 0.15 * Random.NextDouble(),
            Slow: 0.1 * Random.NextDouble(),
            CrashPerStep: 0.008 * storm,
            PausePerPoint: 0.1 * Random.NextDouble(),
            CrashPerPoint: 0.02 * storm);
    }

    public int Seed { get; }

    public BrokenVariant Variant { get; }

    public SimSettings Settings { get; }

    public Random Random { get; }

    public SimClock Clock { get; }

    public SimScheduler Scheduler { get; }

    public SimNetwork Network { get; }

    public HistoryInvariants Invariants { get; }

    public FaultRates Faults { get; }

    /// <summary>The coordinators' shared decision log (one database).</summary>
    public DurableStore<LogRow> Log { get; } = new();

    public bool FaultsOn { get; private set; } = true;

    public IReadOnlyList<SimParticipant> Participants => _participants;

    public IReadOnlyDictionary<string, ParticipantRef> Directory => _directory;

    public SimParticipant Participant(string name) => _byName[name];

    /// <summary>Run the history of <paramref name="seed"/>; with <paramref name="trace"/>, keep every event.</summary>
    public static SimResult Run(int seed, BrokenVariant variant = BrokenVariant.None, bool trace = false, SimSettings? settings = null)
    {
        var world = new World(seed, variant, trace, settings ?? new SimSettings());
        return world.Run();
    }

    /// <summary>Whether this history keeps a trace.</summary>
    public bool Tracing => _trace is not null;

    /// <summary>Add an event to the trace, stamped with the simulated time; formatted only when tracing.</summary>
    public void Note([InterpolatedStringHandlerArgument("")] TraceText what)
    {
        if (_thread != Environment.CurrentManagedThreadId)
        {
            Escape();
        }

        _trace?.Add($"{Clock.Elapsed.TotalMilliseconds,9:0.0} ms  {what.ToStringAndClear()}");
    }

    private readonly int _thread = Environment.CurrentManagedThreadId;

    /// <summary>Work that runs off the history's thread or scheduler is no longer the seed's: the history is void.</summary>
    private void Escape() =>
        Invariants.Fail($"determinism: work left the simulation's scheduler at {Environment.StackTrace}");

    public string Ms(DateTimeOffset at) => (at - Clock.GetUtcNow() + Clock.Elapsed).TotalMilliseconds.ToString("0", CultureInfo.InvariantCulture) + " ms";

    /// <summary>A round trip to a node's database: a turn for others (and a little time, now and then), then the life must still be alive.</summary>
    public async Task DiskAsync(Incarnation life, CancellationToken cancellationToken)
    {
        if (TaskScheduler.Current != Scheduler)
        {
            Escape();
        }

        var ms = Random.Next(4);
        if (ms == 0)
        {
            await Task.Yield();
        }
        else
        {
            await Task.Delay(TimeSpan.FromMilliseconds(ms), Clock, cancellationToken);
        }

        life.ThrowIfDead();
    }

    /// <summary>At a protocol point: while faults are on, the seed may pause the node (a GC pause, a slow disk) or crash it.</summary>
    public async Task AtAsync(Incarnation life, ProtocolPoint point, string id)
    {
        life.ThrowIfDead();
        if (!FaultsOn)
        {
            return;
        }

        var roll = Random.NextDouble();
        if (roll < Faults.CrashPerPoint)
        {
            Note($"{life} crashes at {point} of {id}");
            CrashNode(life.Node, restartAfter: RestartDelay());
            life.ThrowIfDead();
        }
        else if (roll < Faults.CrashPerPoint + Faults.PausePerPoint)
        {
            // Long enough, now and then, to pass a deadline and its grace: the stalls of the hardening issue.
            var pause = TimeSpan.FromMilliseconds(500 + Random.Next(6000));
            Note($"{life} pauses {pause.TotalMilliseconds:0} ms at {point} of {id}");
            await Task.Delay(pause, Clock, life.Token);
        }
    }

    /// <summary>An in-doubt participant asks a coordinator replica; null when no answer came in time.</summary>
    public async Task<DecisionQueryAnswer?> AskCoordinatorAsync(Incarnation life, string id)
    {
        var coordinator = _coordinators[Random.Next(_coordinators.Count)];
        // The timeout on the history's clock: a CancelAfter would use a real timer on the thread pool.
        using var timer = new CancellationTokenSource(Settings.QueryTimeout, Clock);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(life.Token, timer.Token);
        try
        {
            return await Network.CallAsync<DecisionQueryAnswer>(life.Node, coordinator.Name, $"QUERY {id}", () => coordinator.ServeQuery(id), timeout.Token);
        }
        catch (OperationCanceledException) when (life.Alive)
        {
            return null;
        }
    }

    private SimResult Run()
    {
        var coordinators = 1 + Random.Next(3);
        var participants = 2 + Random.Next(2);
        var transactions = 2 + Random.Next(7);
        var faultWindow = TimeSpan.FromMilliseconds(1000 + Random.Next(5000));
        for (var i = 1; i <= participants; i++)
        {
            var p = new SimParticipant(this, $"p{i}", stock: 1 + Random.Next(transactions), Skew());
            _participants.Add(p);
            _byName[p.Name] = p;
            _directory[p.Name] = p.Ref;
        }

        for (var i = 1; i <= coordinators; i++)
        {
            _coordinators.Add(new SimCoordinator(this, $"c{i}", Skew()));
        }

        Note($"seed {Seed}: {coordinators} coordinator(s), {participants} participants, {transactions} transactions, faults for {faultWindow.TotalMilliseconds:0} ms, {Faults}");
        _coordinators.ForEach(c => c.Start());
        _participants.ForEach(p => p.Start());
        for (var i = 1; i <= transactions; i++)
        {
            var id = $"t{i}";
            Clock.At(TimeSpan.FromMilliseconds(Random.Next((int)faultWindow.TotalMilliseconds)), () => StartClient(id));
        }

        // Now and then an operator presses retry-now on a transaction (the admin endpoint).
        for (var i = Random.Next(3); i > 0; i--)
        {
            var id = $"t{1 + Random.Next(transactions)}";
            var coordinator = _coordinators[Random.Next(coordinators)];
            Clock.At(TimeSpan.FromMilliseconds(Random.Next((int)faultWindow.TotalMilliseconds * 2)), () => _ = Scheduler.Spawn(() => OperatorRetryAsync(coordinator, id)));
        }

        Clock.At(faultWindow, StopFaults);
        var settleBy = (faultWindow + Settings.SettleWithin).Ticks;
        Scheduler.Run(
            settleBy,
            () => _done || Invariants.Violation is not null || Scheduler.Steps > Settings.MaxSteps,
            () =>
            {
                if (FaultsOn && Random.NextDouble() < Faults.CrashPerStep)
                {
                    StrikeAnywhere();
                }
            });

        var violation = Invariants.Violation;
        if (violation is null && !_done)
        {
            violation = Scheduler.Steps > Settings.MaxSteps
                ? $"liveness: more than {Settings.MaxSteps} steps"
                : Invariants.Unfinished() ?? $"liveness: {_clientsRunning} client(s) still waiting {Settings.SettleWithin.TotalSeconds:0} s after the faults stopped";
            Note($"VIOLATION: {violation}");
        }

        return new SimResult(Seed, Variant, violation, _trace ?? [], Scheduler.Steps, transactions, Clock.Elapsed);
    }

    /// <summary>Once faults stopped, the history ends when every client has its answer and everything completed.</summary>
    private void CheckDone()
    {
        _done = _clientsRunning == 0 && Invariants.Unfinished() is null;
        if (!_done)
        {
            Clock.At(TimeSpan.FromMilliseconds(250), CheckDone);
        }
    }

    private async Task OperatorRetryAsync(SimCoordinator coordinator, string id)
    {
        try
        {
            await coordinator.RetryNowAsync(id);
        }
        catch (Exception e) when (e is OperationCanceledException or InvalidOperationException)
        {
            Note($"operator retry-now {id} on {coordinator.Name} failed ({e.GetType().Name})");
        }
    }

    private TimeSpan Skew() => TimeSpan.FromMilliseconds(Random.Next(-300, 301));

    private TimeSpan RestartDelay() => TimeSpan.FromMilliseconds(50 + Random.Next(3000));

    private void StopFaults()
    {
        FaultsOn = false;
        Note($"faults stop: partitions heal, crashed nodes restart");
        Network.HealAll();
        _coordinators.ForEach(c => c.Start());
        _participants.ForEach(p => p.Start());
        CheckDone();
    }

    /// <summary>A fault between any two steps: a node or the log's database crashes, or a node is cut off.</summary>
    private void StrikeAnywhere()
    {
        var nodes = _coordinators.Count + _participants.Count;
        // The log's database twice as often as a node: its crash is what loses unforced decisions. (Flushes by other
        // transactions' forced writes need no fault of their own: every commit is one.)
        var pick = Random.Next(nodes + 2);
        if (pick < nodes)
        {
            var name = pick < _coordinators.Count ? _coordinators[pick].Name : _participants[pick - _coordinators.Count].Name;
            if (Random.Next(3) == 0)
            {
                Network.Isolate(name, RestartDelay());
            }
            else
            {
                CrashNode(name, RestartDelay());
            }
        }
        else
        {
            var lost = Log.Crash(Random);
            Note($"log database crash, lost {lost} unforced write(s)");
            Invariants.OnLogCrash();
        }
    }

    private void CrashNode(string name, TimeSpan restartAfter)
    {
        if (_coordinators.Find(c => c.Name == name) is { } coordinator)
        {
            coordinator.Crash();
            Clock.At(restartAfter, coordinator.Start);
        }
        else
        {
            var participant = _byName[name];
            participant.Crash();
            Clock.At(restartAfter, participant.Start);
        }
    }

    private void StartClient(string id)
    {
        _clientsRunning++;
        _ = Scheduler.Spawn(async () =>
        {
            try
            {
                await ClientAsync(id);
            }
            finally
            {
                _clientsRunning--;
            }
        });
    }

    /// <summary>
    /// A client: with an idempotency key it retries (a new order id, the same key) until it hears a decision; without
    /// one it asks once. It may send a keyed request to two replicas at once, and an answer may be lost on the way back.
    /// </summary>
    private async Task ClientAsync(string id)
    {
        var members = _participants.Where(_ => Random.Next(4) != 0).Select(p => p.Ref).ToList();
        if (members.Count == 0)
        {
            members.Add(_participants[0].Ref);
        }

        var key = Random.Next(2) == 0 ? $"k-{id}" : null;
        var attempts = key is null ? 1 : 6;
        for (var attempt = 0; attempt < attempts; attempt++)
        {
            var request = new TransactionRequest(attempt == 0 ? id : $"{id}-r{attempt}", members, TransactionRequest.SamePayload(members, "{}"), key, key is null ? null : "hash");
            var twice = key is not null && Random.Next(5) == 0;
            var sends = Enumerable.Range(0, twice ? 2 : 1).Select(_ => AskAsync(request)).ToList();
            var answers = await Task.WhenAll(sends);
            if (answers.Any(a => a is not null))
            {
                return;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(200 + Random.Next(1500)), Clock);
        }
    }

    private async Task<TransactionOutcome?> AskAsync(TransactionRequest request)
    {
        var coordinator = _coordinators[Random.Next(_coordinators.Count)];
        try
        {
            var outcome = await coordinator.ExecuteAsync(request);
            if (outcome.State == TransactionState.Preparing)
            {
                Note($"client {request.Id}: {coordinator.Name} says still preparing ({outcome.Id})");
                return null;
            }

            if (FaultsOn && Random.NextDouble() < Faults.Drop)
            {
                Note($"client {request.Id}: answer from {coordinator.Name} lost");
                return null;
            }

            Note($"client {request.Id}: told {outcome.State.ToWire()} for {outcome.Id} by {coordinator.Name}");
            Invariants.OnTold(outcome.Id, outcome.State);
            return outcome;
        }
        catch (Exception e) when (e is OperationCanceledException or InvalidOperationException)
        {
            Note($"client {request.Id}: no answer from {coordinator.Name} ({e.GetType().Name})");
            return null;
        }
    }
}
