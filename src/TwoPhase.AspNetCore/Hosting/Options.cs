using System.ComponentModel.DataAnnotations;

namespace TwoPhase.AspNetCore;

/// <summary>Settings shared by every TwoPhase role, section <c>TwoPhase</c> (environment <c>TwoPhase__MaxBodyBytes</c>).</summary>
public sealed class TwoPhaseOptions
{
    /// <summary>The configuration section these options bind from.</summary>
    public const string SectionName = "TwoPhase";

    /// <summary>
    /// The secret shared by the services. When set, protocol and admin endpoints demand
    /// <c>Authorization: Bearer &lt;secret&gt;</c>, and this service sends it. Never logged.
    /// </summary>
    public string? Secret { get; set; }

    /// <summary>
    /// The owner-only file holding the secret this user's services on this machine share when neither
    /// <see cref="Secret"/> nor <c>TWOPHASE_SECRET</c> is set; the first service to start creates it (docs/security.md).
    /// Unset: <c>$XDG_CONFIG_HOME/twophase/secret</c>, else <c>~/.config/twophase/secret</c> (<c>%APPDATA%\twophase\secret</c> on Windows).
    /// </summary>
    public string? SecretFile { get; set; }

    /// <summary>Largest request body TwoPhase's own endpoints accept, in bytes; the host's other endpoints keep their own limits.</summary>
    [Range(1024, 16 * 1024 * 1024)]
    public int MaxBodyBytes { get; set; } = 64 * 1024;

    /// <summary>
    /// Longest a request to TwoPhase's own endpoints may run before it is cancelled with 504. Above the coordinator's prepare deadline plus
    /// decision timeout, so a slow order still gets its answer; an order's transaction itself is never cut.
    /// </summary>
    [Range(100, 600_000)]
    public int RequestTimeoutMs { get; set; } = 30_000;
}

/// <summary>The participant's bounds, section <c>TwoPhase:Participant</c>.</summary>
public sealed class ParticipantOptions
{
    /// <summary>The configuration section these options bind from.</summary>
    public const string SectionName = "TwoPhase:Participant";

    /// <summary>
    /// Where to ask about transactions in doubt (the coordinator's base URL). No default: a participant that cannot
    /// ask would hold its prepared rows forever, so an unset value stops it at start, naming this key.
    /// </summary>
    [Required]
    [Url]
    public string CoordinatorUrl { get; set; } = "";

    /// <summary>A prepared row older than this asks the coordinator for the decision.</summary>
    [Range(100, 3_600_000)]
    public int InDoubtAfterMs { get; set; } = 5000;

    /// <summary>How often the in-doubt worker scans for prepared rows older than <see cref="InDoubtAfterMs"/>.</summary>
    [Range(50, 600_000)]
    public int CheckIntervalMs { get; set; } = 1000;

    /// <summary>First wait before asking the coordinator again about a row it could not answer for; doubles up to <see cref="RetryMaxDelayMs"/>.</summary>
    [Range(1, 600_000)]
    public int RetryInitialDelayMs { get; set; } = 100;

    /// <summary>Longest wait between two questions about the same in-doubt row.</summary>
    [Range(1, 600_000)]
    public int RetryMaxDelayMs { get; set; } = 5000;

    /// <summary>In-doubt rows one scan handles at most, so a large backlog is worked through in bounded steps.</summary>
    [Range(1, 10_000)]
    public int BatchSize { get; set; } = 256;

    /// <summary>How long one decision query to the coordinator may take before it counts as unanswered.</summary>
    [Range(50, 60_000)]
    public int QueryTimeoutMs { get; set; } = 2000;

    /// <summary>
    /// Serve the old protocol's <c>/prepare</c>, <c>/commit</c>, <c>/rollback</c> at the root. Off by default: a new
    /// participant has no old clients; the reference storage and delivery services switch it on.
    /// </summary>
    public bool LegacyProtocol { get; set; }

    /// <summary>
    /// Let callers use the old protocol without the shared secret, as the old system's coordinator did.
    /// Unset: allowed while the service listens on loopback only, refused otherwise (docs/security.md).
    /// </summary>
    public bool? AllowUnauthenticatedLegacy { get; set; }
}
