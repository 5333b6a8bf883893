using Microsoft.AspNetCore.Http.HttpResults;

namespace TwoPhase.AspNetCore;

/// <summary>Paging rules shared by every listing.</summary>
public static class Paging
{
    /// <summary>Rows a listing returns when the caller gives no limit.</summary>
    public const int DefaultLimit = 100;
    /// <summary>Most rows one listing page may return, so one request cannot read a whole table.</summary>
    public const int MaxLimit = 1000;

    /// <summary>Checks a listing's cursor and limit; null when both are fine, else the 400 to answer.</summary>
    public static ProblemHttpResult? Check(string? after, int? limit) =>
        limit is < 1 or > MaxLimit ? Problems.Invalid("limit", $"must be between 1 and {MaxLimit}")
        // An empty cursor (`?after=`) means from the start, as a missing one does.
        : !string.IsNullOrEmpty(after) && !Problems.IsValidId(after) ? Problems.Invalid("after", "must be an id")
        : null;
}
