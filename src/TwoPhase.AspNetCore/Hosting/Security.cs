using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace TwoPhase.AspNetCore;

/// <summary>Where the secret shared by the services comes from (docs/security.md).</summary>
public static class ProtectionExtensions
{
    /// <summary>The environment variable that supplies <see cref="TwoPhaseOptions.Secret"/> when configuration does not.</summary>
    public const string SecretVariable = "TWOPHASE_SECRET";

    /// <summary>
    /// Auth between services: the secret's resolution and the guard that checks it. Nothing here touches the host's
    /// pipeline; TwoPhase's own route groups apply the guard, the body limit, the timeout and problem details
    /// (<see cref="RouteGroups"/>).
    /// </summary>
    internal static IServiceCollection AddTwoPhaseProtection(this IServiceCollection services)
    {
        // Secure by default: configured, else TWOPHASE_SECRET, else the owner-only cookie file (SecretCookie).
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IPostConfigureOptions<TwoPhaseOptions>, SecretResolver>());
        services.TryAddSingleton<ListenScope>();
        services.TryAddSingleton<SecretGuard>();
        return services;
    }
}

/// <summary>
/// Whether this service listens on loopback only, read from the addresses the server really bound
/// (so <c>--urls</c>, <c>ASPNETCORE_URLS</c> and <c>Kestrel:Endpoints</c> all count). Read on first use,
/// which is after the server has started.
/// </summary>
internal sealed class ListenScope(IServer server)
{
    private bool? _loopbackOnly;

    public bool LoopbackOnly => _loopbackOnly ??= IsLoopbackOnly(server.Features.Get<IServerAddressesFeature>()?.Addresses ?? []);

    /// <summary>True when every address is loopback; a wildcard (<c>+</c>, <c>*</c>, <c>0.0.0.0</c>, <c>[::]</c>) or anything unreadable is not.</summary>
    public static bool IsLoopbackOnly(IEnumerable<string> addresses)
    {
        var any = false;
        foreach (var address in addresses)
        {
            any = true;
            // "http://+:80" and "http://*:80" are not valid URIs; they are wildcards, so not loopback.
            if (!Uri.TryCreate(address.Replace("://+", "://wildcard.invalid").Replace("://*", "://wildcard.invalid"), UriKind.Absolute, out var uri))
            {
                return false;
            }

            var host = uri.Host.Trim('[', ']');
            var loopback = host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
                || (IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip));
            if (!loopback)
            {
                return false;
            }
        }

        return any;
    }
}

/// <summary>
/// Who may call a guarded endpoint (docs/security.md): callers proving the secret (configured, or the generated
/// one in the cookie file, <see cref="SecretCookie"/>), plus, for the old protocol, anyone when
/// <see cref="ParticipantOptions.AllowUnauthenticatedLegacy"/> is on (default: on when listening on loopback only).
/// </summary>
internal sealed class SecretGuard(IOptions<TwoPhaseOptions> shared, IOptions<ParticipantOptions> participant, ListenScope scope)
{
    /// <summary>Null when the caller may proceed; else the 401 to answer.</summary>
    public ProblemHttpResult? Check(HttpRequest request, bool legacy)
    {
        var secret = shared.Value.Secret;
        if (legacy && (participant.Value.AllowUnauthenticatedLegacy ?? scope.LoopbackOnly))
        {
            return null;
        }

        // The options always hold a secret once resolved (SecretResolver); should a host have replaced them with
        // none, nobody gets in: an endpoint is never open by omission.
        return !string.IsNullOrEmpty(secret) && SecretAuth.IsAuthorized(request, secret)
            ? null
            : Unauthorized("Protocol and admin endpoints need 'Authorization: Bearer <secret>'.");
    }

    private static ProblemHttpResult Unauthorized(string detail) =>
        Problems.Status(StatusCodes.Status401Unauthorized, "Unauthorized.", detail);
}

