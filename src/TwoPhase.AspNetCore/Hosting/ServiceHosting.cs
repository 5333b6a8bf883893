using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using TwoPhase.Persistence;
using TwoPhase.Protocol;

namespace TwoPhase.AspNetCore;

/// <summary>Something to run once the database is reachable, before the service takes requests (schema, seed).</summary>
public interface IStartupTask
{
    /// <summary>Lower runs first.</summary>
    int Order { get; }

    /// <summary>Does the task; an exception stops the host before it listens.</summary>
    Task RunAsync(CancellationToken cancellationToken);
}

/// <summary>
/// Registration of what every TwoPhase role shares (docs/api.md, "Configuration"). It registers TwoPhase's own
/// services and options, all read from the section <c>TwoPhase</c>, and nothing of the host's: no URLs, Kestrel
/// limits, JSON policy, problem-details service or middleware. TwoPhase's body limit, timeout, secret check, problem
/// details and JSON apply to its own route groups only (<see cref="RouteGroups"/>).
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026:Do not add multiple public overloads with optional parameters", Justification = "The overloads differ by receiver (IHostApplicationBuilder or IServiceCollection) and so are never ambiguous; the optional configure is the registration shape of docs/api.md.")]
public static class HostingExtensions
{
    /// <summary>
    /// The shared parts: <see cref="TwoPhaseOptions"/> (<c>TwoPhase:*</c>), the <see cref="Database"/>
    /// (<c>TwoPhase:Database:*</c>), the clock, the protocol hooks, the shared secret, and the hosted service that
    /// runs the <see cref="IStartupTask"/>s before the server listens. Calling it again adds only <paramref name="configure"/>.
    /// </summary>
    public static IHostApplicationBuilder AddTwoPhase(this IHostApplicationBuilder builder, Action<TwoPhaseOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddTwoPhase(builder.Configuration, configure);
        return builder;
    }

    /// <inheritdoc cref="AddTwoPhase(IHostApplicationBuilder, Action{TwoPhaseOptions}?)"/>
    public static IServiceCollection AddTwoPhase(this IServiceCollection services, IConfiguration configuration, Action<TwoPhaseOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        if (configure is not null)
        {
            services.Configure(configure);
        }

        // The role registrations call this too: register the shared parts once, whoever comes first.
        if (services.Any(d => d.ServiceType == typeof(TwoPhaseStartup)))
        {
            return services;
        }

        services.AddTwoPhaseOptions<TwoPhaseOptions>(configuration, TwoPhaseOptions.SectionName);
        services.AddTwoPhaseOptions<DatabaseOptions>(configuration, DatabaseOptions.SectionName)
            .PostConfigure(o =>
            {
                if (string.IsNullOrWhiteSpace(o.ConnectionString) && configuration.GetConnectionString(o.ConnectionStringName) is { Length: > 0 } named)
                {
                    o.ConnectionString = named;
                }
            });
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => Database.Create(
            sp.GetRequiredService<IOptions<DatabaseOptions>>().Value,
            sp.GetService<IHostEnvironment>()?.ContentRootPath,
            sp.GetService<NpgsqlDataSource>()));
        services.TryAddSingleton<IProtocolHooks>(sp => CrashPointHooks.FromEnvironment() is { } point
            ? new CrashPointHooks(point, sp.GetRequiredService<ILogger<CrashPointHooks>>())
            : NoProtocolHooks.Instance);
        services.AddTwoPhaseProtection();
        services.TryAddSingleton<TwoPhaseStartup>();
        // Hosted services start, in the order registered, before the server listens: the schema exists before the
        // first request, and before the recovery loops the roles register after this.
        services.AddHostedService(sp => new TwoPhaseStartupService(sp.GetRequiredService<TwoPhaseStartup>()));
        return services;
    }

    /// <summary>
    /// Runs what the hosted service registered by <see cref="AddTwoPhase(IHostApplicationBuilder, Action{TwoPhaseOptions}?)"/>
    /// runs at start, now: checks every option, waits for the database (bounded), then runs every <see cref="IStartupTask"/>
    /// in order. Idempotent: once it has succeeded, a second call, and the hosted service, do nothing.
    /// </summary>
    public static Task InitializeTwoPhaseAsync(this IHost app, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(app);
        return app.Services.GetRequiredService<TwoPhaseStartup>().RunAsync(cancellationToken);
    }

    /// <summary>
    /// <c>/health/live</c> (the process answers) and <c>/health/ready</c> (its database answers), in a TwoPhase group
    /// without the secret check, so probes need no credentials.
    /// </summary>
    public static RouteGroupBuilder MapTwoPhaseHealth(this IEndpointRouteBuilder endpoints)
    {
        var health = endpoints.MapTwoPhaseGroup("/health", TwoPhaseGroup.Health).ExcludeFromDescription();
        health.MapGet("/live", () => TypedResults.Ok(new { status = "live" }));
        health.MapGet("/ready", async Task<IResult> (Database db, CancellationToken ct) =>
            await db.PingAsync(ct)
                ? TypedResults.Ok(new { status = "ready", database = db.Dialect.ToString().ToLowerInvariant() })
                : Problems.Status(StatusCodes.Status503ServiceUnavailable, "Database unreachable."));
        return health;
    }
}

/// <summary>The start-up work, run once: by the hosted service, or earlier by an explicit <c>InitializeTwoPhaseAsync</c>.</summary>
internal sealed class TwoPhaseStartup(IServiceProvider services)
{
    private const int MaxDatabaseAttempts = 60;
    private readonly SemaphoreSlim _once = new(1, 1);
    private bool _done;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        await _once.WaitAsync(cancellationToken);
        try
        {
            if (!_done)
            {
                await InitializeAsync(cancellationToken);
                _done = true;
            }
        }
        finally
        {
            _once.Release();
        }
    }

    private async Task InitializeAsync(CancellationToken cancellationToken)
    {
        // Every options class first (the shared secret among them: a refused cookie file), so a bad setting stops the
        // service at once with its key named, before it waits up to a minute for its database.
        services.GetService<IStartupValidator>()?.Validate();
        _ = services.GetRequiredService<IOptions<TwoPhaseOptions>>().Value;
        var db = services.GetRequiredService<Database>();
        var time = services.GetRequiredService<TimeProvider>();
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger("TwoPhase.Startup");
        // A service restarted together with its database must not die because the database is a second late.
        for (var attempt = 1; !await db.PingAsync(cancellationToken); attempt++)
        {
            if (attempt >= MaxDatabaseAttempts)
            {
                throw new InvalidOperationException($"The database ({db.Describe()}) did not answer within {MaxDatabaseAttempts} attempts.");
            }

            await Task.Delay(TimeSpan.FromSeconds(1), time, cancellationToken);
        }

        // Refuses to start on a server that does not keep what the protocol forces (fsync=off), unless allowed.
        if (await db.VerifyAsync(cancellationToken) is { } warning)
        {
            Log.UnsafeDatabase(logger, warning);
        }

        foreach (var task in services.GetServices<IStartupTask>().OrderBy(t => t.Order))
        {
            await task.RunAsync(cancellationToken);
        }

        Log.DatabaseReady(logger, db.Describe());
    }
}

/// <summary>Runs <see cref="TwoPhaseStartup"/> as the host starts; a failure stops the host with its reason.</summary>
internal sealed class TwoPhaseStartupService(TwoPhaseStartup startup) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => startup.RunAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
