using System.Runtime.InteropServices;

namespace TwoPhase.Harness;

/// <summary>POSIX signals .NET has no API for: SIGSTOP and SIGCONT, to pause a service and let it run again.</summary>
public static class Signals
{
    // Linux numbers; macOS uses 17 and 19.
    private static int Stop => OperatingSystem.IsMacOS() ? 17 : 19;

    private static int Continue => OperatingSystem.IsMacOS() ? 19 : 18;

    /// <summary>Stops the process where it is, every thread at once, as a long GC pause or a starved machine would.</summary>
    public static void Pause(int pid) => Send(pid, Stop, "SIGSTOP");

    /// <summary>Lets a stopped process run on; its timers then all fire late.</summary>
    public static void Resume(int pid) => Send(pid, Continue, "SIGCONT");

    private static void Send(int pid, int signal, string name)
    {
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("Pausing a process needs POSIX signals.");
        }

        if (Kill(pid, signal) != 0)
        {
            throw new InvalidOperationException($"{name} to pid {pid} failed (errno {Marshal.GetLastPInvokeError()}).");
        }
    }

    // DllImport, not LibraryImport: the generated stub would need unsafe code for a call that marshals two ints.
    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int Kill(int pid, int signal);
}
