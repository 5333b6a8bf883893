using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace TwoPhase.AspNetCore;

/// <summary>Shared-secret authentication between the services: <c>Authorization: Bearer &lt;secret&gt;</c>.</summary>
public static class SecretAuth
{
    /// <summary>Protocol and admin endpoints: 401 unless the caller proves the configured secret.</summary>
    public static TBuilder RequireTwoPhaseSecret<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter(async (context, next) =>
        {
            var options = context.HttpContext.RequestServices.GetRequiredService<IOptions<TwoPhaseOptions>>().Value;
            return IsAuthorized(context.HttpContext.Request, options.Secret)
                ? await next(context)
                : Problems.Status(StatusCodes.Status401Unauthorized, "Unauthorized.", "Protocol and admin endpoints need 'Authorization: Bearer <secret>'.");
        });

    public static bool IsAuthorized(HttpRequest request, string? secret)
    {
        if (string.IsNullOrEmpty(secret))
        {
            return true;
        }

        var header = request.Headers.Authorization.ToString();
        const string prefix = "Bearer ";
        if (!header.StartsWith(prefix, StringComparison.Ordinal))
        {
            return false;
        }

        // Constant time: the comparison must not tell an attacker how many leading bytes were right.
        var given = Encoding.UTF8.GetBytes(header[prefix.Length..].Trim());
        var expected = Encoding.UTF8.GetBytes(secret);
        return CryptographicOperations.FixedTimeEquals(SHA256.HashData(given), SHA256.HashData(expected));
    }
}
