using System.Diagnostics;
using System.Runtime.Versioning;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using TwoPhase.AspNetCore;

namespace TwoPhase.Tests.Security;

/// <summary>
/// The generated shared secret's file (docs/security.md): owner-only, created once, reused, refused when others could
/// read it or it is not the user's own, and agreed on by starters that race on a fresh machine. Every test works in a
/// temporary folder of its own; none touches the real user's ~/.config.
/// </summary>
[UnsupportedOSPlatform("windows")] // modes and owners: the Unix cookie file
public sealed class SecretCookieTests : IDisposable
{
    private const UnixFileMode OwnerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerOnlyFolder = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private readonly string _root = Directory.CreateTempSubdirectory("twophase-cookie-").FullName;

    /// <summary>Not yet existing: the first start creates its folder too.</summary>
    private string CookiePath => Path.Combine(_root, "config", "twophase", "secret");

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void FirstStart_CreatesARandomSecretOwnerOnlyInAnOwnerOnlyFolder()
    {
        var (secret, created) = SecretCookie.ReadOrCreate(CookiePath);

        Assert.True(created);
        Assert.Matches("^[0-9a-f]{64}$", secret);
        Assert.Equal(secret + "\n", File.ReadAllText(CookiePath));
        Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(CookiePath));
        Assert.Equal(OwnerOnlyFolder, File.GetUnixFileMode(Path.GetDirectoryName(CookiePath)!));
        Assert.NotEqual(secret, SecretCookie.ReadOrCreate(Path.Combine(_root, "other", "secret")).Secret);
    }

    [Fact]
    public void SecondStart_ReusesTheSecretTheFirstCreated()
    {
        var first = SecretCookie.ReadOrCreate(CookiePath);
        var second = SecretCookie.ReadOrCreate(CookiePath);

        Assert.Equal((first.Secret, false), second);
        Assert.Equal(first.Secret, SecretCookie.ReadExisting(CookiePath));
    }

    [Fact]
    public void SecretWrittenByTheUser_IsReadAsWritten()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(CookiePath)!, OwnerOnlyFolder);
        File.WriteAllText(CookiePath, "my-own-secret\n");
        File.SetUnixFileMode(CookiePath, UnixFileMode.UserRead);

        Assert.Equal(("my-own-secret", false), SecretCookie.ReadOrCreate(CookiePath));
    }

    [Theory]
    [InlineData(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead, "0644")]
    [InlineData(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, "0640")]
    [InlineData(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherWrite, "0602")]
    public void FileOthersCanReadOrWrite_IsRefusedWithAClearMessage(UnixFileMode mode, string octal)
    {
        var (secret, _) = SecretCookie.ReadOrCreate(CookiePath);
        File.SetUnixFileMode(CookiePath, mode);

        var refused = Assert.Throws<InvalidOperationException>(() => SecretCookie.ReadOrCreate(CookiePath));
        Assert.Contains(CookiePath, refused.Message);
        Assert.Contains($"mode {octal}", refused.Message);
        Assert.Contains($"chmod 600 {CookiePath}", refused.Message);
        Assert.DoesNotContain(secret, refused.Message);
        // Refused, not replaced: the file is the user's to fix.
        Assert.Equal(secret + "\n", File.ReadAllText(CookiePath));
    }

    [Fact]
    public void FileOwnedByAnotherUser_IsRefusedWithAClearMessage()
    {
        // Only root can hand a file to another user, and only root could read another user's owner-only file, the
        // case this check exists for (a mode check alone lets root use anybody's cookie). CI runs as root.
        Assert.True(Environment.IsPrivilegedProcess, "this test hands a file to another user: run it as root, as CI does");
        SecretCookie.ReadOrCreate(CookiePath);
        Chown("65534", CookiePath);

        var refused = Assert.Throws<InvalidOperationException>(() => SecretCookie.ReadOrCreate(CookiePath));
        Assert.Contains(CookiePath, refused.Message);
        Assert.Contains("belongs to another user (uid 65534; this service runs as uid 0)", refused.Message);
    }

    [Fact]
    public void FolderOthersCanWriteTo_IsRefused()
    {
        var folder = Path.GetDirectoryName(CookiePath)!;
        Directory.CreateDirectory(folder);
        File.SetUnixFileMode(folder, OwnerOnlyFolder | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.GroupWrite);

        var refused = Assert.Throws<InvalidOperationException>(() => SecretCookie.ReadOrCreate(CookiePath));
        Assert.Contains($"chmod 700 {folder}", refused.Message);
        Assert.False(File.Exists(CookiePath));
    }

    [Theory]
    [InlineData("")]
    [InlineData("\n")]
    [InlineData("two words\n")]
    public void FileHoldingNoSecret_IsRefused(string content)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(CookiePath)!, OwnerOnlyFolder);
        File.WriteAllText(CookiePath, content);
        File.SetUnixFileMode(CookiePath, OwnerReadWrite);

        var refused = Assert.Throws<InvalidOperationException>(() => SecretCookie.ReadOrCreate(CookiePath));
        Assert.Contains("printable ASCII", refused.Message);
    }

    [Fact]
    public async Task ConcurrentFirstStarts_AllGetTheOneSecretThatWasWritten()
    {
        // Fresh folders, many racers each: a check-then-write would let several create, and some keep a secret
        // that a later writer replaced.
        for (var round = 0; round < 20; round++)
        {
            var path = Path.Combine(_root, $"race-{round}", "twophase", "secret");
            var results = await Concurrently.RunAsync(16, _ => Task.FromResult(SecretCookie.ReadOrCreate(path)));

            Assert.Single(results, r => r.Created);
            var written = File.ReadAllText(path).Trim();
            Assert.All(results, r => Assert.Equal(written, r.Secret));
        }
    }

    [Fact]
    public void Service_WithNoSecretConfigured_UsesTheCookieFile_AndAConfiguredSecretWinsWithoutWritingOne()
    {
        Assert.True(string.IsNullOrEmpty(Environment.GetEnvironmentVariable(ProtectionExtensions.SecretVariable)), "unset TWOPHASE_SECRET to run this test");

        var generated = ServiceSecret(new() { ["TwoPhase:SecretFile"] = CookiePath });
        Assert.Equal(SecretCookie.ReadExisting(CookiePath), generated);

        var elsewhere = Path.Combine(_root, "unused", "secret");
        Assert.Equal("configured", ServiceSecret(new() { ["TwoPhase:Secret"] = "configured", ["TwoPhase:SecretFile"] = elsewhere }));
        Assert.False(Directory.Exists(Path.GetDirectoryName(elsewhere)));
    }

    /// <summary>The secret a service built as the reference services are would use.</summary>
    private static string? ServiceSecret(Dictionary<string, string?> settings)
    {
        var builder = WebApplication.CreateBuilder();
        builder.Configuration.AddInMemoryCollection(settings);
        builder.AddTwoPhase();
        using var services = builder.Services.BuildServiceProvider();
        return services.GetRequiredService<IOptions<TwoPhaseOptions>>().Value.Secret;
    }

    private static void Chown(string owner, string path)
    {
        using var chown = Process.Start(new ProcessStartInfo("chown", [owner, path]) { UseShellExecute = false })!;
        Assert.True(chown.WaitForExit(TimeSpan.FromSeconds(30)), "chown did not finish");
        Assert.Equal(0, chown.ExitCode);
    }
}
