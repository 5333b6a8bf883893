using System.ComponentModel.DataAnnotations;

namespace TwoPhase.AspNetCore;

/// <summary>Settings shared by every TwoPhase service.</summary>
public sealed class TwoPhaseOptions
{
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

    /// <summary>Largest request body accepted, in bytes.</summary>
    [Range(1024, 16 * 1024 * 1024)]
    public int MaxBodyBytes { get; set; } = 64 * 1024;

    /// <summary>
    /// Longest a request may run before it is cancelled with 504. Above the coordinator's prepare deadline plus
    /// decision timeout, so a slow order still gets its answer; an order's transaction itself is never cut.
    /// </summary>
    [Range(100, 600_000)]
    public int RequestTimeoutMs { get; set; } = 30_000;
}

/// <summary>One participant in the coordinator's configuration.</summary>
public sealed class ParticipantEndpoint
{
    [Required]
    public string Name { get; set; } = "";

    [Required]
    public string Url { get; set; } = "";

    /// <summary><c>v1</c> (default) or <c>legacy</c> for a participant that speaks only <c>/prepare</c>, <c>/commit</c>, <c>/rollback</c>.</summary>
    public string Protocol { get; set; } = "v1";
}

/// <summary>The coordinator's bounds (DESIGN §2 defaults).</summary>
public sealed class CoordinatorOptions
{
    public const string SectionName = "Coordinator";

    /// <summary>The participants every order involves. Defaults to the reference storage and delivery services.</summary>
    public List<ParticipantEndpoint> Participants { get; set; } = [];

    [Range(50, 600_000)]
    public int PrepareDeadlineMs { get; set; } = 2000;

    [Range(50, 600_000)]
    public int DecisionTimeoutMs { get; set; } = 2000;

    [Range(1, 60_000)]
    public int RetryInitialDelayMs { get; set; } = 50;

    [Range(1, 600_000)]
    public int RetryMaxDelayMs { get; set; } = 5000;

    [Range(50, 600_000)]
    public int RecoveryIntervalMs { get; set; } = 1000;

    /// <summary>How long past its prepare deadline a transaction is left to the coordinator running it before recovery aborts it.</summary>
    [Range(0, 600_000)]
    public int AbandonGraceMs { get; set; } = 1000;

    [Range(1, 10_000)]
    public int RecoveryBatchSize { get; set; } = 256;

    /// <summary>
    /// Send the messages waiting for one participant at the same moment together, in one
    /// <c>POST /v1/transactions/batch</c> (docs/api.md). Nothing waits to fill a batch. Off: one request per message.
    /// </summary>
    public bool BatchMessages { get; set; } = true;

    /// <summary>Messages per batch at most.</summary>
    [Range(1, BatchLimits.MaxMessages)]
    public int MaxBatchMessages { get; set; } = 64;

    /// <summary>Batch requests in flight to one participant at once; while all are busy, messages gather.</summary>
    [Range(1, 256)]
    public int MaxBatchesInFlight { get; set; } = 4;

    /// <summary>
    /// Admission: transactions run at once by this coordinator (from the request's arrival to its answer); more wait in
    /// the admission queue, and beyond it get 503 with Retry-After (docs/api.md). Sized so that at the measured peak the
    /// admitted orders' queueing stays far below the prepare deadline (docs/performance.md, "Overload").
    /// </summary>
    [Range(1, 100_000)]
    public int MaxInFlight { get; set; } = 256;

    /// <summary>Admission: requests that may wait for a place once <see cref="MaxInFlight"/> run; more are shed at once. 0: no waiting.</summary>
    [Range(0, 100_000)]
    public int AdmissionQueueLimit { get; set; } = 256;

    /// <summary>Admission: the longest a request waits for a place before it is shed. It is not counted in the prepare deadline, which starts once admitted.</summary>
    [Range(1, 600_000)]
    public int AdmissionQueueTimeoutMs { get; set; } = 1000;

    /// <summary>Admission: the Retry-After a shed request is given, in seconds.</summary>
    [Range(1, 3600)]
    public int RetryAfterSeconds { get; set; } = 1;
}

/// <summary>The participant's bounds.</summary>
public sealed class ParticipantOptions
{
    public const string SectionName = "Participant";

    /// <summary>Where to ask about transactions in doubt.</summary>
    public string CoordinatorUrl { get; set; } = "http://127.0.0.1:8000";

    /// <summary>A prepared row older than this asks the coordinator for the decision.</summary>
    [Range(100, 3_600_000)]
    public int InDoubtAfterMs { get; set; } = 5000;

    [Range(50, 600_000)]
    public int CheckIntervalMs { get; set; } = 1000;

    [Range(1, 600_000)]
    public int RetryInitialDelayMs { get; set; } = 100;

    [Range(1, 600_000)]
    public int RetryMaxDelayMs { get; set; } = 5000;

    [Range(1, 10_000)]
    public int BatchSize { get; set; } = 256;

    [Range(50, 60_000)]
    public int QueryTimeoutMs { get; set; } = 2000;

    /// <summary>Serve the old protocol's <c>/prepare</c>, <c>/commit</c>, <c>/rollback</c> at all.</summary>
    public bool LegacyProtocol { get; set; } = true;

    /// <summary>
    /// Let callers use the old protocol without the shared secret, as the old system's coordinator did.
    /// Unset: allowed while the service listens on loopback only, refused otherwise (docs/security.md).
    /// </summary>
    public bool? AllowUnauthenticatedLegacy { get; set; }
}
