using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using TwoPhase.Harness;

namespace TwoPhase.Samples.Tests;

/// <summary>
/// The two samples built from the package feed and run as processes, with the reference storage service (built from
/// the repository) as the checkout's second participant; each on its own SQLite file in a fresh folder.
/// </summary>
public sealed class SampleSystem : IAsyncLifetime
{
    private static readonly TimeSpan Ready = TimeSpan.FromSeconds(90);
    private readonly string _secret = Convert.ToHexString(RandomNumberGenerator.GetBytes(32));

    public string RepoRoot { get; } = RepoLocator.FindRepoRoot() ?? throw new InvalidOperationException($"No {RepoLocator.SolutionFile} above {AppContext.BaseDirectory}.");

    public string Folder { get; } = Path.Combine(Path.GetTempPath(), $"twophase-samples-{Guid.NewGuid():N}");

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(30) };

    public ServiceProcess Payments { get; private set; } = null!;

    public ServiceProcess Checkout { get; private set; } = null!;

    public ServiceProcess Storage { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        // The participants' protocol and admin views need the shared secret; the samples' own endpoints ignore it.
        Http.DefaultRequestHeaders.Authorization = new("Bearer", _secret);
        var feed = SampleFeed.Locate(RepoRoot);
        Directory.CreateDirectory(Folder);
        var log = Path.Combine(Folder, "build.log");
        var payments = await BuildSampleAsync("Payments", feed, log);
        var checkout = await BuildSampleAsync("Checkout", feed, log);
        var storage = Path.Combine(RepoRoot, "src", "StorageService", "bin", RepoLocator.BuildConfiguration, "net10.0", "StorageService.dll");

        var (paymentsUrl, checkoutUrl, storageUrl) = (Url(), Url(), Url());
        Payments = new ServiceProcess("Payments", payments, paymentsUrl, Environment("payments", ("TwoPhase__Participant__CoordinatorUrl", checkoutUrl.ToString())), Path.Combine(Folder, "payments.log"));
        Storage = new ServiceProcess(ServiceKind.Storage, storage, storageUrl, Environment("storage", ("TwoPhase__Participant__CoordinatorUrl", checkoutUrl.ToString())), Path.Combine(Folder, "storage.log"));
        Checkout = new ServiceProcess(
            "Checkout",
            checkout,
            checkoutUrl,
            Environment(
                "checkout",
                ("TwoPhase__Coordinator__Participants__0__Name", "payments"),
                ("TwoPhase__Coordinator__Participants__0__Url", paymentsUrl.ToString()),
                ("TwoPhase__Coordinator__Participants__1__Name", "storage"),
                ("TwoPhase__Coordinator__Participants__1__Url", storageUrl.ToString())),
            Path.Combine(Folder, "checkout.log"));
        foreach (var service in new[] { Storage, Payments, Checkout })
        {
            await StartAsync(service);
        }
    }

    public async Task StartAsync(ServiceProcess service, IReadOnlyDictionary<string, string>? once = null)
    {
        ArgumentNullException.ThrowIfNull(service);
        service.Start(once);
        await service.WaitReadyAsync(Http, Ready);
    }

    public async Task DisposeAsync()
    {
        foreach (var service in new[] { Checkout, Payments, Storage })
        {
            if (service is not null)
            {
                await service.DisposeAsync();
            }
        }

        Http.Dispose();
    }

    public async Task<JsonElement> GetAsync(ServiceProcess service, string path)
    {
        ArgumentNullException.ThrowIfNull(service);
        using var response = await Http.GetAsync(new Uri(service.Url, path));
        response.EnsureSuccessStatusCode();
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    public Task<HttpResponseMessage> PostAsync(ServiceProcess service, string path, object body)
    {
        ArgumentNullException.ThrowIfNull(service);
        return Http.PostAsJsonAsync(new Uri(service.Url, path), body);
    }

    /// <summary>
    /// Restores the sample from the feed alone (a packages folder of its own, emptied of TwoPhase.* first, so a
    /// package packed again under the same version is not taken from a cache) and builds it; returns its dll.
    /// </summary>
    private async Task<string> BuildSampleAsync(string name, SampleFeed feed, string log)
    {
        var project = Path.Combine(RepoRoot, "samples", name, name + ".csproj");
        var packages = Path.Combine(RepoRoot, "artifacts", "samples-packages");
        if (Directory.Exists(packages))
        {
            foreach (var stale in Directory.GetDirectories(packages, "twophase.*"))
            {
                Directory.Delete(stale, recursive: true);
            }
        }

        // samples/nuget.config names artifacts/packages; the feed may be elsewhere (TWOPHASE_PACKAGE_FEED).
        var config = Path.Combine(Folder, "nuget.config");
        await File.WriteAllTextAsync(config, File.ReadAllText(Path.Combine(RepoRoot, "samples", "nuget.config")).Replace("../artifacts/packages", feed.Folder, StringComparison.Ordinal));
        var output = Path.Combine(Folder, name);
        string[] properties = [$"-p:TwoPhaseVersion={feed.Version}", $"-p:RestorePackagesPath={packages}"];
        await ServiceBuilder.RunDotnetAsync(DotnetHost.Path, RepoRoot, ["restore", project, "--configfile", config, .. properties], log, name, CancellationToken.None);
        await ServiceBuilder.RunDotnetAsync(DotnetHost.Path, RepoRoot, ["build", project, "--no-restore", "-c", "Release", "-o", output, "-nologo", "-v:minimal", .. properties], log, name, CancellationToken.None);
        return Path.Combine(output, name + ".dll");
    }

    private Dictionary<string, string> Environment(string name, params (string Key, string Value)[] settings)
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["TwoPhase__Secret"] = _secret,
            ["TwoPhase__Database__Provider"] = "sqlite",
            ["TwoPhase__Database__SqliteFile"] = Path.Combine(Folder, name + ".db"),
            // Recovery and in-doubt checks soon after a restart, so the test waits seconds, not minutes.
            ["TwoPhase__Participant__InDoubtAfterMs"] = "500",
            ["TwoPhase__Coordinator__RecoveryInterval"] = "00:00:00.200",
        };
        foreach (var (key, value) in settings)
        {
            environment[key] = value;
        }

        return environment;
    }

    private static Uri Url() => new($"http://127.0.0.1:{PortAllocator.Next()}/");
}
