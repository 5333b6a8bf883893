using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace TwoPhase.AspNetCore;

/// <summary>What a TwoPhase route group serves, which decides who may call it.</summary>
internal enum TwoPhaseGroup
{
    /// <summary>The 2PC messages and views: the shared secret.</summary>
    Protocol,

    /// <summary>The operator's views and actions: the shared secret.</summary>
    Admin,

    /// <summary>The old protocol: the secret, unless the operator allows it unauthenticated (<see cref="SecretGuard"/>).</summary>
    Legacy,

    /// <summary>Liveness and readiness probes: no secret.</summary>
    Health,

    /// <summary>
    /// The coordinator's decision query: no secret. Anyone may learn a transaction's outcome (docs/security.md);
    /// an in-doubt participant whose secret is being rotated must still reach it.
    /// </summary>
    DecisionQuery,
}

/// <summary>
/// TwoPhase's route groups. Everything TwoPhase needs around its endpoints is applied here, to the group only, so the
/// host's other endpoints keep their own body limits, timeouts, JSON and error handling, and the library needs no
/// middleware in the host's pipeline (no <c>UseExceptionHandler</c>, <c>UseRequestTimeouts</c>, Kestrel limits or
/// <c>JsonOptions</c> of the host's).
/// </summary>
internal static class RouteGroups
{
    /// <summary>
    /// A group under <paramref name="prefix"/> whose endpoints run, in this order: 413 for a declared body over
    /// <c>TwoPhase:MaxBodyBytes</c> (also set as the request's body limit, and as endpoint metadata), the secret check of
    /// <paramref name="kind"/> (401), the handler within <c>TwoPhase:RequestTimeoutMs</c> (504), a problem detail for an
    /// exception (500/503 without internals, a bad request's own 4xx), and JSON written with the library's own
    /// <see cref="JsonSerializerOptions"/>, never the host's.
    /// </summary>
    internal static RouteGroupBuilder MapTwoPhaseGroup(this IEndpointRouteBuilder endpoints, string prefix, TwoPhaseGroup kind)
    {
        var group = endpoints.MapGroup(prefix);
        var maxBody = endpoints.ServiceProvider.GetRequiredService<IOptions<TwoPhaseOptions>>().Value.MaxBodyBytes;
        group.WithMetadata(new BodyLimit(maxBody));
        // Wrapping the endpoint's delegate (not an endpoint filter) runs this before parameter binding reads the
        // body, and turns an exception of binding into a problem detail as well.
        ((IEndpointConventionBuilder)group).Add(endpoint =>
        {
            var handler = endpoint.RequestDelegate ?? throw new InvalidOperationException($"The endpoint {endpoint.DisplayName} has no request delegate.");
            endpoint.RequestDelegate = context => GroupPipeline.InvokeAsync(context, handler, kind);
        });
        return group;
    }

    /// <summary>The request body limit as endpoint metadata: routing applies it to the request, Kestrel's global one is not needed.</summary>
    private sealed class BodyLimit(long max) : IRequestSizeLimitMetadata
    {
        public long? MaxRequestBodySize => max;
    }
}

/// <summary>What runs around each endpoint of a TwoPhase group (<see cref="RouteGroups.MapTwoPhaseGroup"/>).</summary>
internal static class GroupPipeline
{
    public static async Task InvokeAsync(HttpContext context, RequestDelegate handler, TwoPhaseGroup kind)
    {
        var hostServices = context.RequestServices;
        var hostAborted = context.RequestAborted;
        var options = hostServices.GetRequiredService<IOptions<TwoPhaseOptions>>().Value;
        var time = hostServices.GetRequiredService<TimeProvider>();
        // The library's JSON and problem details for everything written below, whatever the host configured.
        context.RequestServices = new LibraryServices(hostServices);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(options.RequestTimeoutMs), time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(hostAborted, timeout.Token);
        try
        {
            if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
            {
                limit.MaxRequestBodySize = options.MaxBodyBytes;
            }

            // An oversized body is refused before anyone asks who sent it: no credentials are read for it.
            if (await TwoPhaseBodyLimit.RefuseOversizedAsync(context, options.MaxBodyBytes))
            {
                return;
            }

            if (kind is not (TwoPhaseGroup.Health or TwoPhaseGroup.DecisionQuery)
                && hostServices.GetRequiredService<SecretGuard>().Check(context.Request, legacy: kind == TwoPhaseGroup.Legacy) is { } refused)
            {
                await refused.ExecuteAsync(context);
                return;
            }

            context.RequestAborted = linked.Token;
            await handler(context);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !hostAborted.IsCancellationRequested && !context.Response.HasStarted)
        {
            context.Response.Clear();
            await Problems.Status(StatusCodes.Status504GatewayTimeout, "The request took too long.", $"The limit is {options.RequestTimeoutMs} ms.").ExecuteAsync(context);
        }
        catch (Exception e) when (!context.Response.HasStarted && !(e is OperationCanceledException && hostAborted.IsCancellationRequested))
        {
            var logger = hostServices.GetRequiredService<ILoggerFactory>().CreateLogger("TwoPhase.Endpoints");
            context.Response.Clear();
            context.RequestAborted = hostAborted;
            await TwoPhaseExceptionHandler.Answer(context, e, logger).ExecuteAsync(context);
        }
        finally
        {
            // The host's middleware around the endpoint sees its own services and token again.
            context.RequestServices = hostServices;
            context.RequestAborted = hostAborted;
        }
    }

    /// <summary>
    /// The request's services as the host registered them, except the two that shape what TwoPhase writes: the JSON
    /// options are the library's, and there is no problem-details service, so problem details are written by the
    /// results themselves with those options (the host's customization of problem details is for its own endpoints).
    /// </summary>
    private sealed class LibraryServices(IServiceProvider inner) : IServiceProvider, IKeyedServiceProvider, ISupportRequiredService
    {
        public object? GetService(Type serviceType) =>
            serviceType == typeof(IOptions<JsonOptions>) ? TwoPhaseJson.Http
            : serviceType == typeof(IProblemDetailsService) ? null
            : inner.GetService(serviceType);

        public object GetRequiredService(Type serviceType) =>
            GetService(serviceType) ?? throw new InvalidOperationException($"No service for type '{serviceType}' has been registered.");

        public object? GetKeyedService(Type serviceType, object? serviceKey) =>
            inner is IKeyedServiceProvider keyed ? keyed.GetKeyedService(serviceType, serviceKey) : null;

        public object GetRequiredKeyedService(Type serviceType, object? serviceKey) =>
            inner is IKeyedServiceProvider keyed
                ? keyed.GetRequiredKeyedService(serviceType, serviceKey)
                : throw new InvalidOperationException("The host's service provider does not support keyed services.");
    }
}

/// <summary>The JSON TwoPhase reads and writes on the wire: the web defaults (camelCase), independent of the host's settings.</summary>
internal static class TwoPhaseJson
{
    public static IOptions<JsonOptions> Http { get; } = Microsoft.Extensions.Options.Options.Create(new JsonOptions());

    public static JsonSerializerOptions Options => Http.Value.SerializerOptions;
}
