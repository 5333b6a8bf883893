using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TwoPhase.Persistence;
using TwoPhase.Protocol;

namespace TwoPhase.AspNetCore;

public static class CoordinatorExtensions
{
    /// <summary>The coordinator: decision log, HTTP transport, the protocol engine and its recovery loop.</summary>
    public static WebApplicationBuilder AddTwoPhaseCoordinator(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<CoordinatorOptions>().BindConfiguration(CoordinatorOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton<SqlDecisionLog>();
        services.TryAddSingleton<IDecisionLog>(sp => sp.GetRequiredService<SqlDecisionLog>());
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<CoordinatorOptions>>().Value;
            var http = sp.GetRequiredService<IHttpClientFactory>().CreateClient(HttpParticipantTransport.ClientName);
            var shared = sp.GetRequiredService<IOptions<TwoPhaseOptions>>();
            IParticipantTransport single = new HttpParticipantTransport(http, shared);
            var wire = o.BatchMessages
                ? new BatchingParticipantTransport(http, single, shared, o.MaxBatchMessages, o.MaxBatchesInFlight, TimeSpan.FromMilliseconds(Math.Max(o.PrepareDeadlineMs, o.DecisionTimeoutMs)))
                : single;
            return new TransportChain(new LoggingTransport(
                new InstrumentedTransport(wire, sp.GetService<TwoPhaseMetrics>(), sp.GetRequiredService<TimeProvider>()),
                sp.GetRequiredService<ILogger<LoggingTransport>>()), wire as IAsyncDisposable);
        });
        services.TryAddSingleton<IParticipantTransport>(sp => sp.GetRequiredService<TransportChain>().Outer);
        services.TryAddSingleton(sp => ParticipantDirectory(sp.GetRequiredService<IOptions<CoordinatorOptions>>().Value));
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<CoordinatorOptions>>().Value;
            return new TwoPhaseCoordinator(
                sp.GetRequiredService<IDecisionLog>(),
                sp.GetRequiredService<IParticipantTransport>(),
                sp.GetRequiredService<IReadOnlyDictionary<string, ParticipantRef>>(),
                new CoordinatorSettings
                {
                    PrepareDeadline = TimeSpan.FromMilliseconds(o.PrepareDeadlineMs),
                    DecisionTimeout = TimeSpan.FromMilliseconds(o.DecisionTimeoutMs),
                    RetryInitialDelay = TimeSpan.FromMilliseconds(o.RetryInitialDelayMs),
                    RetryMaxDelay = TimeSpan.FromMilliseconds(o.RetryMaxDelayMs),
                    DuplicateWait = TimeSpan.FromMilliseconds(o.PrepareDeadlineMs + o.DecisionTimeoutMs + 1000),
                    RecoveryBatchSize = o.RecoveryBatchSize,
                    AbandonGrace = TimeSpan.FromMilliseconds(o.AbandonGraceMs),
                },
                sp.GetRequiredService<TimeProvider>(),
                sp.GetRequiredService<IProtocolHooks>(),
                sp.GetService<TwoPhaseMetrics>());
        });
        // Load shedding for the endpoints that start transactions (Admission.cs).
        services.TryAddSingleton<TransactionAdmission>();
        services.AddSingleton<IStartupTask, DecisionLogSchema>();
        services.AddHostedService<CoordinatorRecovery>();
        return builder;
    }

    /// <summary>Configured participants by name; the reference storage and delivery services when none are configured.</summary>
    public static IReadOnlyDictionary<string, ParticipantRef> ParticipantDirectory(CoordinatorOptions options)
    {
        var configured = options.Participants.Count > 0
            ? options.Participants
            : [new() { Name = "storage", Url = "http://127.0.0.1:8002" }, new() { Name = "delivery", Url = "http://127.0.0.1:8001" }];
        return configured.ToDictionary(
            p => p.Name,
            p => new ParticipantRef(p.Name, new Uri(p.Url.EndsWith('/') ? p.Url : p.Url + "/"), p.Protocol.Equals("legacy", StringComparison.OrdinalIgnoreCase)));
    }

    private sealed class DecisionLogSchema(SqlDecisionLog log) : IStartupTask
    {
        public int Order => 0;

        public Task RunAsync(CancellationToken cancellationToken) => log.InitializeAsync(cancellationToken);
    }
}

/// <summary>The coordinator's transport as configured, and what must be stopped with the host (the batching loops).</summary>
internal sealed class TransportChain(IParticipantTransport outer, IAsyncDisposable? owned) : IAsyncDisposable
{
    public IParticipantTransport Outer => outer;

    public ValueTask DisposeAsync() => owned?.DisposeAsync() ?? ValueTask.CompletedTask;
}

/// <summary>Recovery at start-up and every interval (DESIGN §2): abandoned prepares abort, decisions are re-driven.</summary>
internal sealed class CoordinatorRecovery(TwoPhaseCoordinator coordinator, IOptions<CoordinatorOptions> options, TimeProvider time, ILogger<CoordinatorRecovery> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(options.Value.RecoveryIntervalMs), time);
        do
        {
            try
            {
                int touched;
                // Drain a backlog (after a crash) batch by batch, but yield to the timer once caught up.
                do
                {
                    touched = await coordinator.RecoverOnceAsync(stoppingToken);
                    if (touched > 0)
                    {
                        Log.Recovered(logger, touched);
                    }
                }
                while (touched >= options.Value.RecoveryBatchSize && !stoppingToken.IsCancellationRequested);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                Log.RecoveryFailed(logger, e);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}

/// <summary>Logs what participants say that is not a plain success; the protocol engine stays free of logging.</summary>
internal sealed class LoggingTransport(IParticipantTransport inner, ILogger<LoggingTransport> logger) : IParticipantTransport
{
    public async Task<Vote> PrepareAsync(ParticipantRef participant, string transactionId, string payload, CancellationToken cancellationToken)
    {
        var vote = await inner.PrepareAsync(participant, transactionId, payload, cancellationToken);
        if (vote.Kind != VoteKind.Yes)
        {
            Log.Voted(logger, transactionId, participant.Name, vote.Kind.ToWire(), vote.Reason);
        }

        return vote;
    }

    public async Task<Ack> SendDecisionAsync(ParticipantRef participant, string transactionId, Decision decision, string payload, CancellationToken cancellationToken)
    {
        var ack = await inner.SendDecisionAsync(participant, transactionId, decision, payload, cancellationToken);
        if (ack.Kind == AckKind.Conflict)
        {
            Log.ProtocolViolation(logger, transactionId, $"{participant.Name} refused {decision}: {ack.Detail}");
        }
        else if (ack.Kind == AckKind.Failed)
        {
            Log.DecisionNotAcknowledged(logger, transactionId, participant.Name, decision.ToString(), ack.Detail);
        }

        return ack;
    }
}
