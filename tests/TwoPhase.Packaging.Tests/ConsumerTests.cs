using System.Diagnostics;
using System.Text.Json;

namespace TwoPhase.Packaging.Tests;

/// <summary>
/// A new user's first minutes: a project of their own, outside this repository, that installs TwoPhase.AspNetCore with
/// <c>dotnet add package</c> from the local feed (and the machine's usual registry for everything else), builds with
/// warnings as errors, and runs.
/// </summary>
public sealed class ConsumerTests : IDisposable
{
    // Restore may download the third-party packages into the empty package folder; bounded all the same.
    private static readonly TimeSpan StepTimeout = TimeSpan.FromMinutes(8);

    private readonly DirectoryInfo _work = Directory.CreateTempSubdirectory("twophase-consumer-");

    [Fact]
    public async Task ProjectOutsideTheRepository_InstallsRuntimeFromFeed_BuildsAndRuns()
    {
        var version = PackageFeed.Packages().Single(p => p.Id == "TwoPhase.AspNetCore").Version;
        var sources = await MachineSourcesAsync();
        var project = Path.Combine(_work.FullName, "consumer");
        Directory.CreateDirectory(project);
        // Only the feed and the machine's own registry; a package folder of its own, so a TwoPhase of the same version
        // left in the user's cache by an earlier build can never stand in for the one just packed.
        File.WriteAllText(Path.Combine(_work.FullName, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <config>
                <add key="globalPackagesFolder" value="{Path.Combine(_work.FullName, "packages")}" />
              </config>
              <packageSources>
                <clear />
                <add key="twophase-local" value="{PackageFeed.Folder}" />
                {string.Concat(sources.Select((url, i) => $"<add key=\"machine-{i}\" value=\"{url}\" />"))}
              </packageSources>
            </configuration>
            """);
        File.WriteAllText(Path.Combine(project, "Consumer.csproj"), """
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
              </PropertyGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(project, "Program.cs"), """
            using TwoPhase.AspNetCore;
            using TwoPhase.Protocol;

            // One type of each package the runtime brings: the runtime's options and the core's wire names.
            Console.WriteLine($"{typeof(ParticipantOptions).Assembly.GetName().Name} {TransactionState.Committed.ToWire()}");
            """);

        await RunAsync(project, "add", "package", "TwoPhase.AspNetCore", "--version", version);
        await RunAsync(project, "build", "-c", "Release");
        var output = await RunAsync(project, "run", "-c", "Release", "--no-build");

        Assert.Contains("TwoPhase.AspNetCore committed", output, StringComparison.Ordinal);
        using var assets = JsonDocument.Parse(File.ReadAllText(Path.Combine(project, "obj", "project.assets.json")));
        var libraries = assets.RootElement.GetProperty("libraries").EnumerateObject()
            .Select(l => (Name: l.Name, Type: l.Value.GetProperty("type").GetString()))
            .ToArray();
        // From the feed as packages, never as projects of this repository.
        foreach (var id in new[] { "TwoPhase.AspNetCore", "TwoPhase.Persistence", "TwoPhase.Protocol" })
        {
            Assert.Contains(($"{id}/{version}", "package"), libraries);
        }

        // The whole restored closure, third-party packages included: the runtime needs no prerelease anywhere.
        Assert.DoesNotContain(libraries, l => l.Name.Split('/')[1].Contains('-', StringComparison.Ordinal));
    }

    public void Dispose() => _work.Delete(recursive: true);

    /// <summary>The package sources this machine restores from (its NuGet.Config), the local feed aside.</summary>
    private async Task<IReadOnlyList<string>> MachineSourcesAsync()
    {
        var listed = await RunAsync(_work.FullName, "nuget", "list", "source", "--format", "Short");
        var sources = listed.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(line => line.StartsWith('E'))
            .Select(line => line[1..].Trim())
            .Where(url => !string.Equals(Path.GetFullPath(url, _work.FullName).TrimEnd('/'), PackageFeed.Folder.TrimEnd('/'), StringComparison.Ordinal))
            .ToArray();
        Assert.NotEmpty(sources);
        return sources;
    }

    private static async Task<string> RunAsync(string directory, params string[] arguments)
    {
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        // The test host's MSBuild settings would point the child at this repository's build; a user has none of them.
        foreach (var inherited in new[] { "MSBuildExtensionsPath", "MSBuildSDKsPath", "MSBUILD_EXE_PATH", "MSBuildLoadMicrosoftTargetsReadOnly", "TWOPHASE_UPDATE_API" })
        {
            start.Environment.Remove(inherited);
        }

        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(StepTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"dotnet {string.Join(' ', arguments)} did not finish within {StepTimeout}:\n{await stdout}\n{await stderr}");
        }

        var output = await stdout + await stderr;
        Assert.True(process.ExitCode == 0, $"dotnet {string.Join(' ', arguments)} exited {process.ExitCode}:\n{output}");
        return output;
    }
}
