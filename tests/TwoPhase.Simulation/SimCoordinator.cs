using TwoPhase.Protocol;

namespace TwoPhase.Simulation;

/// <summary>
/// One coordinator replica: a real <see cref="TwoPhaseCoordinator"/> per life, over the shared decision log, with
/// its recovery scan on a timer, answering clients and in-doubt questions. A crash kills the life and every call
/// it was making; a restart builds a new coordinator over the same log, as a restarted process does.
/// </summary>
public sealed class SimCoordinator(World world, string name, TimeSpan skew)
{
    private readonly TimeProvider _clock = new SkewedClock(world.Clock, skew);
    private Life? _life;
    private int _lives;

    public string Name => name;

    public bool Up => _life is { Incarnation.Alive: true };

    public void Start()
    {
        if (Up)
        {
            return;
        }

        var incarnation = new Incarnation(name, ++_lives);
        var coordinator = new TwoPhaseCoordinator(
            new SimDecisionLog(world, incarnation, _clock),
            new Transport(world, incarnation),
            world.Directory,
            world.Settings.Coordinator,
            _clock,
            new Hooks(world, incarnation),
            metrics: null,
            jitter: world.Random);
        var life = _life = new Life(incarnation, coordinator, new SimDecisionLog(world, incarnation, _clock));
        world.Note($"{incarnation} start");
        _ = world.Scheduler.Spawn(() => RecoveryLoopAsync(life));
    }

    public void Crash()
    {
        if (_life is { Incarnation.Alive: true } life)
        {
            life.Incarnation.Kill();
            world.Note($"{life.Incarnation} crash");
        }
    }

    /// <summary>A client's request, run by this replica's current life; throws when it is down or dies meanwhile.</summary>
    public async Task<TransactionOutcome> ExecuteAsync(TransactionRequest request)
    {
        var life = _life is { Incarnation.Alive: true } up ? up : throw new OperationCanceledException($"{name} is down");
        var (outcome, _) = await life.Coordinator.ExecuteAsync(request, life.Incarnation.Token);
        life.Incarnation.ThrowIfDead();
        return outcome;
    }

    /// <summary>An operator's retry-now (the coordinator's admin endpoint).</summary>
    public async Task RetryNowAsync(string id)
    {
        if (_life is { Incarnation.Alive: true } life)
        {
            var record = await life.Coordinator.RetryNowAsync(id, life.Incarnation.Token);
            world.Note($"{life.Incarnation} retry-now {id}: {record?.State.ToWire() ?? "unknown"}");
        }
    }

    /// <summary><c>GET /v1/transactions/{id}</c>: null when this replica is down.</summary>
    public Task<DecisionQueryAnswer>? ServeQuery(string id) => _life is { Incarnation.Alive: true } life ? AnswerAsync(life, id) : null;

    private async Task<DecisionQueryAnswer> AnswerAsync(Life life, string id) =>
        CoordinatorRules.Answer(await life.Log.FindAsync(id, life.Incarnation.Token), _clock.GetUtcNow());

    private async Task RecoveryLoopAsync(Life life)
    {
        var token = life.Incarnation.Token;
        while (life.Incarnation.Alive)
        {
            try
            {
                await Task.Delay(world.Settings.RecoveryInterval, _clock, token);
                world.Note($"{life.Incarnation} recovery scan");
                var touched = await life.Coordinator.RecoverOnceAsync(token);
                if (touched > 0)
                {
                    world.Note($"{life.Incarnation} recovery touched {touched}");
                }
            }
            catch (OperationCanceledException) when (!life.Incarnation.Alive)
            {
                return;
            }
            catch (InvalidOperationException e)
            {
                // A row lost in a crash of the log's database between a scan and its write, as a SQL error would be.
                world.Note($"{life.Incarnation} recovery failed: {e.Message}");
            }
            catch (Exception e)
            {
                // Anything else is a defect a host's worker would only log: here it fails the history, with its seed.
                world.Invariants.Fail($"recovery: {life.Incarnation}'s scan threw {e}");
                return;
            }
        }
    }

    private sealed record Life(Incarnation Incarnation, TwoPhaseCoordinator Coordinator, SimDecisionLog Log);

    /// <summary>PREPARE, COMMIT and ABORT over the simulated network, from one coordinator life.</summary>
    private sealed class Transport(World world, Incarnation life) : IParticipantTransport
    {
        public async Task<Vote> PrepareAsync(ParticipantRef participant, string transactionId, string payload, CancellationToken cancellationToken)
        {
            life.ThrowIfDead();
            var target = world.Participant(participant.Name);
            // Every token the coordinator passes derives from its life's (the host's stopping token), so a crash ends the call.
            return await world.Network.CallAsync(life.Node, participant.Name, $"PREPARE {transactionId}", () => target.ServePrepare(transactionId), cancellationToken);
        }

        public async Task<Ack> SendDecisionAsync(ParticipantRef participant, string transactionId, Decision decision, string payload, CancellationToken cancellationToken)
        {
            life.ThrowIfDead();
            var target = world.Participant(participant.Name);
            var what = $"{(decision == Decision.Commit ? "COMMIT" : "ABORT")} {transactionId}";
            return await world.Network.CallAsync(life.Node, participant.Name, what, () => target.ServeDecision(transactionId, decision), cancellationToken);
        }
    }

    /// <summary>The protocol's fault points: where the seed may pause this life or crash it.</summary>
    private sealed class Hooks(World world, Incarnation life) : IProtocolHooks
    {
        public async ValueTask AtAsync(ProtocolPoint point, string transactionId, CancellationToken cancellationToken)
        {
            await world.AtAsync(life, point, transactionId);
            cancellationToken.ThrowIfCancellationRequested();
        }
    }
}
