using System.Globalization;

namespace TwoPhase.Harness;

/// <summary>A participant as the coordinator is configured with it: its name, where it is reached, and the protocol.</summary>
public sealed record ParticipantLink(ServiceKind Participant, Uri Url, string Protocol = "v1");

/// <summary>What one service process is configured with; <see cref="ServiceEnvironment.For"/> turns it into environment variables.</summary>
public sealed record ServiceEnvironmentSettings
{
    /// <summary>The cookie file (<c>TwoPhase__SecretFile</c>): always inside the run's folder, never the user's ~/.config.</summary>
    public required string SecretFile { get; init; }

    /// <summary><c>TwoPhase__Secret</c>; null: none configured (the services generate one into <see cref="SecretFile"/>).</summary>
    public string? Secret { get; init; }

    public bool SeedEnabled { get; init; }

    public string LogLevel { get; init; } = "Information";

    /// <summary><c>sqlite</c> or <c>postgres</c>.</summary>
    public required string DatabaseProvider { get; init; }

    public required string ConnectionString { get; init; }

    /// <summary><c>TwoPhase__Database__MaxPoolSize</c>; null leaves the service's default.</summary>
    public int? MaxPoolSize { get; init; }

    /// <summary>The coordinator's participants, in the order it prepares them.</summary>
    public IReadOnlyList<ParticipantLink> Participants { get; init; } = [];

    public bool BatchMessages { get; init; } = true;

    public int? PrepareDeadlineMs { get; init; }

    /// <summary>A participant's <c>TwoPhase__Participant__CoordinatorUrl</c> (where it asks about in-doubt transactions).</summary>
    public Uri? CoordinatorUrl { get; init; }

    public RecoverySettings? Recovery { get; init; }

    /// <summary>Applied last, in order: later dictionaries win.</summary>
    public IReadOnlyList<IReadOnlyDictionary<string, string>> Extra { get; init; } = [];
}

/// <summary>
/// The configuration a reference service gets, as ASP.NET Core environment variables (<c>Section__Key</c>): one
/// builder for the single-host <see cref="ReferenceSystem"/> and the multi-replica topology, so both run the services
/// the same way.
/// </summary>
public static class ServiceEnvironment
{
    public static Dictionary<string, string> For(ServiceKind kind, ServiceEnvironmentSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var env = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["Seed__Enabled"] = settings.SeedEnabled ? "true" : "false",
            ["TwoPhase__SecretFile"] = settings.SecretFile,
            // Production defaults; a developer's shell with Development set would change behaviour.
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["DOTNET_ENVIRONMENT"] = "Production",
            ["Logging__LogLevel__Default"] = settings.LogLevel,
            ["Logging__LogLevel__Microsoft.AspNetCore"] = "Warning",
            ["Logging__Console__FormatterName"] = "simple",
            ["Logging__Console__FormatterOptions__SingleLine"] = "true",
            ["Logging__Console__FormatterOptions__TimestampFormat"] = "HH:mm:ss.fff ",
            ["TwoPhase__Database__Provider"] = settings.DatabaseProvider,
            ["TwoPhase__Database__ConnectionString"] = settings.ConnectionString,
        };
        if (settings.Secret is { } secret)
        {
            env["TwoPhase__Secret"] = secret;
        }

        if (settings.MaxPoolSize is { } pool)
        {
            env["TwoPhase__Database__MaxPoolSize"] = pool.ToString(CultureInfo.InvariantCulture);
        }

        if (kind == ServiceKind.Order)
        {
            var index = 0;
            foreach (var link in settings.Participants)
            {
                env[$"TwoPhase__Coordinator__Participants__{index}__Name"] = link.Participant.ShortName();
                env[$"TwoPhase__Coordinator__Participants__{index}__Url"] = link.Url.GetLeftPart(UriPartial.Authority);
                env[$"TwoPhase__Coordinator__Participants__{index}__Protocol"] = link.Protocol;
                index++;
            }

            env["TwoPhase__Coordinator__BatchMessages"] = settings.BatchMessages ? "true" : "false";
            if (settings.PrepareDeadlineMs is { } deadline)
            {
                env["TwoPhase__Coordinator__PrepareDeadlineMs"] = deadline.ToString(CultureInfo.InvariantCulture);
            }
        }
        else if (settings.CoordinatorUrl is { } coordinator)
        {
            env["TwoPhase__Participant__CoordinatorUrl"] = coordinator.GetLeftPart(UriPartial.Authority);
        }

        foreach (var (key, value) in settings.Recovery?.For(kind) ?? [])
        {
            if (value is { } v)
            {
                env[key] = v.ToString(CultureInfo.InvariantCulture);
            }
        }

        foreach (var extra in settings.Extra)
        {
            foreach (var (key, value) in extra)
            {
                env[key] = value;
            }
        }

        return env;
    }
}
