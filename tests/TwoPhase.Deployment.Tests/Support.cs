using System.Diagnostics;
using System.Text;
using System.Text.Json;
using TwoPhase.Harness;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.Serialization;

namespace TwoPhase.Deployment.Tests;

/// <summary>The repository the tests run in, and the files of it they read.</summary>
internal static class Repo
{
    public static string Root { get; } = RepoLocator.FindRepoRoot(AppContext.BaseDirectory)
        ?? throw new InvalidOperationException($"No {RepoLocator.SolutionFile} above {AppContext.BaseDirectory}.");

    public static string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);

    /// <summary>The built service (or CLI) the tests run as a process, in the configuration the tests were built in.</summary>
    public static string Dll(string project) => PathOf("src", project, "bin", RepoLocator.BuildConfiguration, "net10.0", project + ".dll");
}

/// <summary>YAML as plain objects (mappings, sequences, strings), every document of a file, merge keys applied.</summary>
internal static class Yaml
{
    private static readonly IDeserializer Deserializer = new DeserializerBuilder().Build();

    public static List<object?> Documents(string path)
    {
        using var reader = File.OpenText(path);
        var parser = new MergingParser(new Parser(reader));
        parser.Consume<StreamStart>();
        var documents = new List<object?>();
        while (parser.Accept<DocumentStart>(out _))
        {
            documents.Add(Deserializer.Deserialize<object?>(parser));
        }

        return documents;
    }

    public static Dictionary<object, object?> Map(object? node, string what) =>
        node as Dictionary<object, object?> ?? throw new InvalidDataException($"{what}: expected a mapping, found {node?.GetType().Name ?? "nothing"}");

    public static List<object?> List(object? node, string what) =>
        node as List<object?> ?? throw new InvalidDataException($"{what}: expected a sequence, found {node?.GetType().Name ?? "nothing"}");

    /// <summary>The node at <paramref name="path"/> (mapping keys), or null where a key is missing.</summary>
    public static object? At(object? node, params string[] path)
    {
        foreach (var key in path)
        {
            if (node is not Dictionary<object, object?> map || !map.TryGetValue(key, out node))
            {
                return null;
            }
        }

        return node;
    }

    public static string Text(object? node, string what) => node as string ?? throw new InvalidDataException($"{what}: expected a scalar, found {node?.GetType().Name ?? "nothing"}");
}

/// <summary>A finished process: exit code and everything it printed.</summary>
internal sealed record ProcessResult(int ExitCode, string Output)
{
    public string Tail(int lines = 40) => string.Join('\n', Output.Split('\n').TakeLast(lines));
}

/// <summary>Runs a command to its end, bounded in time; a process past the bound is killed and the test fails.</summary>
internal static class Run
{
    public static async Task<ProcessResult> ProcessAsync(
        string file, IEnumerable<string> arguments, TimeSpan timeout, IReadOnlyDictionary<string, string>? environment = null, string? workingDirectory = null)
    {
        var info = new ProcessStartInfo(file)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory ?? Repo.Root,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        var output = new StringBuilder();
        using var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            throw new TimeoutException($"{file} {string.Join(' ', arguments)} did not finish within {timeout.TotalMinutes:0.#} min:\n{Tail(output)}");
        }

        return new ProcessResult(process.ExitCode, Tail(output, int.MaxValue));

        void Append(string? line)
        {
            if (line is not null)
            {
                lock (output)
                {
                    output.AppendLine(line);
                }
            }
        }
    }

    private static string Tail(StringBuilder output, int lines = 60)
    {
        lock (output)
        {
            return string.Join('\n', output.ToString().Split('\n').TakeLast(lines));
        }
    }

    public static Task<ProcessResult> DotnetAsync(TimeSpan timeout, params string[] arguments) =>
        ProcessAsync(DotnetHost.Path, arguments, timeout, new Dictionary<string, string> { ["DOTNET_NOLOGO"] = "1", ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1" });
}

/// <summary>A service's container settings, as MSBuild evaluates its csproj (the properties scripts/images.sh builds with).</summary>
internal sealed record ContainerSettings(string Project, string Repository, IReadOnlyList<string> Tags, IReadOnlyList<int> Ports, IReadOnlyDictionary<string, string> Environment)
{
    public static readonly string[] Services = ["OrderService", "StorageService", "DeliveryService"];

    private static readonly Lazy<Task<IReadOnlyDictionary<string, ContainerSettings>>> All = new(LoadAsync);

    public static Task<IReadOnlyDictionary<string, ContainerSettings>> ForAllAsync() => All.Value;

    /// <summary>The image reference the manifests use: repository and a tag the build gives it.</summary>
    public bool Names(string image)
    {
        var colon = image.LastIndexOf(':');
        return colon > 0 && image[..colon] == Repository && Tags.Contains(image[(colon + 1)..]);
    }

    private static async Task<IReadOnlyDictionary<string, ContainerSettings>> LoadAsync()
    {
        var result = new Dictionary<string, ContainerSettings>(StringComparer.Ordinal);
        foreach (var project in Services)
        {
            var run = await Run.DotnetAsync(TimeSpan.FromMinutes(3), "msbuild", Repo.PathOf("src", project, project + ".csproj"), "-nologo",
                "-getProperty:ContainerRepository", "-getProperty:ContainerImageTags", "-getItem:ContainerPort", "-getItem:ContainerEnvironmentVariable");
            if (run.ExitCode != 0)
            {
                throw new InvalidOperationException($"dotnet msbuild {project} failed:\n{run.Tail()}");
            }

            using var json = JsonDocument.Parse(run.Output[run.Output.IndexOf('{', StringComparison.Ordinal)..]);
            var properties = json.RootElement.GetProperty("Properties");
            var items = json.RootElement.GetProperty("Items");
            result[project] = new ContainerSettings(
                project,
                properties.GetProperty("ContainerRepository").GetString() ?? "",
                (properties.GetProperty("ContainerImageTags").GetString() ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries),
                [.. items.GetProperty("ContainerPort").EnumerateArray().Select(p => int.Parse(p.GetProperty("Identity").GetString()!, System.Globalization.CultureInfo.InvariantCulture))],
                items.GetProperty("ContainerEnvironmentVariable").EnumerateArray()
                    .ToDictionary(v => v.GetProperty("Identity").GetString()!, v => v.GetProperty("Value").GetString()!, StringComparer.Ordinal));
        }

        return result;
    }
}
