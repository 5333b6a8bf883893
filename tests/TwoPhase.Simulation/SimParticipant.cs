using TwoPhase.Protocol;

namespace TwoPhase.Simulation;

/// <summary>
/// A participant: a ledger in its own crashable database, a stock of units (one per transaction), the message handlers
/// and the in-doubt resolver. Every decision of what to do with a message is <see cref="ParticipantRules"/>'s and every
/// in-doubt step <see cref="InDoubtRules"/>'s, over the same row type the SQL ledger keeps (<see cref="LedgerEntry"/>);
/// this is the only file of the simulator that calls them.
/// The handlers follow the runtime's (TwoPhase.AspNetCore): the ledger row is forced before the answer goes out.
/// </summary>
public sealed class SimParticipant
{
    private readonly World _world;
    private readonly TimeProvider _clock;
    private readonly int _stock;
    private Incarnation? _life;
    private int _lives;

    public SimParticipant(World world, string name, int stock, TimeSpan skew)
    {
        _world = world;
        Name = name;
        _stock = stock;
        _clock = new SkewedClock(world.Clock, skew);
        Ref = new ParticipantRef(name, new Uri($"sim://{name}"));
    }

    public string Name { get; }

    public ParticipantRef Ref { get; }

    public DurableStore<LedgerEntry> Ledger { get; } = new();

    public bool Up => _life is { Alive: true };

    /// <summary>Units held by a prepared row or sold by a committed one.</summary>
    private int Taken => Ledger.Rows.Values.Count(r => r.State is LedgerState.Prepared or LedgerState.Committed);

    public void Start()
    {
        if (Up)
        {
            return;
        }

        var life = _life = new Incarnation(Name, ++_lives);
        _world.Note($"{life} start");
        _ = _world.Scheduler.Spawn(() => ResolveLoopAsync(life));
    }

    /// <summary><c>kill -9</c> of the service and a crash of its database: unforced ledger writes may be lost.</summary>
    public void Crash()
    {
        if (_life is not { Alive: true } life)
        {
            return;
        }

        life.Kill();
        var lost = Ledger.Crash(_world.Random);
        _world.Note($"{life} crash, ledger lost {lost} unforced write(s)");
        _world.Invariants.OnLedgerCrash(this);
    }

    /// <summary>PREPARE arriving: null when the service is down.</summary>
    public Task<Vote>? ServePrepare(string id) => _life is { Alive: true } life ? PrepareAsync(life, id) : null;

    /// <summary>COMMIT or ABORT arriving: null when the service is down.</summary>
    public Task<Ack>? ServeDecision(string id, Decision decision) =>
        _life is { Alive: true } life ? DecisionAsync(life, id, decision) : null;

    private async Task<Vote> PrepareAsync(Incarnation life, string id)
    {
        await _world.AtAsync(life, ProtocolPoint.ParticipantBeforePrepareWritten, id);
        await _world.DiskAsync(life, life.Token);
        var row = Ledger.Get(id);
        if (ParticipantRules.OnPrepare(row?.State) == ParticipantAction.Reserve)
        {
            var reserved = Taken < _stock;
            row = ParticipantRules.Claim(id, reserved, holding: null, refusal: reserved ? null : "out of stock", _clock.GetUtcNow());
            // The vote promises the row survives a crash: it is forced before the answer, unless broken on purpose.
            var forced = !reserved || _world.Variant != BrokenVariant.VoteBeforePrepareDurable;
            Write(life, id, row, forced);
            await _world.AtAsync(life, ProtocolPoint.ParticipantAfterPrepareWritten, id);
        }

        var (kind, reason) = ParticipantRules.Answer(row!);
        var vote = new Vote(Name, kind, reason);

        await _world.AtAsync(life, ProtocolPoint.ParticipantBeforePrepareAnswered, id);
        life.ThrowIfDead();
        _world.Invariants.OnVote(Name, id, vote.Kind);
        return vote;
    }

