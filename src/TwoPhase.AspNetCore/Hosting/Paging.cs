using Microsoft.AspNetCore.Http.HttpResults;

namespace TwoPhase.AspNetCore;

/// <summary>Paging rules shared by every listing.</summary>
public static class Paging
{
    public const int DefaultLimit = 100;
    public const int MaxLimit = 1000;

    public static ProblemHttpResult? Check(string? after, int? limit) =>
        limit is < 1 or > MaxLimit ? Problems.Invalid("limit", $"must be between 1 and {MaxLimit}")
        // An empty cursor (`?after=`) means from the start, as a missing one does.
        : !string.IsNullOrEmpty(after) && !Problems.IsValidId(after) ? Problems.Invalid("after", "must be an id")
        : null;
}
