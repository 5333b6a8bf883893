using System.Text.Json;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.Http.Timeouts;
using TwoPhase.AspNetCore;

namespace TwoPhase.Reference;

/// <summary>
/// What the three reference services set for their whole host, which the library never does for a host: where they
/// listen, Kestrel's limits, the JSON policy and error handling of their own endpoints. Compiled into each service
/// (<c>&lt;Compile Include="../Shared/ReferenceHost.cs"/&gt;</c>), so it is one copy and no part of the library.
/// </summary>
internal static class ReferenceHost
{
    /// <summary>
    /// A builder whose content root is the binary folder (appsettings.json and relative SQLite files are found whatever
    /// the working directory), listening on <paramref name="defaultUrl"/> (loopback, DESIGN §5) unless told otherwise.
    /// </summary>
    public static WebApplicationBuilder CreateBuilder(string[] args, string defaultUrl)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        if (!ListensWhereTold(builder.Configuration))
        {
            builder.WebHost.UseUrls(defaultUrl);
        }

        var shared = builder.Configuration.GetSection(TwoPhaseOptions.SectionName).Get<TwoPhaseOptions>() ?? new TwoPhaseOptions();
        builder.WebHost.ConfigureKestrel(k =>
        {
            // The services' own endpoints (orders, products, couriers) take the same bodies as the protocol's.
            k.Limits.MaxRequestBodySize = shared.MaxBodyBytes;
            k.Limits.MaxRequestHeadersTotalSize = 32 * 1024;
            k.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(10);
            k.Limits.MaxConcurrentConnections = 10_000;
        });
        builder.Services.Configure<JsonOptions>(o => o.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.CamelCase);
        builder.Services.AddProblemDetails();
        builder.Services.AddExceptionHandler<TwoPhaseExceptionHandler>();
        builder.Services.AddRequestTimeouts(o => o.DefaultPolicy = new RequestTimeoutPolicy
        {
            Timeout = TimeSpan.FromMilliseconds(shared.RequestTimeoutMs),
            TimeoutStatusCode = StatusCodes.Status504GatewayTimeout,
        });
        return builder;
    }

    /// <summary>
    /// The services' own pipeline: 413 for an oversized body before auth or routing, a problem detail for every error
    /// (exceptions, and bare status codes such as routing's 404), and a bounded time for every request.
    /// </summary>
    public static WebApplication UseReferenceHost(this WebApplication app)
    {
        var maxBody = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<TwoPhaseOptions>>().Value.MaxBodyBytes;
        app.Use(async (context, next) =>
        {
            if (!await TwoPhaseBodyLimit.RefuseOversizedAsync(context, maxBody))
            {
                await next(context);
            }
        });
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseRequestTimeouts();
        return app;
    }

    /// <summary>
    /// True when the operator said where to listen: <c>--urls</c>, <c>ASPNETCORE_URLS</c> or <c>Urls</c> (all the key
    /// <c>urls</c>), <c>ASPNETCORE_HTTP_PORTS</c>/<c>HTTPS_PORTS</c>, or Kestrel endpoints in configuration.
    /// </summary>
    private static bool ListensWhereTold(IConfiguration configuration) =>
        !string.IsNullOrEmpty(configuration[WebHostDefaults.ServerUrlsKey])
        || !string.IsNullOrEmpty(configuration[WebHostDefaults.HttpPortsKey])
        || !string.IsNullOrEmpty(configuration[WebHostDefaults.HttpsPortsKey])
        || configuration.GetSection("Kestrel:Endpoints").GetChildren().Any();
}