    private async Task<Ack> DecisionAsync(Incarnation life, string id, Decision decision)
    {
        var commit = decision == Decision.Commit;
        await _world.AtAsync(life, commit ? ProtocolPoint.ParticipantBeforeCommitWritten : ProtocolPoint.ParticipantBeforeAbortWritten, id);
        await _world.DiskAsync(life, life.Token);
        var row = Ledger.Get(id);
        var step = ParticipantRules.OnDecision(decision, row?.State);
        var now = _clock.GetUtcNow();
        switch (step.Action)
        {
            case ParticipantAction.ApplyCommit or ParticipantAction.Release:
                Write(life, id, row! with { State = step.Answer.State!.Value, UpdatedAt = now }, forced: true);
                break;
            case ParticipantAction.WriteTombstone when _world.Variant != BrokenVariant.NoTombstoneForEarlyAbort:
                Write(life, id, ParticipantRules.Tombstone(id, now), forced: true);
                break;
            case ParticipantAction.Conflict:
                _world.Note($"{life} refuses {(commit ? "COMMIT" : "ABORT")} {id}: {step.Answer.Detail}");
                return new Ack(Name, AckKind.Conflict, step.Answer.Detail);
        }

        await _world.AtAsync(life, commit ? ProtocolPoint.ParticipantAfterCommitWritten : ProtocolPoint.ParticipantAfterAbortWritten, id);
        life.ThrowIfDead();
        _world.Invariants.OnAcknowledged(Name, id, decision);
        return new Ack(Name, AckKind.Acknowledged);
    }

    /// <summary>
    /// The in-doubt resolver, as the runtime's: prepared rows older than the in-doubt timeout ask a coordinator and
    /// apply its answer through the same handler as a COMMIT or ABORT message; "pending" or no answer asks again later.
    /// </summary>
    private async Task ResolveLoopAsync(Incarnation life)
    {
        var settings = _world.Settings;
        while (life.Alive)
        {
            try
            {
                await Task.Delay(settings.InDoubtScan, _clock, life.Token);
                var now = _clock.GetUtcNow();
                var due = Ledger.Rows
                    .Where(r => InDoubtRules.IsDue(r.Value, now, settings.InDoubtAfter))
                    .Select(r => r.Key)
                    .ToList();
                foreach (var id in due)
                {
                    await ResolveAsync(life, id);
                }
            }
            catch (OperationCanceledException) when (!life.Alive)
            {
                return;
            }
        }
    }

    private async Task ResolveAsync(Incarnation life, string id)
    {
        if (_world.Variant == BrokenVariant.InDoubtDecidesAlone)
        {
            _world.Note($"{life} in doubt on {id}: aborts alone");
            await DecisionAsync(life, id, Decision.Abort);
            return;
        }

        var answer = await _world.AskCoordinatorAsync(life, id);
        _world.Note($"{life} in doubt on {id}: coordinator says {answer?.ToWire() ?? "nothing"}");
        switch (InDoubtRules.OnAnswer(answer))
        {
            case InDoubtAction.Commit:
                await DecisionAsync(life, id, Decision.Commit);
                break;
            case InDoubtAction.Abort:
                await DecisionAsync(life, id, Decision.Abort);
                break;
            default:
                if (Ledger.Get(id) is { State: LedgerState.Prepared } row)
                {
                    var next = InDoubtRules.NextCheck(row, _clock.GetUtcNow(), TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(2), _world.Random.NextDouble());
                    Write(life, id, row with { Checks = row.Checks + 1, NextCheckAt = next }, forced: false);
                }

                break;
        }
    }

    private void Write(Incarnation life, string id, LedgerEntry row, bool forced)
    {
        life.ThrowIfDead();
        var before = Ledger.Get(id)?.State;
        Ledger.Write(id, row, forced);
        if (before != row.State)
        {
            _world.Note($"{life} ledger {id} {row.State.ToWire()}{(forced ? " (forced)" : "")}");
            _world.Invariants.OnLedgerWrite(Name, id, before, row.State);
        }
    }
}
