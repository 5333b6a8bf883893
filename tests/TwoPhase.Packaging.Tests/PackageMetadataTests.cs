namespace TwoPhase.Packaging.Tests;

/// <summary>What a feed shows a user before installing: each package's own metadata, read from the packed .nupkg.</summary>
public sealed class PackageMetadataTests
{
    [Fact]
    public void Feed_HoldsOnePackagePerPackableProject()
    {
        var ids = PackageFeed.Packages().Select(p => p.Id).Order(StringComparer.Ordinal).ToArray();

        Assert.Equal(PackageFeed.PackableProjects(), ids);
        Assert.All(PackageFeed.Expected, expected => Assert.Contains(expected, ids));
    }

    [Fact]
    public void EveryPackableProject_HasReadmeAndPublicApiFiles()
    {
        var missing = PackageFeed.PackableProjectFolders()
            .SelectMany(folder => new[] { "README.md", "PublicAPI.Shipped.txt", "PublicAPI.Unshipped.txt" }
                .Where(file => !File.Exists(Path.Combine(folder, file)))
                .Select(file => $"{Path.GetFileName(folder)}: no {file}"))
            .ToArray();

        // Without them the package has no README and its API is not frozen (Directory.Build.targets, docs/packages.md).
        Assert.True(missing.Length == 0, string.Join(Environment.NewLine, missing));
    }

    [Fact]
    public void EveryPackage_HasIdVersionLicenceReadmeRepositoryDocsAndSymbols()
    {
        var packages = PackageFeed.Packages();
        var release = packages.Single(p => p.Id == "TwoPhase.AspNetCore").Version;
        var problems = new List<string>();
        foreach (var package in packages)
        {
            void Check(bool ok, string what)
            {
                if (!ok)
                {
                    problems.Add($"{package.Id}: {what}");
                }
            }

            Check(Path.GetFileName(package.Path) == $"{package.Id}.{package.Version}.nupkg", "file name is not <id>.<version>.nupkg");
            // One release version; a package that depends on a prerelease carries a suffix of its own (0.9.0-beta).
            Check(package.Version == release || package.Version.StartsWith(release + "-", StringComparison.Ordinal), $"version {package.Version} is not the release's {release}");
            Check(package.Value("description").Length > 40, "no description");
            Check(package.Value("authors").Length > 0, "no authors");
            var licence = package.Element("license");
            Check((string?)licence?.Attribute("type") == "expression" && licence?.Value == "MIT", "licence is not the MIT expression");
            var readme = package.Value("readme");
            Check(readme.Length > 0 && package.Files.Contains(readme), "no packed README");
            var repository = package.Element("repository");
            Check((string?)repository?.Attribute("type") == "git" && ((string?)repository?.Attribute("url"))?.StartsWith("https://", StringComparison.Ordinal) == true, "no repository url");
            Check(package.Files.Contains($"lib/net10.0/{package.Id}.dll"), "no lib/net10.0 assembly");
            Check(package.Files.Contains($"lib/net10.0/{package.Id}.xml"), "no XML documentation beside the assembly");
            Check(File.Exists(Path.ChangeExtension(package.Path, ".snupkg")), "no .snupkg beside it");
        }

        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    [Fact]
    public void RuntimePackage_AndTheTwoPhasePackagesItNeeds_DependOnNoPrerelease()
    {
        var byId = PackageFeed.Packages().ToDictionary(p => p.Id);
        var prerelease = new List<string>();
        var seen = new HashSet<string>();
        var pending = new Stack<string>(["TwoPhase.AspNetCore"]);
        while (pending.TryPop(out var id))
        {
            if (!seen.Add(id))
            {
                continue;
            }

            var package = byId[id];
            if (package.Version.Contains('-', StringComparison.Ordinal))
            {
                prerelease.Add($"{id} {package.Version}");
            }

            foreach (var (dependency, version) in package.Dependencies)
            {
                if (version.Contains('-', StringComparison.Ordinal))
                {
                    prerelease.Add($"{id} -> {dependency} {version}");
                }

                if (byId.ContainsKey(dependency))
                {
                    pending.Push(dependency);
                }
            }
        }

        // The packages themselves; ConsumerTests checks the whole restored closure, third-party packages included.
        Assert.Equal(["TwoPhase.AspNetCore", "TwoPhase.Persistence", "TwoPhase.Protocol"], seen.Order(StringComparer.Ordinal));
        Assert.True(prerelease.Count == 0, string.Join(Environment.NewLine, prerelease));
    }
}
