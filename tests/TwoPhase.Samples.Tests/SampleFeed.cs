using System.Text.RegularExpressions;

namespace TwoPhase.Samples.Tests;

/// <summary>
/// The local package feed the samples restore from: <c>TWOPHASE_PACKAGE_FEED</c>, else the repository's
/// <c>artifacts/packages</c>, filled by <c>scripts/pack.sh</c>. A missing feed fails the run with instructions; the
/// samples are never built from project references instead.
/// </summary>
public sealed partial record SampleFeed(string Folder, string Version)
{
    public const string Variable = "TWOPHASE_PACKAGE_FEED";

    public static SampleFeed Locate(string repoRoot)
    {
        var folder = Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } configured
            ? Path.GetFullPath(configured)
            : Path.Combine(repoRoot, "artifacts", "packages");
        var packages = Directory.Exists(folder) ? Directory.GetFiles(folder, "TwoPhase.AspNetCore.*.nupkg") : [];
        var versions = packages
            .Select(p => PackageVersion().Match(Path.GetFileName(p)))
            .Where(m => m.Success)
            .Select(m => m.Groups["version"].Value)
            .ToList();
        if (versions.Count == 0)
        {
            throw new InvalidOperationException(
                $"The samples test builds samples/ from the TwoPhase packages, and found none in {folder} "
                + $"(no TwoPhase.AspNetCore.<version>.nupkg). Pack first: `bash scripts/pack.sh` (writes artifacts/packages), "
                + $"or set {Variable} to a folder holding the packages. .ci/run does this before the tests.");
        }

        if (versions.Distinct(StringComparer.Ordinal).Count() > 1)
        {
            throw new InvalidOperationException($"{folder} holds TwoPhase.AspNetCore in several versions ({string.Join(", ", versions)}); empty it and pack again.");
        }

        return new SampleFeed(folder, versions[0]);
    }

    [GeneratedRegex(@"^TwoPhase\.AspNetCore\.(?<version>\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?)\.nupkg$")]
    private static partial Regex PackageVersion();
}
