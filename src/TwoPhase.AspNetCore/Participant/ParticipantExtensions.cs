using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using TwoPhase.Persistence;

namespace TwoPhase.AspNetCore;

/// <summary>Registration of a participant: the ledger engine, its schema at start, and the in-doubt resolver.</summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026:Do not add multiple public overloads with optional parameters", Justification = "The overloads differ by receiver (IHostApplicationBuilder or IServiceCollection) and so are never ambiguous; the optional configure is the registration shape of docs/api.md.")]
public static class ParticipantExtensions
{
    /// <summary>The named HttpClient the participant asks the coordinator with; configure it (handlers, TLS) under this name.</summary>
    public const string CoordinatorClientName = "twophase-coordinator";

    /// <summary>
    /// A participant over <typeparamref name="TResources"/>, reading <c>TwoPhase:Participant</c> (and the shared parts,
    /// <see cref="HostingExtensions.AddTwoPhase(IHostApplicationBuilder, Action{TwoPhaseOptions}?)"/>). Without
    /// <c>TwoPhase:Participant:CoordinatorUrl</c> the host refuses to start, naming the key.
    /// </summary>
    public static IHostApplicationBuilder AddTwoPhaseParticipant<TResources>(this IHostApplicationBuilder builder, Action<ParticipantOptions>? configure = null)
        where TResources : class, IResourceManager
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddTwoPhaseParticipant<TResources>(builder.Configuration, configure);
        return builder;
    }

    /// <summary>
    /// As <see cref="AddTwoPhaseParticipant{TResources}(IHostApplicationBuilder, Action{ParticipantOptions}?)"/>, with
    /// <typeparamref name="TRules"/> checking PREPARE bodies (and, when it implements it, mapping the old protocol's).
    /// </summary>
    public static IHostApplicationBuilder AddTwoPhaseParticipant<TResources, TRules>(this IHostApplicationBuilder builder, Action<ParticipantOptions>? configure = null)
        where TResources : class, IResourceManager
        where TRules : class, IPrepareRules
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.TryAddSingleton<IPrepareRules, TRules>();
        return builder.AddTwoPhaseParticipant<TResources>(configure);
    }

    /// <inheritdoc cref="AddTwoPhaseParticipant{TResources}(IHostApplicationBuilder, Action{ParticipantOptions}?)"/>
    public static IServiceCollection AddTwoPhaseParticipant<TResources>(this IServiceCollection services, IConfiguration configuration, Action<ParticipantOptions>? configure = null)
        where TResources : class, IResourceManager
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddTwoPhase(configuration);
        var options = services.AddTwoPhaseOptions<ParticipantOptions>(configuration, ParticipantOptions.SectionName);
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.TryAddSingleton<TResources>();
        services.TryAddSingleton<IResourceManager>(sp => sp.GetRequiredService<TResources>());
        services.TryAddSingleton<LedgerParticipant>();
        services.AddSingleton<IStartupTask, LedgerSchema>();
        services.AddHostedService<InDoubtResolver>();
        services.AddHttpClient(CoordinatorClientName);
        return services;
    }

    private sealed class LedgerSchema(LedgerParticipant participant) : IStartupTask
    {
        public int Order => 0;

        public Task RunAsync(CancellationToken cancellationToken) => participant.InitializeAsync(cancellationToken);
    }
}
