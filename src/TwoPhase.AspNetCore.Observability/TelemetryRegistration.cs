using System.ComponentModel.DataAnnotations;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OpenTelemetry.Exporter;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using TwoPhase.Persistence;
using TwoPhase.Protocol;

namespace TwoPhase.AspNetCore;

/// <summary>Where traces, metrics and logs go. Prometheus <c>/metrics</c> is always served; the rest is opt-in.</summary>
public sealed class TelemetryOptions
{
    /// <summary>The configuration section these options are read from.</summary>
    public const string SectionName = "TwoPhase:Telemetry";

    /// <summary>
    /// OTLP collector to send traces, metrics and logs to, e.g. <c>http://127.0.0.1:4317</c> (gRPC). The standard
    /// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> variable does the same and wins; unset and empty: no OTLP export.
    /// </summary>
    public string? OtlpEndpoint { get; set; }

    /// <summary>Write every span to standard output too (debugging; checking that a trace crosses services).</summary>
    public bool ConsoleExporter { get; set; }

    /// <summary>The <c>service.name</c> resource; defaults to the service's assembly, e.g. <c>order-service</c>.</summary>
    public string? ServiceName { get; set; }

    /// <summary>Share of new traces kept (1 = all). A trace started upstream keeps its caller's choice.</summary>
    [Range(0.0, 1.0)]
    public double TraceSampleRatio { get; set; } = 1.0;

    /// <summary>How often the gauges that need the database (unfinished, prepared, oldest ages) are re-read.</summary>
    [Range(200, 600_000)]
    public int RefreshIntervalMs { get; set; } = 2000;
}

/// <summary>
/// OpenTelemetry for a TwoPhase host, with the exporters the runtime package leaves out so that it has no prerelease
/// dependency. The meter and activity source themselves (<see cref="TwoPhaseDiagnostics"/>) live in TwoPhase.Protocol
/// and are emitted whether or not this package is installed; a host with its own OpenTelemetry set-up can subscribe
/// to them directly instead.
/// </summary>
public static class TwoPhaseTelemetryExtensions
{
    /// <summary>The environment variable every OpenTelemetry SDK reads for the collector's address.</summary>
    public const string OtlpEndpointVariable = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>
    /// OpenTelemetry for a TwoPhase service: the <c>TwoPhase</c> meter and activity source, ASP.NET Core and
    /// HttpClient instrumentation (W3C trace context travels with every participant call), Prometheus always,
    /// OTLP when an endpoint is configured, and the background refresher behind the database gauges.
    /// Spans are only created when something exports them, so a service without a collector pays nothing.
    /// </summary>
    public static WebApplicationBuilder AddTwoPhaseTelemetry(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddTwoPhaseOptions<TelemetryOptions>(TelemetryOptions.SectionName);
        services.AddMetrics();
        services.TryAddSingleton(sp => new TwoPhaseMetrics(sp.GetRequiredService<IMeterFactory>()));
        services.AddHostedService<TelemetryRefresher>();

        var options = builder.Configuration.GetSection(TelemetryOptions.SectionName).Get<TelemetryOptions>() ?? new TelemetryOptions();
        var otlpEndpoint = builder.Configuration[OtlpEndpointVariable] is { Length: > 0 } fromEnvironment ? fromEnvironment : options.OtlpEndpoint;
        var otlp = !string.IsNullOrWhiteSpace(otlpEndpoint);
        var serviceName = options.ServiceName ?? DefaultServiceName(builder.Environment.ApplicationName);

        // Logs carry the trace and span ids, so a log line leads to its trace and back.
        builder.Logging.Configure(o => o.ActivityTrackingOptions = ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId);

        var telemetry = services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(serviceName, serviceNamespace: "twophase", serviceVersion: typeof(TwoPhaseTelemetryExtensions).Assembly.GetName().Version?.ToString()))
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(TwoPhaseDiagnostics.Name)
                    .AddAspNetCoreInstrumentation()
                    .AddHttpClientInstrumentation()
                    .AddPrometheusExporter();
                if (otlp)
                {
                    metrics.AddOtlpExporter(o => o.Endpoint = new Uri(otlpEndpoint!));
                }
            });

        if (otlp || options.ConsoleExporter)
        {
            telemetry.WithTracing(tracing =>
            {
                tracing.AddSource(TwoPhaseDiagnostics.Name)
                    .SetSampler(new ParentBasedSampler(new TraceIdRatioBasedSampler(options.TraceSampleRatio)))
                    .AddAspNetCoreInstrumentation(o => o.Filter = context => !IsHousekeeping(context.Request.Path))
                    .AddHttpClientInstrumentation();
                if (otlp)
                {
                    tracing.AddOtlpExporter(o => o.Endpoint = new Uri(otlpEndpoint!));
                }

                if (options.ConsoleExporter)
                {
                    tracing.AddConsoleExporter(o => o.Targets = ConsoleExporterOutputTargets.Console);
                }
            });
        }

        if (otlp)
        {
            telemetry.WithLogging(logging => logging.AddOtlpExporter(o => o.Endpoint = new Uri(otlpEndpoint!)));
        }

        return builder;
    }

    /// <summary>
    /// <c>/metrics</c> in the Prometheus text format, and a logging scope carrying the transaction id on every
    /// protocol request (<c>/v1/transactions/{id}/...</c>), so whatever runs under it logs the id too.
    /// </summary>
    public static WebApplication MapTwoPhaseTelemetry(this WebApplication app)
    {
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("TwoPhase.Protocol");
        app.Use(async (context, next) =>
        {
            if (context.Request.Path.StartsWithSegments("/v1/transactions") && context.GetRouteValue("id") is string id)
            {
                Activity.Current?.SetTag(TwoPhaseDiagnostics.TransactionIdTag, id);
                using (logger.BeginScope(new TelemetryExtensions.TransactionLogScope(id)))
                {
                    await next(context);
                }

                return;
            }

            await next(context);
        });
        app.MapPrometheusScrapingEndpoint("/metrics").ExcludeFromDescription();
        return app;
    }

    private static bool IsHousekeeping(PathString path) =>
        path.StartsWithSegments("/metrics") || path.StartsWithSegments("/health") || path.StartsWithSegments("/v1/dashboard")
        || path.StartsWithSegments("/openapi") || path.StartsWithSegments("/swagger") || path == "/" || path.StartsWithSegments("/dashboard");

    private static string DefaultServiceName(string applicationName) =>
        applicationName.EndsWith("Service", StringComparison.Ordinal)
            ? $"{applicationName[..^"Service".Length].ToLowerInvariant()}-service"
            : applicationName.ToLowerInvariant();
}

