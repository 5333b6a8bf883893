using System.Reflection;

namespace TwoPhase.Harness;

/// <summary>Finds the repository the services are built from.</summary>
public static class RepoLocator
{
    public const string SolutionFile = "TwoPhase.slnx";

    /// <summary>
    /// Walks up from each start folder (by default the current directory, then the CLI's own
    /// folder) to the first one holding TwoPhase.slnx, or failing that src/OrderService.
    /// </summary>
    public static string? FindRepoRoot(params string[] startFolders)
    {
        var starts = startFolders.Length > 0 ? startFolders : [Directory.GetCurrentDirectory(), AppContext.BaseDirectory];
        foreach (var marker in new Func<DirectoryInfo, bool>[]
                 {
                     d => File.Exists(Path.Combine(d.FullName, SolutionFile)),
                     d => File.Exists(Path.Combine(d.FullName, "src", "OrderService", "OrderService.csproj")),
                 })
        {
            foreach (var start in starts)
            {
                for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                {
                    if (marker(dir))
                    {
                        return dir.FullName;
                    }
                }
            }
        }

        return null;
    }

    /// <summary>The configuration this CLI was built in; the services are built and run in the same one.</summary>
    public static string BuildConfiguration { get; } =
        typeof(RepoLocator).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration is { Length: > 0 } c ? c : "Debug";
}
