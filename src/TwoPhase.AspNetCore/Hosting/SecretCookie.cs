using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace TwoPhase.AspNetCore;

/// <summary>Where a service's shared secret came from. Logged once at start; the secret itself never is.</summary>
public enum SecretOrigin
{
    /// <summary><c>TwoPhase:Secret</c> in configuration (appsettings, <c>TwoPhase__Secret</c>, the command line).</summary>
    Configured,

    /// <summary>The <c>TWOPHASE_SECRET</c> environment variable.</summary>
    Environment,

    /// <summary>No cookie file existed: this service generated the secret and created the file.</summary>
    CookieCreated,

    /// <summary>Read from the cookie file an earlier start (of this or another service) created.</summary>
    CookieRead,
}

/// <summary>
/// The secret one user's services on one machine share when none is configured, kept in an owner-only file the
/// way an Erlang node keeps <c>~/.erlang.cookie</c> (docs/security.md). The first start creates it; every start
/// reads it. A file that others could read, or that another user owns, is refused: its secret would not be one.
/// </summary>
public static class SecretCookie
{
    /// <summary>Longest cookie file read, in bytes; a secret is one short line.</summary>
    public const int MaxBytes = 1024;

    private const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerOnlyFolder = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private const UnixFileMode GroupOrOthers =
        UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute |
        UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    // Creating the file takes microseconds; a lock held longer than this is a stuck or stopped process.
    private const int LockAttempts = 200;
    private static readonly TimeSpan LockRetry = TimeSpan.FromMilliseconds(25);

    /// <summary>
    /// <c>$XDG_CONFIG_HOME/twophase/secret</c> when that variable holds an absolute path (the XDG rule), else
    /// <c>~/.config/twophase/secret</c>; <c>%APPDATA%\twophase\secret</c> on Windows.
    /// </summary>
    public static string DefaultPath()
    {
        if (OperatingSystem.IsWindows())
        {
            return Path.Combine(System.Environment.GetFolderPath(System.Environment.SpecialFolder.ApplicationData), "twophase", "secret");
        }

        if (System.Environment.GetEnvironmentVariable("XDG_CONFIG_HOME") is { Length: > 0 } xdg && Path.IsPathRooted(xdg))
        {
            return Path.Combine(xdg, "twophase", "secret");
        }

        var home = System.Environment.GetFolderPath(System.Environment.SpecialFolder.UserProfile);
        return home.Length > 0
            ? Path.Combine(home, ".config", "twophase", "secret")
            : throw new InvalidOperationException(
                "No home folder (HOME is unset) for the shared secret's file: set TwoPhase:SecretFile, or TwoPhase:Secret on every service.");
    }

    /// <summary>
    /// The secret in <paramref name="path"/>; when there is no such file, a new random one written there (folder
    /// created owner-only, file owner-only). Starters racing on a fresh machine all get the one secret that was written.
    /// </summary>
    /// <exception cref="InvalidOperationException">The file or its folder is not owner-only, or the file holds no secret.</exception>
    public static (string Secret, bool Created) ReadOrCreate(string path)
    {
        var file = Path.GetFullPath(path);
        EnsurePrivateFolder(Path.GetDirectoryName(file)!);
        if (ReadExisting(file) is { } existing)
        {
            return (existing, false);
        }

        using (Lock(file + ".lock"))
        {
            // Another starter may have created it while this one waited for the lock.
            if (ReadExisting(file) is { } raced)
            {
                return (raced, false);
            }

            var secret = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
            // Written whole beside it, then renamed into place: a reader that takes no lock sees no file or the
            // whole file, never a half-written one, and a crash here leaves no file that looks like a secret.
            var temp = file + ".tmp";
            File.Delete(temp);
            using (var stream = new FileStream(temp, OwnerOnly(FileMode.CreateNew, FileAccess.Write)))
            {
                stream.Write(Encoding.ASCII.GetBytes(secret + "\n"));
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, file, overwrite: true);
            return (secret, true);
        }
    }

