using System.Security.Cryptography;
using TwoPhase.Harness.Client;

namespace TwoPhase.Cli.Hosting;

/// <summary>
/// The three services started as child processes with one configuration: the demo, chaos, bench
/// and integration tests all drive the system through this. Disposing kills whatever is running.
/// </summary>
public sealed class SystemUnderTest : IAsyncDisposable
{
    private readonly Dictionary<ServiceKind, ServiceHost> _hosts;
    private readonly HttpClient _probe;
    private readonly bool _ownsProbe;

    /// <param name="options">Where and how to run the services.</param>
    /// <param name="probe">Client for readiness probes; one is created (and disposed) if none is given.</param>
    public SystemUnderTest(SystemUnderTestOptions options, HttpClient? probe = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options;
        _ownsProbe = probe is null;
        _probe = probe ?? HttpClients.Create(8);
        Directory.CreateDirectory(options.LogFolder);
        _hosts = ServiceKinds.All.ToDictionary(
            kind => kind,
            kind => new ServiceHost(
                kind,
                options.DotnetPath,
                AssemblyPath(options, kind),
                options.UrlOf(kind),
                EnvironmentFor(options, kind),
                Path.Combine(options.LogFolder, kind.ShortName() + ".log")));
    }

    public SystemUnderTestOptions Options { get; }

    public ServiceHost this[ServiceKind kind] => _hosts[kind];

    public IEnumerable<ServiceHost> Hosts => ServiceKinds.All.Select(k => _hosts[k]);

    public Uri UrlOf(ServiceKind kind) => Options.UrlOf(kind);

    /// <summary>A fresh 32-byte secret as lowercase hex, one per run.</summary>
    public static string NewSecret() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    /// <summary>The built assembly a service runs from.</summary>
    public static string AssemblyPath(SystemUnderTestOptions options, ServiceKind kind)
    {
        ArgumentNullException.ThrowIfNull(options);
        var name = kind.ProjectName();
        return Path.Combine(options.RepoRoot, "src", name, "bin", options.Configuration, "net10.0", name + ".dll");
    }

    /// <summary>The configuration a service gets, as ASP.NET Core environment variables (<c>Section__Key</c>).</summary>
    public static IReadOnlyDictionary<string, string> EnvironmentFor(SystemUnderTestOptions options, ServiceKind kind)
    {
        ArgumentNullException.ThrowIfNull(options);
        var db = options.Databases[kind];
        var env = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["Database__Provider"] = db.Provider,
            ["Database__ConnectionString"] = db.ConnectionString,
            ["Seed__Enabled"] = options.SeedEnabled ? "true" : "false",
            ["TwoPhase__Secret"] = options.Secret,
            // Production defaults; a developer's shell with Development set would change behaviour.
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["DOTNET_ENVIRONMENT"] = "Production",
        };
        if (kind == ServiceKind.Order)
        {
            // Storage first: a stock refusal is the more common no, and its reason reads best first.
            var index = 0;
            foreach (var participant in new[] { ServiceKind.Storage, ServiceKind.Delivery })
            {
                env[$"Coordinator__Participants__{index}__Name"] = participant.ShortName();
                var url = options.ParticipantUrls.GetValueOrDefault(participant) ?? options.UrlOf(participant);
                env[$"Coordinator__Participants__{index}__Url"] = url.GetLeftPart(UriPartial.Authority);
                env[$"Coordinator__Participants__{index}__Protocol"] = options.ParticipantProtocol;
                index++;
            }
        }
        else
        {
            env["Participant__CoordinatorUrl"] = options.UrlOf(ServiceKind.Order).GetLeftPart(UriPartial.Authority);
        }

        foreach (var (key, value) in options.ExtraEnvironment)
        {
            env[key] = value;
        }

        if (options.ServiceEnvironment.TryGetValue(kind, out var extra))
        {
            foreach (var (key, value) in extra)
            {
                env[key] = value;
            }
        }

        return env;
    }

    /// <summary>Starts all three and waits until each is ready; on failure everything started is killed.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            foreach (var host in Hosts)
            {
                host.Start();
            }

            await Task.WhenAll(Hosts.Select(h => h.WaitReadyAsync(_probe, Options.ReadyTimeout, cancellationToken)));
            if (Hosts.FirstOrDefault(h => !h.IsRunning) is { } dead)
            {
                throw new ServiceStartException($"{dead.Kind.ProjectName()} exited right after it was ready. Last lines of {dead.LogPath}:\n{dead.ReadLogTail()}");
            }
        }
        catch
        {
            await StopAsync();
            throw;
        }
    }

    /// <summary>kill -9 one service (with its process tree).</summary>
    public Task KillAsync(ServiceKind kind) => _hosts[kind].KillAsync();

    /// <summary>SIGSTOP of one service, until <see cref="Resume"/>.</summary>
    public void Pause(ServiceKind kind) => _hosts[kind].Pause();

    /// <summary>SIGCONT of a paused service.</summary>
    public void Resume(ServiceKind kind) => _hosts[kind].Resume();

    /// <summary>Starts a killed service again with the same settings and waits until it is ready.</summary>
    public Task RestartAsync(ServiceKind kind, CancellationToken cancellationToken) =>
        _hosts[kind].RestartAsync(_probe, Options.ReadyTimeout, cancellationToken);

    /// <summary>Kills every service that is running. Safe to call more than once.</summary>
    public Task StopAsync() => Task.WhenAll(Hosts.Select(h => h.KillAsync()));

    /// <summary>
    /// Last-resort cleanup for process exit handlers, where nothing can be awaited: kills every
    /// service tree without waiting.
    /// </summary>
    public void KillAllNow()
    {
        foreach (var host in Hosts)
        {
            if (host.ProcessId is { } pid)
            {
                try
                {
                    using var process = System.Diagnostics.Process.GetProcessById(pid);
                    process.Kill(entireProcessTree: true);
                }
                catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
                {
                    // Already gone.
                }
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var host in Hosts)
        {
            await host.DisposeAsync();
        }

        if (_ownsProbe)
        {
            _probe.Dispose();
        }
    }
}
