using System.Diagnostics;
using System.Text;

namespace TwoPhase.Harness.Topology;

/// <summary>A host command (ip, nft, tc, haproxy) failed, timed out, or a tool the topology needs is missing.</summary>
public sealed class TopologyException : Exception
{
    public TopologyException()
    {
    }

    public TopologyException(string message)
        : base(message)
    {
    }

    public TopologyException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>What a finished host command printed.</summary>
public sealed record HostCommandResult(int ExitCode, string StandardOutput, string StandardError);

/// <summary>
/// The one way the topology runs <c>ip</c>, <c>nft</c>, <c>tc</c> and friends: bounded in time (the process tree is
/// killed when it runs over), output bounded, and a failure throws with the command line and its stderr, so a broken
/// network set-up never goes unnoticed.
/// </summary>
public static class HostCommand
{
    /// <summary>Bound of one command unless told otherwise.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(20);

    private const int MaxOutput = 64_000;

    /// <summary>Runs the command; throws <see cref="TopologyException"/> on a non-zero exit (unless <paramref name="check"/> is false) or time-out.</summary>
    public static HostCommandResult Run(string file, IReadOnlyList<string> arguments, bool check = true, TimeSpan? timeout = null, string? standardInput = null)
    {
        var bound = timeout ?? DefaultTimeout;
        var info = new ProcessStartInfo(file)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = standardInput is not null,
            WorkingDirectory = "/",
        };
        foreach (var a in arguments)
        {
            info.ArgumentList.Add(a);
        }

        var line = Describe(file, arguments);
        using var process = new Process { StartInfo = info };
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        process.OutputDataReceived += (_, e) => Append(stdout, e.Data);
        process.ErrorDataReceived += (_, e) => Append(stderr, e.Data);
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new TopologyException($"could not run `{line}`: {e.Message}", e);
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (standardInput is not null)
        {
            process.StandardInput.Write(standardInput);
            process.StandardInput.Close();
        }

        if (!process.WaitForExit(bound))
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // Exited just now.
            }

            throw new TopologyException($"`{line}` did not finish within {bound.TotalSeconds:0} s.");
        }

        // The no-argument wait drains the redirected output.
        process.WaitForExit();
        string output, error;
        lock (stdout)
        {
            output = stdout.ToString();
        }

        lock (stderr)
        {
            error = stderr.ToString();
        }

        if (check && process.ExitCode != 0)
        {
            throw new TopologyException($"`{line}` failed (exit {process.ExitCode}): {error.Trim()}{(output.Length > 0 ? " / " + output.Trim() : "")}");
        }

        return new HostCommandResult(process.ExitCode, output, error);
    }

    /// <summary><see cref="Run"/> off the caller's thread, cancellable (the command itself is bounded either way).</summary>
    public static Task<HostCommandResult> RunAsync(string file, IReadOnlyList<string> arguments, bool check = true, TimeSpan? timeout = null, string? standardInput = null, CancellationToken cancellationToken = default) =>
        Task.Run(() => Run(file, arguments, check, timeout, standardInput), cancellationToken);

    /// <summary>The command prefixed with <c>ip netns exec &lt;namespace&gt;</c> when there is one.</summary>
    public static (string File, string[] Arguments) InNamespace(string? @namespace, string file, IEnumerable<string> arguments) =>
        @namespace is null ? (file, arguments.ToArray()) : ("ip", ["netns", "exec", @namespace, file, .. arguments]);

    /// <summary>The full path of <paramref name="tool"/> on PATH (or the usual sbin folders), or null.</summary>
    public static string? Find(string tool)
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        return path.Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
            .Select(d => Path.Combine(d, tool))
            .FirstOrDefault(File.Exists);
    }

    private static string Describe(string file, IReadOnlyList<string> arguments) =>
        string.Join(' ', new[] { file }.Concat(arguments.Select(a => a.Contains(' ', StringComparison.Ordinal) ? $"'{a}'" : a)));

    private static void Append(StringBuilder text, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (text)
        {
            if (text.Length < MaxOutput)
            {
                text.AppendLine(line);
            }
        }
    }
}
