using Microsoft.Extensions.Time.Testing;
using TwoPhase.Protocol;
using TwoPhase.Tests.Protocol.Fakes;

namespace TwoPhase.Tests.Protocol;

/// <summary>A coordinator wired to in-memory fakes and a fake clock, with storage and delivery as participants.</summary>
public sealed class CoordinatorHarness
{
    public static readonly ParticipantRef Storage = new("storage", new Uri("http://127.0.0.1:8002"));
    public static readonly ParticipantRef Delivery = new("delivery", new Uri("http://127.0.0.1:8001"));

    /// <summary>Bounds every wait of a test on an event, so a broken coordinator fails instead of hanging.</summary>
    public static readonly TimeSpan EventTimeout = TimeSpan.FromSeconds(10);

    public CoordinatorHarness(CoordinatorSettings? settings = null, TimeProvider? time = null, TwoPhaseMetrics? metrics = null)
    {
        Clock = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero));
        Time = time ?? Clock;
        Journal = new Journal();
        Log = new InMemoryDecisionLog(Time, Journal);
        Transport = new ScriptedTransport(Journal);
        Hooks = new ScriptedHooks(Journal);
        Settings = settings ?? new CoordinatorSettings();
        Coordinator = new TwoPhaseCoordinator(
            Log,
            Transport,
            new Dictionary<string, ParticipantRef> { [Storage.Name] = Storage, [Delivery.Name] = Delivery },
            Settings,
            Time,
            Hooks,
            metrics);
    }

    public FakeTimeProvider Clock { get; }

    public TimeProvider Time { get; }

    public Journal Journal { get; }

    public InMemoryDecisionLog Log { get; }

    public ScriptedTransport Transport { get; }

    public ScriptedHooks Hooks { get; }

    public CoordinatorSettings Settings { get; }

    public TwoPhaseCoordinator Coordinator { get; }

    public static TransactionRequest Request(string id, string? idempotencyKey = null) =>
        new(id, [Storage, Delivery], TransactionRequest.SamePayload([Storage, Delivery], """{"items":[{"sku":"widget","quantity":1}]}"""), idempotencyKey, idempotencyKey is null ? null : "hash");

    /// <summary>Record a transaction as preparing, as <see cref="TwoPhaseCoordinator.ExecuteAsync"/> would, and run nothing more.</summary>
    public Task<(TransactionRecord Record, bool Created)> BeginAsync(string id)
    {
        var deadline = Clock.GetUtcNow() + Settings.PrepareDeadline;
        return Log.BeginAsync(Request(id), deadline, deadline + Settings.AbandonGrace, CancellationToken.None);
    }

    public Task<(TransactionOutcome Outcome, bool Created)> ExecuteAsync(string id, string? idempotencyKey = null) =>
        Coordinator.ExecuteAsync(Request(id, idempotencyKey), CancellationToken.None);
}
