using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace TwoPhase.AspNetCore;

/// <summary>
/// The coordinator group's identity on the wire (docs/protocol.md, "Coordinator groups"): the rules both sides check, the
/// header and member names, and the decision query's "not this group" answer. One place, so the coordinator's options,
/// the participant's PREPARE paths and the decision query agree.
/// </summary>
internal static partial class CoordinatorGroups
{
    /// <summary>The group of a coordinator that names none.</summary>
    public const string Default = "default";

    /// <summary>Longest group name.</summary>
    public const int MaxGroupLength = 64;

    /// <summary>Longest advertised URL.</summary>
    public const int MaxUrlLength = 2048;

    /// <summary>Request header of a single PREPARE naming the coordinator group.</summary>
    public const string GroupHeader = "TwoPhase-Coordinator-Group";

    /// <summary>Request header of a single PREPARE naming where the group answers the decision query.</summary>
    public const string UrlHeader = "TwoPhase-Coordinator-Url";

    /// <summary>The decision query's parameter naming the group the asker believes issued the transaction.</summary>
    public const string QueryParameter = "group";

    /// <summary>The problem type of the decision query's 404 for an id another group issued.</summary>
    public const string NotThisGroupType = "urn:twophase:problems/not-this-group";

    /// <summary>The last segment of <see cref="NotThisGroupType"/>, by which an asker recognises the answer.</summary>
    public const string NotThisGroupSuffix = "not-this-group";

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex GroupPattern();

    /// <summary>Null when <paramref name="group"/> is a valid group name; else why not.</summary>
    public static string? CheckGroup(string? group) =>
        group is not null && GroupPattern().IsMatch(group)
            ? null
            : $"must be 1-{MaxGroupLength} characters of letters, digits and . _ - starting with a letter or digit";

    /// <summary>Null when <paramref name="url"/> is an absolute http or https URL of at most <see cref="MaxUrlLength"/> characters; else why not.</summary>
    public static string? CheckUrl(string? url) =>
        url is { Length: > 0 and <= MaxUrlLength }
        && Uri.TryCreate(url, UriKind.Absolute, out var uri)
        && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
        && string.IsNullOrEmpty(uri.UserInfo)
        && !string.IsNullOrEmpty(uri.Host)
            ? null
            : $"must be an absolute http or https URL without user info, at most {MaxUrlLength} characters";

    /// <summary>
    /// The coordinator identity a PREPARE carries, checked: a 400 naming <paramref name="groupField"/> or
    /// <paramref name="urlField"/> when either is present and invalid. A URL without a group is refused too: it would be
    /// kept without saying which group to ask there.
    /// </summary>
    public static ProblemHttpResult? Check(string? group, string? url, string groupField, string urlField)
    {
        if (group is not null && CheckGroup(group) is { } badGroup)
        {
            return Problems.Invalid(groupField, badGroup);
        }

        if (url is not null && CheckUrl(url) is { } badUrl)
        {
            return Problems.Invalid(urlField, badUrl);
        }

        return group is null && url is not null ? Problems.Invalid(groupField, $"is required with {urlField}") : null;
    }

    /// <summary>The decision query's 404 for an id it does not know, asked about as another group's.</summary>
    public static ProblemHttpResult NotThisGroup(string id, string asked, string mine) =>
        TypedResults.Problem(
            type: NotThisGroupType,
            title: "Not this coordinator group's transaction.",
            detail: $"Transaction '{id}' is unknown to coordinator group '{mine}'; it was asked about as group '{asked}'s, which this coordinator never issued ids for, so it cannot presume it aborted. Ask group '{asked}'.",
            statusCode: StatusCodes.Status404NotFound);
}

/// <summary>This coordinator's group identity, as its transports send it with every PREPARE.</summary>
/// <param name="Group">The group (<see cref="CoordinatorOptions.Group"/>).</param>
/// <param name="Url">Where participants ask it (<see cref="CoordinatorOptions.AdvertisedUrl"/>); null: unsaid.</param>
internal sealed record CoordinatorIdentity(string Group, string? Url)
{
    /// <summary>Default group, no URL: what a transport made without options sends.</summary>
    public static CoordinatorIdentity Unnamed { get; } = new(CoordinatorGroups.Default, null);
}
