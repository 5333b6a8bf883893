using System.Diagnostics;

namespace TwoPhase.Harness;

/// <summary>Builds the three service projects with <c>dotnet build</c> before they are started.</summary>
public static class ServiceBuilder
{
    // A cold build of the solution on a slow machine is minutes, not tens of minutes.
    private static readonly TimeSpan BuildTimeout = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Builds each service project in turn (not the solution: that would rebuild this CLI while it
    /// runs). Output goes to <paramref name="logPath"/>; throws with its tail on failure.
    /// </summary>
    public static async Task BuildAsync(string repoRoot, string configuration, string logPath, string dotnet, CancellationToken cancellationToken)
    {
        foreach (var kind in ServiceKinds.All)
        {
            var project = Path.Combine(repoRoot, "src", kind.ProjectName());
            await RunDotnetAsync(dotnet, repoRoot, ["build", project, "-c", configuration, "-nologo", "-v:minimal"], logPath, kind.ProjectName(), cancellationToken);
        }
    }

    /// <summary>
    /// Runs <c>dotnet</c> with <paramref name="args"/> in <paramref name="workingDirectory"/> (bounded), its output appended
    /// to <paramref name="logPath"/>; throws with the error lines when it fails. <paramref name="what"/> names it in messages.
    /// </summary>
    public static async Task RunDotnetAsync(string dotnet, string workingDirectory, IReadOnlyList<string> args, string logPath, string what, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(args);
        await using var log = new StreamWriter(logPath, append: true) { AutoFlush = true };
        var info = new ProcessStartInfo(dotnet)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        var command = $"dotnet {args[0]} {what}";
        await log.WriteLineAsync($"==== {DateTimeOffset.Now:O} dotnet {string.Join(' ', args)}");
        using var process = Process.Start(info) ?? throw new ServiceStartException($"{command} did not start.");
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(BuildTimeout);
        var output = new List<string>();
        var pump = Task.WhenAll(Pump(process.StandardOutput), Pump(process.StandardError));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
            await pump;
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw cancellationToken.IsCancellationRequested
                ? new OperationCanceledException(cancellationToken)
                : new ServiceStartException($"{command} took longer than {BuildTimeout.TotalMinutes:0} minutes; see {logPath}");
        }

        if (process.ExitCode != 0)
        {
            var errors = output.Where(l => l.Contains("error", StringComparison.OrdinalIgnoreCase)).Distinct().Take(15);
            throw new ServiceStartException($"{command} failed (exit {process.ExitCode}); see {logPath}\n{string.Join('\n', errors)}");
        }

        async Task Pump(StreamReader reader)
        {
            while (await reader.ReadLineAsync(timeout.Token) is { } line)
            {
                lock (output)
                {
                    output.Add(line);
                    log.WriteLine(line);
                }
            }
        }
    }
}
