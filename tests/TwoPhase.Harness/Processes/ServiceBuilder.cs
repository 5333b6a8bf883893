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
        await using var log = new StreamWriter(logPath, append: true) { AutoFlush = true };
        foreach (var kind in ServiceKinds.All)
        {
            var project = Path.Combine(repoRoot, "src", kind.ProjectName());
            var info = new ProcessStartInfo(dotnet)
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = repoRoot,
            };
            foreach (var arg in new[] { "build", project, "-c", configuration, "-nologo", "-v:minimal" })
            {
                info.ArgumentList.Add(arg);
            }

            await log.WriteLineAsync($"==== {DateTimeOffset.Now:O} dotnet build {project} -c {configuration}");
            using var process = Process.Start(info) ?? throw new ServiceStartException("dotnet build did not start.");
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
                    : new ServiceStartException($"dotnet build {kind.ProjectName()} took longer than {BuildTimeout.TotalMinutes:0} minutes; see {logPath}");
            }

            if (process.ExitCode != 0)
            {
                var errors = output.Where(l => l.Contains("error", StringComparison.OrdinalIgnoreCase)).Distinct().Take(15);
                throw new ServiceStartException(
                    $"dotnet build {kind.ProjectName()} failed (exit {process.ExitCode}); see {logPath}\n{string.Join('\n', errors)}");
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
}
