using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace TwoPhase.AspNetCore;

/// <summary>Shared-secret authentication between the services: <c>Authorization: Bearer &lt;secret&gt;</c>.</summary>
public static class SecretAuth
{
    /// <summary>Protocol and admin endpoints: 401 unless the caller may call them (see <see cref="SecretGuard"/>).</summary>
    public static TBuilder RequireTwoPhaseSecret<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder => builder.Guard(legacy: false);

    /// <summary>The old protocol: like <see cref="RequireTwoPhaseSecret{TBuilder}"/>, unless the operator allows it unauthenticated.</summary>
    public static TBuilder RequireTwoPhaseSecretForLegacy<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder => builder.Guard(legacy: true);

    private static TBuilder Guard<TBuilder>(this TBuilder builder, bool legacy)
        where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter(async (context, next) =>
            context.HttpContext.RequestServices.GetRequiredService<SecretGuard>().Check(context.HttpContext.Request, legacy) is { } refused
                ? refused
                : await next(context));

    /// <summary>True when the request carries <c>Authorization: Bearer &lt;secret&gt;</c>, or when no secret is configured.</summary>
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
