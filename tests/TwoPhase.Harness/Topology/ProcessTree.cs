using System.Globalization;

namespace TwoPhase.Harness.Topology;

/// <summary>A process's descendants, from /proc (Linux), to pause a PostgreSQL server with all its backends.</summary>
internal static class ProcessTree
{
    /// <summary>Every live descendant of <paramref name="root"/>, children before grandchildren; bounded in depth and count.</summary>
    public static IReadOnlyList<int> Descendants(int root)
    {
        var parents = new Dictionary<int, List<int>>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            try
            {
                // pid (comm) state ppid ...: comm may hold spaces and parentheses, so parse after the last ')'.
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (rest.Length > 1 && int.TryParse(rest[1], CultureInfo.InvariantCulture, out var ppid))
                {
                    if (!parents.TryGetValue(ppid, out var children))
                    {
                        parents[ppid] = children = [];
                    }

                    children.Add(pid);
                }
            }
            catch (IOException)
            {
                // Exited while we looked.
            }
        }

        var found = new List<int>();
        var level = new List<int> { root };
        for (var depth = 0; depth < 10 && level.Count > 0 && found.Count < 10_000; depth++)
        {
            level = [.. level.SelectMany(p => parents.GetValueOrDefault(p) ?? [])];
            found.AddRange(level);
        }

        return found;
    }
}
