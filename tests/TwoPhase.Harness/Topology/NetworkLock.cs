using System.Diagnostics;

namespace TwoPhase.Harness.Topology;

/// <summary>
/// One topology with namespaces per machine: the bridge name and the subnet are fixed, so two runs at once would tear
/// down each other's network (the start removes leftovers). The owner holds an exclusive lock on a file for as long as
/// its network exists; the kernel drops the lock when the process dies, so a killed run's leftovers are still removed.
/// </summary>
internal sealed class NetworkLock : IDisposable
{
    private static readonly string LockPath = Directory.Exists("/run/lock") ? "/run/lock/twophase-topology.lock" : Path.Combine(Path.GetTempPath(), "twophase-topology.lock");

    private readonly FileStream _file;

    private NetworkLock(FileStream file) => _file = file;

    /// <summary>Takes the lock, waiting (bounded) while another live run holds it; throws naming the holder when time runs out.</summary>
    public static NetworkLock Acquire(TimeSpan wait, Action<string> log)
    {
        var clock = Stopwatch.StartNew();
        var logged = false;
        while (true)
        {
            if (TryAcquire() is { } taken)
            {
                taken._file.SetLength(0);
                using (var writer = new StreamWriter(taken._file, leaveOpen: true))
                {
                    writer.Write($"{Environment.ProcessId}\n");
                }

                taken._file.Flush();
                return taken;
            }

            if (clock.Elapsed >= wait)
            {
                throw new TopologyException($"Another topology run holds {LockPath} (pid {Holder()}): only one network on 10.211.0.0/24 can exist per machine. Waited {wait.TotalSeconds:0} s.");
            }

            if (!logged)
            {
                log($"waiting for the topology network held by pid {Holder()} ({LockPath})");
                logged = true;
            }

            Thread.Sleep(500);
        }
    }

    /// <summary>The lock if nobody else holds it, else null.</summary>
    public static NetworkLock? TryAcquire()
    {
        try
        {
            // FileShare.None is an exclusive advisory lock (flock) on Linux.
            return new NetworkLock(new FileStream(LockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
        }
        catch (IOException)
        {
            return null;
        }
    }

    public void Dispose() => _file.Dispose();

    private static string Holder()
    {
        try
        {
            using var stream = new FileStream(LockPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd().Trim() is { Length: > 0 } pid ? pid : "?";
        }
        catch (IOException)
        {
            return "?";
        }
    }
}
