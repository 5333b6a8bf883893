using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace TwoPhase.Cli.Bench;

/// <summary>
/// CPU seconds (user + system) consumed so far by a set of named processes, read from /proc. A source that
/// cannot be read (not Linux, a remote database, a process that is gone) reads as null and is shown as n/a,
/// never as zero.
/// </summary>
public sealed class CpuMeter
{
    // /proc reports times in USER_HZ ticks, which the kernel fixes at 100 on every architecture .NET runs
    // on (x86-64, arm64); `getconf CLK_TCK` says 100 too.
    private const double TicksPerSecond = 100.0;

    private readonly List<(string Name, Func<double?> Read)> _sources = [];

    /// <summary>The names of the sources, in the order they were added.</summary>
    public IReadOnlyList<string> Names => [.. _sources.Select(s => s.Name)];

    /// <summary>A process by pid (a service); null pid means unknown.</summary>
    public CpuMeter AddProcess(string name, int? pid)
    {
        _sources.Add((name, () => pid is { } p ? ProcessSeconds(p) : null));
        return this;
    }

    /// <summary>This process: the load generator, or the direct bound's whole in-process system.</summary>
    public CpuMeter AddSelf(string name)
    {
        _sources.Add((name, () =>
        {
            using var self = Process.GetCurrentProcess();
            return self.TotalProcessorTime.TotalSeconds;
        }));
        return this;
    }

    /// <summary>
    /// A PostgreSQL cluster: the postmaster's own time plus the time of its children already reaped
    /// (cutime + cstime), plus the time of every live child (backends, WAL writer, checkpointer...). A backend
    /// that exits during the window moves from the live sum into the reaped sum, so it is counted once.
    /// </summary>
    public CpuMeter AddPostgres(string name, int? postmasterPid)
    {
        _sources.Add((name, () => postmasterPid is { } p ? ClusterSeconds(p) : null));
        return this;
    }

    public IReadOnlyDictionary<string, double?> Sample() =>
        _sources.ToDictionary(s => s.Name, s => s.Read(), StringComparer.Ordinal);

    /// <summary>utime + stime of one process, in seconds; null if it cannot be read.</summary>
    public static double? ProcessSeconds(int pid) =>
        ReadStat(pid) is { } stat ? (stat.UTime + stat.STime) / TicksPerSecond : null;

    /// <summary>The parent pid and command name of a process, or null.</summary>
    public static (int ParentPid, string Command)? ParentOf(int pid) =>
        ReadStat(pid) is { } stat ? (stat.ParentPid, stat.Command) : null;

    private static double? ClusterSeconds(int postmasterPid)
    {
        if (ReadStat(postmasterPid) is not { } master)
        {
            return null;
        }

        long ticks = master.UTime + master.STime + master.CUTime + master.CSTime;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                && pid != postmasterPid
                && ReadStat(pid) is { } child
                && child.ParentPid == postmasterPid)
            {
                ticks += child.UTime + child.STime;
            }
        }

        return ticks / TicksPerSecond;
    }

    private sealed record Stat(string Command, int ParentPid, long UTime, long STime, long CUTime, long CSTime);

    private static Stat? ReadStat(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
        var open = text.IndexOf('(', StringComparison.Ordinal);
        var close = text.LastIndexOf(')');
        if (open < 0 || close < open)
        {
            return null;
        }

        var fields = text[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        // fields[0] is field 3 of proc(5) (state): ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
        if (fields.Length < 15)
        {
            return null;
        }

        return new Stat(
            text[(open + 1)..close],
            int.Parse(fields[1], CultureInfo.InvariantCulture),
            long.Parse(fields[11], CultureInfo.InvariantCulture),
            long.Parse(fields[12], CultureInfo.InvariantCulture),
            long.Parse(fields[13], CultureInfo.InvariantCulture),
            long.Parse(fields[14], CultureInfo.InvariantCulture));
    }
}

/// <summary>Finds which local process listens on a TCP port, for benching services this CLI did not start.</summary>
public static partial class ListeningProcess
{
    /// <summary>The pid listening on <paramref name="port"/>, if it is a process whose file descriptors we may read.</summary>
    public static int? Find(int port)
    {
        var inodes = new HashSet<string>(StringComparer.Ordinal);
        foreach (var table in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            string[] lines;
            try
            {
                lines = File.ReadAllLines(table);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }

            foreach (var line in lines.Skip(1))
            {
                // sl local_address rem_address st ... inode: state 0A is LISTEN; the port is hex after the colon.
                var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (f.Length > 9 && f[3] == "0A" && int.TryParse(f[1][(f[1].LastIndexOf(':') + 1)..], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var p) && p == port)
                {
                    inodes.Add($"socket:[{f[9]}]");
                }
            }
        }

        if (inodes.Count == 0)
        {
            return null;
        }

        foreach (var dir in Directory.EnumerateDirectories("/proc").Where(d => ProcessDir().IsMatch(Path.GetFileName(d))))
        {
            try
            {
                foreach (var fd in Directory.EnumerateFiles(Path.Combine(dir, "fd")))
                {
                    if (new FileInfo(fd).LinkTarget is { } target && inodes.Contains(target))
                    {
                        return int.Parse(Path.GetFileName(dir), CultureInfo.InvariantCulture);
                    }
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Another user's process, or one that exited while we looked.
            }
        }

        return null;
    }

    [GeneratedRegex("^[0-9]+$")]
    private static partial Regex ProcessDir();
}
