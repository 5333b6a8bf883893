using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;

namespace TwoPhase.AspNetCore;

/// <summary>What a TwoPhase route group serves: the protocol, the operator's views, or the old protocol.</summary>
internal enum TwoPhaseGroup
{
    Protocol,
    Admin,
    Legacy,
}

/// <summary>
/// STUB for the roles branch (api-contract.md): the hosting branch owns this file and its real version, which applies the
/// group's body limit, timeout, secret check, problem details and JSON options. Until the merge, each caller keeps its
/// own secret check.
/// </summary>
internal static class RouteGroups
{
    internal static RouteGroupBuilder MapTwoPhaseGroup(this IEndpointRouteBuilder endpoints, string prefix, TwoPhaseGroup kind)
    {
        _ = kind;
        return endpoints.MapGroup(prefix);
    }
}