    /// <summary>The secret in <paramref name="path"/>, or null when there is no such file. Never creates anything.</summary>
    /// <exception cref="InvalidOperationException">The file is not owner-only or holds no secret.</exception>
    public static string? ReadExisting(string path)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }

        using (stream)
        {
            if (!OperatingSystem.IsWindows())
            {
                CheckOwnerOnly(stream, path);
            }

            if (stream.Length > MaxBytes)
            {
                throw Refused(path, $"it holds {stream.Length} bytes; a secret is one line of at most {MaxBytes}.");
            }

            var buffer = new byte[MaxBytes];
            var length = stream.ReadAtLeast(buffer, MaxBytes, throwOnEndOfStream: false);
            var secret = Encoding.ASCII.GetString(buffer, 0, length).Trim();
            // Printable ASCII without spaces: it travels in an Authorization header.
            return secret.Length > 0 && secret.All(c => c is > ' ' and <= '~')
                ? secret
                : throw Refused(path, "it must hold the secret, one line of printable ASCII without spaces; delete it to have a new one generated.");
        }
    }

    /// <summary>
    /// Creates the folder owner-only (0700) if missing, and refuses one that group or others may write to:
    /// they could put a file of their own there.
    /// </summary>
    private static void EnsurePrivateFolder(string folder)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(folder);
            return;
        }

        if (!Directory.Exists(folder))
        {
            Directory.CreateDirectory(folder, OwnerOnlyFolder);
        }

        var mode = File.GetUnixFileMode(folder);
        if ((mode & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
        {
            throw new InvalidOperationException(
                $"Refusing the shared secret's folder {folder}: group or others may write to it (mode {Octal(mode)}). " +
                $"Make it owner-only (chmod 700 {folder}), or set TwoPhase:SecretFile elsewhere, or TwoPhase:Secret on every service.");
        }
    }

    [UnsupportedOSPlatform("windows")]
    private static void CheckOwnerOnly(FileStream stream, string path)
    {
        var mode = File.GetUnixFileMode(stream.SafeFileHandle);
        if ((mode & GroupOrOthers) != 0)
        {
            throw Refused(path, $"group or others may read or write it (mode {Octal(mode)}); it must be owner-only: chmod 600 {path}");
        }

        var (owner, native, regular) = UnixFile.Owner(stream.SafeFileHandle);
        if (native != mode)
        {
            // The native view disagrees with the BCL's: the layout assumption no longer holds. Refuse, never pass.
            throw Refused(path, "its owner could not be read on this runtime; set TwoPhase:Secret on every service instead.");
        }

        if (!regular)
        {
            throw Refused(path, "it is not a regular file.");
        }

        var me = UnixFile.EffectiveUser();
        if (owner != me)
        {
            throw Refused(path, $"it belongs to another user (uid {owner}; this service runs as uid {me}).");
        }
    }

    /// <summary>An exclusive lock on a file beside the secret, so that only one starter creates it; retried, bounded.</summary>
    private static FileStream Lock(string path)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                // FileShare.None is flock(LOCK_EX) on Unix and a sharing lock on Windows: held by one open at a time,
                // across processes. The lock file stays; removing it would let two starters lock two different files.
                return new FileStream(path, OwnerOnly(FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
            }
            catch (IOException) when (attempt < LockAttempts)
            {
                // Held by another starter; it is done within milliseconds.
                Thread.Sleep(LockRetry);
            }
            catch (IOException e)
            {
                throw new InvalidOperationException(
                    $"Another process held {path} for {(LockAttempts * LockRetry).TotalSeconds:0} s while the shared secret was being created; " +
                    "if none is starting, delete the lock file.", e);
            }
        }
    }

    private static FileStreamOptions OwnerOnly(FileMode mode, FileAccess access, FileShare share = FileShare.Read)
    {
        var options = new FileStreamOptions { Mode = mode, Access = access, Share = share };
        if (!OperatingSystem.IsWindows())
        {
            // Owner-only from the first byte (the umask can only take more away).
            options.UnixCreateMode = OwnerOnlyFile;
        }

        return options;
    }

    private static InvalidOperationException Refused(string path, string why) =>
        new($"Refusing the shared secret's file {path}: {why} (Or set TwoPhase:Secret on every service, or TwoPhase:SecretFile elsewhere.)");

    private static string Octal(UnixFileMode mode) => "0" + Convert.ToString((int)mode, 8).PadLeft(3, '0');

    /// <summary>
    /// A file's owner, which the BCL does not expose (it has the mode only). Read with fstat through the runtime's
    /// own native shim, the one <see cref="File.GetUnixFileMode(Microsoft.Win32.SafeHandles.SafeFileHandle)"/> uses,
    /// whose status record has begun with flags, mode, uid, gid since .NET Core 1.0 on every Unix. The caller
    /// compares the mode read here with the BCL's, so a changed layout refuses the file rather than passes it.
    /// </summary>
    private static class UnixFile
    {
        private const int TypeMask = 0xF000;
        private const int RegularFile = 0x8000;

        public static (uint Owner, UnixFileMode Mode, bool Regular) Owner(SafeHandle file)
        {
            if (FStat(file, out var status) != 0)
            {
                throw new IOException($"fstat failed (errno {Marshal.GetLastPInvokeError().ToString(CultureInfo.InvariantCulture)}).");
            }

            return (status.Uid, (UnixFileMode)(status.Mode & 0xFFF), (status.Mode & TypeMask) == RegularFile);
        }

        public static uint EffectiveUser() => GetEUid();

        // The leading members of System.Native's FileStatus; Size leaves room for the rest of it.
        [StructLayout(LayoutKind.Sequential, Size = 256)]
        private struct FileStatus
        {
            public int Flags;
            public int Mode;
            public uint Uid;
            public uint Gid;
        }

        [DllImport("libSystem.Native", EntryPoint = "SystemNative_FStat", SetLastError = true)]
        private static extern int FStat(SafeHandle fd, out FileStatus status);

        [DllImport("libSystem.Native", EntryPoint = "SystemNative_GetEUid")]
        private static extern uint GetEUid();
    }
}