/// <summary>JSON settings for request bodies whose shape we own: no unknown members, no duplicate keys, no numbers in strings.</summary>
public static class StrictJson
{
    /// <summary>TwoPhase's wire JSON: camelCase, and unknown members refused, so a misspelt field is a 400, not a silent default.</summary>
    public static JsonSerializerOptions Options { get; } = Create();

    private static JsonSerializerOptions Create()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
            NumberHandling = JsonNumberHandling.Strict,
            AllowDuplicateProperties = false,
            MaxDepth = 16,
        };
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}

/// <summary>
/// An exception becomes a problem detail without details (nothing about the internals leaks), and a bad request the
/// server itself noticed keeps its 4xx. TwoPhase's route groups apply it to their own endpoints (<see cref="RouteGroups"/>);
/// a host may opt in for its own with <c>services.AddExceptionHandler&lt;TwoPhaseExceptionHandler&gt;()</c> and
/// <c>app.UseExceptionHandler()</c>, as the reference services do. TwoPhase never installs it for the host.
/// </summary>
public sealed class TwoPhaseExceptionHandler(ILogger<TwoPhaseExceptionHandler> logger) : IExceptionHandler
{
    /// <summary>The status and title <paramref name="exception"/> is answered with.</summary>
    public static (int Status, string Title) Classify(HttpContext httpContext, Exception exception)
    {
        ArgumentNullException.ThrowIfNull(httpContext);
        return exception switch
        {
            BadHttpRequestException bad => (bad.StatusCode, "Bad request."),
            OperationCanceledException when httpContext.RequestAborted.IsCancellationRequested => (StatusCodes.Status499ClientClosedRequest, "Request cancelled."),
            // The database is down or restarting (seen with PostgreSQL restarted -m immediate under load):
            // a transient condition the caller should retry, not a bug.
            System.Data.Common.DbException or TimeoutException => (StatusCodes.Status503ServiceUnavailable, "The database is unavailable; retry shortly."),
            _ => (StatusCodes.Status500InternalServerError, "An unexpected error occurred."),
        };
    }

    /// <summary>Logs a server-side failure (a handled exception is not logged by the framework) and returns the problem to answer.</summary>
    public static ProblemHttpResult Answer(HttpContext httpContext, Exception exception, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(httpContext);
        var (status, title) = Classify(httpContext, exception);
        if (status >= StatusCodes.Status500InternalServerError)
        {
            // Without this line a 500 would leave no trace.
            Log.UnhandledException(logger, httpContext.Request.Method, httpContext.Request.Path, exception);
        }

        if (status == StatusCodes.Status503ServiceUnavailable)
        {
            httpContext.Response.Headers.RetryAfter = "1";
        }

        // No exception in the body: the log has it, the caller gets nothing about the internals.
        return Problems.Status(status, title);
    }

    /// <inheritdoc />
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        await Answer(httpContext, exception, logger).ExecuteAsync(httpContext);
        return true;
    }
}

/// <summary>The body limit of TwoPhase's endpoints, also usable by a host for its own (the reference services do).</summary>
public static class TwoPhaseBodyLimit
{
    /// <summary>
    /// True when the request declared a body over <paramref name="max"/> bytes and was answered 413 (a problem detail).
    /// The connection is closed after the answer; a body up to four times the limit is read and dropped first, because
    /// closing a socket with unread bytes resets it and the client would lose the 413 (beyond that, the client loses it).
    /// </summary>
    public static async Task<bool> RefuseOversizedAsync(HttpContext context, int max)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.Request.ContentLength is not { } length || length <= max)
        {
            return false;
        }

        context.Response.Headers.Connection = "close";
        if (length <= 4L * max && context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = 4L * max;
            try
            {
                await context.Request.Body.CopyToAsync(Stream.Null, context.RequestAborted);
            }
            catch (Exception e) when (e is BadHttpRequestException or IOException or OperationCanceledException)
            {
                // The client went away or sent less than it declared: it will not read the answer either.
            }
        }

        await Problems.Status(StatusCodes.Status413PayloadTooLarge, "Request body too large.", $"The limit is {max} bytes.").ExecuteAsync(context);
        return true;
    }
}
