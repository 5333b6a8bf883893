using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
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
        services.AddTwoPhaseOptions<CoordinatorOptions>(CoordinatorOptions.SectionName, o => o.Participants
            .GroupBy(p => p.Name, StringComparer.Ordinal)
            .Where(g => g.Count() > 1)
            .Select(g => new OptionFailure(nameof(o.Participants), $"the name '{g.Key}' is given to {g.Count()} participants")));
        // The protocol's bounds bind straight into the pure core's settings, from the same section: no twin to map.
        services.AddTwoPhaseOptions<CoordinatorSettings>(CoordinatorOptions.SectionName, CoordinatorOptions.Bounds)
            .PostConfigure<IConfiguration>((settings, configuration) =>
            {
                // Unless set, a duplicate waits as long as the first request can take to be decided, plus a second.
                var section = configuration.GetSection(CoordinatorOptions.SectionName);
                if (section[nameof(CoordinatorSettings.DuplicateWait)] is null && section[nameof(CoordinatorSettings.DuplicateWait) + "Ms"] is null)
                {
                    settings.DuplicateWait = settings.PrepareDeadline + settings.DecisionTimeout + TimeSpan.FromSeconds(1);
                }
            });
        services.TryAddSingleton<SqlDecisionLog>();
        services.TryAddSingleton<IDecisionLog>(sp => sp.GetRequiredService<SqlDecisionLog>());
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<CoordinatorOptions>>().Value;
            var bounds = sp.GetRequiredService<IOptions<CoordinatorSettings>>().Value;
            var http = sp.GetRequiredService<IHttpClientFactory>().CreateClient(HttpParticipantTransport.ClientName);
            var shared = sp.GetRequiredService<IOptions<TwoPhaseOptions>>();
            IParticipantTransport single = new HttpParticipantTransport(http, shared);
            var wire = o.BatchMessages
                ? new BatchingParticipantTransport(http, single, shared, o.MaxBatchMessages, o.MaxBatchesInFlight, bounds.PrepareDeadline > bounds.DecisionTimeout ? bounds.PrepareDeadline : bounds.DecisionTimeout)
                : single;
            return new TransportChain(new LoggingTransport(
                new InstrumentedTransport(wire, sp.GetService<TwoPhaseMetrics>(), sp.GetRequiredService<TimeProvider>()),
                sp.GetRequiredService<ILogger<LoggingTransport>>()), wire as IAsyncDisposable);
        });
        services.TryAddSingleton<IParticipantTransport>(sp => sp.GetRequiredService<TransportChain>().Outer);
        services.TryAddSingleton(sp => ParticipantDirectory(sp.GetRequiredService<IOptions<CoordinatorOptions>>().Value));
        services.TryAddSingleton(sp => new TwoPhaseCoordinator(
            sp.GetRequiredService<IDecisionLog>(),
            sp.GetRequiredService<IParticipantTransport>(),
            sp.GetRequiredService<IReadOnlyDictionary<string, ParticipantRef>>(),
            sp.GetRequiredService<IOptions<CoordinatorSettings>>().Value,
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<IProtocolHooks>(),
            sp.GetService<TwoPhaseMetrics>()));
        services.TryAddSingleton<TwoPhaseTransactions>();
        // Load shedding for the endpoints that start transactions (Hosting/Admission.cs).
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
