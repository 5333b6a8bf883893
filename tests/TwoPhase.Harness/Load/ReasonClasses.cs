using System.Text.RegularExpressions;

using Reference.Contracts;
using TwoPhase.AspNetCore;

namespace TwoPhase.Harness.Load;

/// <summary>Groups abort reasons into a few classes for the summary ("delivery no: no free courier").</summary>
public static partial class ReasonClasses
{
    private const int MaxLength = 80;

    /// <summary>Which participants did not vote yes and why, with ids and numbers blanked so equal causes group.</summary>
    public static string Classify(OrderView order)
    {
        ArgumentNullException.ThrowIfNull(order);
        var parts = (order.Votes ?? new Dictionary<string, VoteView>())
            .Where(v => !string.Equals(v.Value.Vote, "yes", StringComparison.OrdinalIgnoreCase))
            .OrderBy(v => v.Key, StringComparer.Ordinal)
            .Select(v => $"{v.Key} {v.Value.Vote ?? "none"}: {Normalize(v.Value.Reason ?? "no reason given")}")
            .ToList();
        return parts.Count > 0 ? string.Join(" + ", parts) : Normalize(order.Reason ?? "no reason given");
    }

    /// <summary>Blanks GUID-like ids and numbers (not HTTP status codes), keeps quoted SKUs (which scarce product ran out is the point).</summary>
    public static string Normalize(string reason)
    {
        ArgumentNullException.ThrowIfNull(reason);
        var text = HexId().Replace(reason, "<id>");
        text = Number().Replace(text, "#");
        text = text.Trim();
        return text.Length <= MaxLength ? text : text[..MaxLength] + "...";
    }

    [GeneratedRegex(@"\b[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\b")]
    private static partial Regex HexId();

    // HTTP status codes stay: "answered HTTP 500" and "HTTP 409" are different causes.
    [GeneratedRegex(@"(?<!HTTP )\b\d+\b")]
    private static partial Regex Number();
}