/// <summary>
/// Re-reads the few figures the gauges need from the database every couple of seconds and caches them in
/// <see cref="TwoPhaseMetrics"/>: a scrape, however frequent, never reaches the database.
/// </summary>
internal sealed class TelemetryRefresher(
    IServiceProvider services,
    TwoPhaseMetrics metrics,
    TimeProvider time,
    IOptions<TelemetryOptions> options,
    ILogger<TelemetryRefresher> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var registered = services.GetRequiredService<IServiceProviderIsService>();
        var coordinator = registered.IsService(typeof(TwoPhaseCoordinator));
        var participant = registered.IsService(typeof(LedgerParticipant));
        if (!coordinator && !participant)
        {
            return;
        }

        var db = services.GetRequiredService<Database>();
        var inDoubtAfter = TimeSpan.FromMilliseconds(services.GetService<IOptions<ParticipantOptions>>()?.Value.InDoubtAfterMs ?? new ParticipantOptions().InDoubtAfterMs);
        var failing = false;
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(options.Value.RefreshIntervalMs), time);
        do
        {
            try
            {
                var now = time.GetUtcNow();
                if (coordinator)
                {
                    var unfinished = await Observation.UnfinishedAsync(db, stoppingToken);
                    metrics.ReportUnfinished(unfinished.Count, AgeSeconds(unfinished.Oldest, now));
                }

                if (participant)
                {
                    var prepared = await Observation.PreparedAsync(db, now - inDoubtAfter, stoppingToken);
                    metrics.ReportPrepared(prepared.Count, prepared.InDoubt, AgeSeconds(prepared.Oldest, now));
                }

                failing = false;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Once per outage, not every two seconds: the readiness probe reports the database anyway.
                if (!failing)
                {
                    ObservabilityLog.TelemetryRefreshFailed(logger, e);
                }

                failing = true;
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    private static double AgeSeconds(DateTimeOffset? oldest, DateTimeOffset now) =>
        oldest is { } at ? Math.Max(0, Math.Round((now - at).TotalSeconds, 3)) : 0;
}
