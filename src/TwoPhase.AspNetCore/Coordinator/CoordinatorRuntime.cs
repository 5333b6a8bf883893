using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TwoPhase.Persistence;
using TwoPhase.Protocol;

namespace TwoPhase.AspNetCore;

/// <summary>Registration of the coordinator role (docs/coordinator-guide.md).</summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026:Do not add multiple public overloads with optional parameters", Justification = "The overloads differ by receiver (IHostApplicationBuilder or IServiceCollection) and so are never ambiguous; the optional configure is the registration shape of docs/api.md.")]
public static class CoordinatorExtensions
{
    /// <summary>
    /// The coordinator, reading <c>TwoPhase:Coordinator</c> (and the shared parts,
    /// <see cref="HostingExtensions.AddTwoPhase(IHostApplicationBuilder, Action{TwoPhaseOptions}?)"/>): decision log, HTTP
    /// transport, the protocol engine and its recovery loop. There are no default participants: with none in
    /// <c>TwoPhase:Coordinator:Participants</c> the host refuses to start, naming the key.
    /// </summary>
    public static IHostApplicationBuilder AddTwoPhaseCoordinator(this IHostApplicationBuilder builder, Action<CoordinatorOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddTwoPhaseCoordinator(builder.Configuration, configure);
        return builder;
    }

    /// <inheritdoc cref="AddTwoPhaseCoordinator(IHostApplicationBuilder, Action{CoordinatorOptions}?)"/>
    public static IServiceCollection AddTwoPhaseCoordinator(this IServiceCollection services, IConfiguration configuration, Action<CoordinatorOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddTwoPhase(configuration);
        var options = services.AddTwoPhaseOptions<CoordinatorOptions>(configuration, CoordinatorOptions.SectionName, CoordinatorOptions.Check);
        if (configure is not null)
        {
            options.Configure(configure);
        }

        // The protocol's bounds bind straight into the pure core's settings, from the same section: no twin to map.
        var section = configuration.GetSection(CoordinatorOptions.SectionName);
        services.AddTwoPhaseOptions<CoordinatorSettings>(configuration, CoordinatorOptions.SectionName, CoordinatorOptions.Bounds)
            .PostConfigure(settings =>
            {
                // Unless set, a duplicate waits as long as the first request can take to be decided, plus a second.
                if (section[nameof(CoordinatorSettings.DuplicateWait)] is null && section[nameof(CoordinatorSettings.DuplicateWait) + "Ms"] is null)
                {
                    settings.DuplicateWait = settings.PrepareDeadline + settings.DecisionTimeout + TimeSpan.FromSeconds(1);
                }
            });
        services.AddHttpClient(HttpParticipantTransport.ClientName)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
            {
                // Keep-alive connections, pooled, many per participant: one per in-flight call under load.
                PooledConnectionLifetime = TimeSpan.FromMinutes(5),
                PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
                MaxConnectionsPerServer = 1024,
                ConnectTimeout = TimeSpan.FromSeconds(2),
                AutomaticDecompression = DecompressionMethods.None,
                UseProxy = false,
            })
            .ConfigureHttpClient(c => c.Timeout = TimeSpan.FromSeconds(30));
        // Named by this replica's id: the owner it records in a decision log other replicas may share.
        services.TryAddSingleton(sp => new SqlDecisionLog(
            sp.GetRequiredService<Database>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<IOptions<CoordinatorOptions>>().Value.ReplicaId));
        services.TryAddSingleton<IDecisionLog>(sp => sp.GetRequiredService<SqlDecisionLog>());
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<CoordinatorOptions>>().Value;
            var bounds = sp.GetRequiredService<IOptions<CoordinatorSettings>>().Value;
            var http = sp.GetRequiredService<IHttpClientFactory>().CreateClient(HttpParticipantTransport.ClientName);
            var shared = sp.GetRequiredService<IOptions<TwoPhaseOptions>>();
            // Every PREPARE names this coordinator's group, so a participant in doubt asks the group that decided.
            var identity = new CoordinatorIdentity(o.Group, o.AdvertisedUrl);
            IParticipantTransport single = new HttpParticipantTransport(http, shared, identity);
            var wire = o.BatchMessages
                ? new BatchingParticipantTransport(
                    http, single, shared, o.MaxBatchMessages, o.MaxBatchesInFlight, bounds.PrepareDeadline > bounds.DecisionTimeout ? bounds.PrepareDeadline : bounds.DecisionTimeout, identity: identity)
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
        return services;
    }

    /// <summary>
    /// Configured participants by name. None configured is refused: a coordinator must not guess where its participants
    /// are (it once sent PREPAREs to ports of the reference services and aborted every order on "unreachable").
    /// </summary>
    public static IReadOnlyDictionary<string, ParticipantRef> ParticipantDirectory(CoordinatorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Participants.Count == 0)
        {
            throw new InvalidOperationException($"{CoordinatorOptions.SectionName}:{nameof(CoordinatorOptions.Participants)}: {CoordinatorOptions.NoParticipants}");
        }

        return options.Participants.ToDictionary(
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
