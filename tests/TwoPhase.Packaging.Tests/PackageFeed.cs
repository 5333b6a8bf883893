using System.IO.Compression;
using System.Xml.Linq;

namespace TwoPhase.Packaging.Tests;

/// <summary>
/// The local folder feed scripts/pack.sh fills: <c>TWOPHASE_PACKAGE_FEED</c> (scripts/test.sh exports it), else the
/// repository's artifacts/packages. An empty or missing feed fails the test with what to run; never a silent pass.
/// </summary>
internal static class PackageFeed
{
    public const string Variable = "TWOPHASE_PACKAGE_FEED";

    /// <summary>The library packages every release has; a packable project added later is checked too, by finding it here.</summary>
    public static readonly string[] Expected = ["TwoPhase.Protocol", "TwoPhase.Persistence", "TwoPhase.AspNetCore", "TwoPhase.AspNetCore.Observability"];

    public static string Folder
    {
        get
        {
            var folder = Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } configured
                ? configured
                : Path.Combine(RepositoryRoot, "artifacts", "packages");
            if (!Directory.Exists(folder) || Directory.GetFiles(folder, "*.nupkg").Length == 0)
            {
                throw new InvalidOperationException($"No packages in {folder}: run `bash scripts/pack.sh` first (scripts/test.sh does), or set {Variable}.");
            }

            return Path.GetFullPath(folder);
        }
    }

    public static string RepositoryRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "TwoPhase.slnx")))
                {
                    return dir.FullName;
                }
            }

            throw new InvalidOperationException($"No TwoPhase.slnx above {AppContext.BaseDirectory}.");
        }
    }

    /// <summary>Every package in the feed, read from its own .nuspec.</summary>
    public static IReadOnlyList<Package> Packages() =>
        Directory.GetFiles(Folder, "*.nupkg").Order(StringComparer.Ordinal).Select(Package.Read).Where(p => !p.IsTool).ToArray();

    /// <summary>The packable projects of the repository, by their own declaration (as scripts/pack.sh finds them).</summary>
    public static IReadOnlyList<string> PackableProjects() =>
        PackableProjectFiles().Select(Path.GetFileNameWithoutExtension).Order(StringComparer.Ordinal).ToArray()!;

    /// <summary>The folders of the packable projects, where each keeps its README and PublicAPI files.</summary>
    public static IReadOnlyList<string> PackableProjectFolders() =>
        PackableProjectFiles().Select(Path.GetDirectoryName).ToArray()!;

    private static IEnumerable<string> PackableProjectFiles() =>
        new[] { "src", "tests" }
            .SelectMany(top => Directory.EnumerateFiles(Path.Combine(RepositoryRoot, top), "*.csproj", SearchOption.AllDirectories))
            .Where(path => !path.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Where(path => File.ReadAllText(path).Contains("<IsPackable>true</IsPackable>", StringComparison.Ordinal))
            // The CLI is a .NET tool: a program in a package, with no library API (its own test installs and runs it).
            .Where(path => !File.ReadAllText(path).Contains("<PackAsTool>true</PackAsTool>", StringComparison.Ordinal));
}

/// <summary>One .nupkg: its path, its nuspec's metadata and the names of the files it holds.</summary>
internal sealed record Package(string Path, XElement Metadata, IReadOnlyList<string> Files)
{
    public string Id => Value("id");

    public string Version => Value("version");

    /// <summary>A .NET tool package (packageType DotnetTool), not a library.</summary>
    public bool IsTool => Element("packageTypes")?.Elements().Any(t => (string?)t.Attribute("name") == "DotnetTool") ?? false;

    public string Value(string element) => Metadata.Elements().FirstOrDefault(e => e.Name.LocalName == element)?.Value ?? "";

    public XElement? Element(string element) => Metadata.Elements().FirstOrDefault(e => e.Name.LocalName == element);

    /// <summary>Each dependency as (id, version range) for every target framework.</summary>
    public IReadOnlyList<(string Id, string Version)> Dependencies =>
        Metadata.Descendants().Where(e => e.Name.LocalName == "dependency")
            .Select(e => ((string?)e.Attribute("id") ?? "", (string?)e.Attribute("version") ?? ""))
            .ToArray();

    public static Package Read(string path)
    {
        using var zip = ZipFile.OpenRead(path);
        var nuspec = zip.Entries.Single(e => !e.FullName.Contains('/') && e.FullName.EndsWith(".nuspec", StringComparison.Ordinal));
        using var stream = nuspec.Open();
        var metadata = XDocument.Load(stream).Root!.Elements().Single(e => e.Name.LocalName == "metadata");
        return new Package(path, metadata, zip.Entries.Select(e => e.FullName).ToArray());
    }
}
