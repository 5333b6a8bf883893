using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using TwoPhase.Persistence;

namespace TwoPhase.AspNetCore;

/// <summary>Registration of a participant: the ledger engine, its schema at start, and the in-doubt resolver.</summary>
public static class ParticipantExtensions
{
    public const string CoordinatorClientName = "twophase-coordinator";

    /// <summary>A participant: the ledger engine over <typeparamref name="TResources"/>, and the in-doubt resolver.</summary>
    public static WebApplicationBuilder AddTwoPhaseParticipant<TResources, TRules>(this WebApplicationBuilder builder)
        where TResources : class, IResourceManager
        where TRules : class, IPrepareRules
    {
        var services = builder.Services;
        services.AddOptions<ParticipantOptions>().BindConfiguration(ParticipantOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton<TResources>();
        services.TryAddSingleton<IResourceManager>(sp => sp.GetRequiredService<TResources>());
        services.TryAddSingleton<IPrepareRules, TRules>();
        services.TryAddSingleton<LedgerParticipant>();
        services.AddSingleton<IStartupTask, LedgerSchema>();
        services.AddHostedService<InDoubtResolver>();
        services.AddHttpClient(CoordinatorClientName);
        return builder;
    }

    private sealed class LedgerSchema(LedgerParticipant participant) : IStartupTask
    {
        public int Order => 0;

        public Task RunAsync(CancellationToken cancellationToken) => participant.InitializeAsync(cancellationToken);
    }
}