/// <summary>
/// Fills <see cref="TwoPhaseOptions.Secret"/>: configuration first, then <c>TWOPHASE_SECRET</c>, then the cookie file
/// (<see cref="SecretCookie"/>), and logs once where it came from. Every option read of the service (the outgoing
/// calls, the guard) then sees the same secret. The cookie file is read once per process.
/// </summary>
internal sealed class SecretResolver(ILogger<SecretResolver> logger) : IPostConfigureOptions<TwoPhaseOptions>
{
    private readonly Lock _gate = new();
    private (string Secret, SecretOrigin Origin, string Path)? _cookie;
    private bool _logged;

    public void PostConfigure(string? name, TwoPhaseOptions options)
    {
        lock (_gate)
        {
            var (origin, path) = (SecretOrigin.Configured, (string?)null);
            if (string.IsNullOrEmpty(options.Secret))
            {
                if (Environment.GetEnvironmentVariable(ProtectionExtensions.SecretVariable) is { Length: > 0 } variable)
                {
                    (options.Secret, origin) = (variable, SecretOrigin.Environment);
                }
                else
                {
                    // Options are built more than once (IOptions, the monitor behind ValidateOnStart): one read.
                    _cookie ??= ReadCookie(options.SecretFile is { Length: > 0 } file ? file : SecretCookie.DefaultPath());
                    (options.Secret, origin, path) = _cookie.Value;
                }
            }

            if (!_logged)
            {
                _logged = true;
                switch (origin)
                {
                    case SecretOrigin.Configured: Log.SecretConfigured(logger); break;
                    case SecretOrigin.Environment: Log.SecretFromEnvironment(logger); break;
                    case SecretOrigin.CookieCreated: Log.SecretCookieCreated(logger, path!); break;
                    default: Log.SecretCookieRead(logger, path!); break;
                }
            }
        }
    }

    private static (string, SecretOrigin, string) ReadCookie(string path)
    {
        var (secret, created) = SecretCookie.ReadOrCreate(path);
        return (secret, created ? SecretOrigin.CookieCreated : SecretOrigin.CookieRead, Path.GetFullPath(path));
    }
}
