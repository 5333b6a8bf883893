using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TwoPhase.Persistence;
using TwoPhase.Protocol;

namespace TwoPhase.AspNetCore;

/// <summary>Something to run once the database is reachable, before the service takes requests (schema, seed).</summary>
public interface IStartupTask
{
    /// <summary>Lower runs first.</summary>
    int Order { get; }

    Task RunAsync(CancellationToken cancellationToken);
}

public static class HostingExtensions
{
    /// <summary>
    /// What every TwoPhase service needs: options, its database (SQLite file <paramref name="defaultSqliteFile"/>
    /// unless configured otherwise), the clock, the protocol hooks, body limits and problem details.
    /// </summary>
    public static WebApplicationBuilder AddTwoPhaseService(this WebApplicationBuilder builder, string defaultUrl, string defaultSqliteFile)
    {
        var services = builder.Services;
        if (string.IsNullOrEmpty(builder.Configuration[WebHostDefaults.ServerUrlsKey]))
        {
            // Loopback on the service's own port unless told otherwise (--urls, ASPNETCORE_URLS, Urls).
            builder.WebHost.UseUrls(defaultUrl);
        }

        services.AddTwoPhaseOptions<TwoPhaseOptions>(TwoPhaseOptions.SectionName);
        services.AddTwoPhaseOptions<DatabaseOptions>(DatabaseOptions.SectionName);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => Database.Create(sp.GetRequiredService<IOptions<DatabaseOptions>>().Value, defaultSqliteFile));
        services.TryAddSingleton<IProtocolHooks>(sp => CrashPointHooks.FromEnvironment() is { } point
            ? new CrashPointHooks(point, sp.GetRequiredService<ILogger<CrashPointHooks>>())
            : NoProtocolHooks.Instance);
        services.AddProblemDetails();
        services.AddTwoPhaseProtection();
        services.Configure<JsonOptions>(o => o.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.CamelCase);
        var maxBody = builder.Configuration.GetValue($"{TwoPhaseOptions.SectionName}:{nameof(TwoPhaseOptions.MaxBodyBytes)}", new TwoPhaseOptions().MaxBodyBytes);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = maxBody;
            k.Limits.MaxRequestHeadersTotalSize = 32 * 1024;
            k.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(10);
            k.Limits.MaxConcurrentConnections = 10_000;
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
        return builder;
    }

    /// <summary>Wait for the database (bounded), then run every <see cref="IStartupTask"/> in order.</summary>
    public static async Task InitializeTwoPhaseAsync(this WebApplication app, CancellationToken cancellationToken = default)
    {
        // Every options class first (the shared secret among them: a refused cookie file), so a bad setting stops the
        // service at once with its key named, before it waits up to a minute for its database.
        app.Services.GetService<IStartupValidator>()?.Validate();
        _ = app.Services.GetRequiredService<IOptions<TwoPhaseOptions>>().Value;
        var db = app.Services.GetRequiredService<Database>();
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("TwoPhase.Startup");
        // A service restarted together with its database must not die because the database is a second late.
        for (var attempt = 1; !await db.PingAsync(cancellationToken); attempt++)
        {
            if (attempt >= 60)
            {
                throw new InvalidOperationException($"The database ({db.Describe()}) did not answer within 60 attempts.");
            }

            await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
        }

        // Refuses to start on a server that does not keep what the protocol forces (fsync=off), unless allowed.
        if (await db.VerifyAsync(cancellationToken) is { } warning)
        {
            Log.UnsafeDatabase(logger, warning);
        }

        foreach (var task in app.Services.GetServices<IStartupTask>().OrderBy(t => t.Order))
        {
            await task.RunAsync(cancellationToken);
        }

        Log.DatabaseReady(logger, db.Describe());
    }

    /// <summary><c>/health/live</c> (the process answers) and <c>/health/ready</c> (its database answers).</summary>
    public static IEndpointRouteBuilder MapTwoPhaseHealth(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/health/live", () => TypedResults.Ok(new { status = "live" })).ExcludeFromDescription();
        endpoints.MapGet("/health/ready", async Task<IResult> (Database db, CancellationToken ct) =>
            await db.PingAsync(ct)
                ? TypedResults.Ok(new { status = "ready", database = db.Dialect.ToString().ToLowerInvariant() })
                : Problems.Status(StatusCodes.Status503ServiceUnavailable, "Database unreachable.")).ExcludeFromDescription();
        return endpoints;
    }
}
