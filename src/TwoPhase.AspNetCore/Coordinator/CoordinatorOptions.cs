using System.ComponentModel.DataAnnotations;
using TwoPhase.Protocol;

namespace TwoPhase.AspNetCore;

/// <summary>One participant in the coordinator's configuration.</summary>
public sealed class ParticipantEndpoint
{
    /// <summary>The participant's name, as transactions and the decision log name it.</summary>
    [Required]
    public string Name { get; set; } = "";

    /// <summary>The participant's base URL; its protocol endpoints are below it.</summary>
    [Required]
    [Url]
    public string Url { get; set; } = "";

    /// <summary><c>v1</c> (default) or <c>legacy</c> for a participant that speaks only <c>/prepare</c>, <c>/commit</c>, <c>/rollback</c>.</summary>
    [RegularExpression("(?i)^(v1|legacy)$", ErrorMessage = "must be v1 or legacy")]
    public string Protocol { get; set; } = "v1";
}

/// <summary>
/// The coordinator runtime's settings, section <c>TwoPhase:Coordinator</c>: its participants, recovery schedule, batching and
/// admission. The protocol's own bounds (prepare deadline, decision timeout, retry delays, abandon grace, recovery batch)
/// are <see cref="CoordinatorSettings"/>, bound from the same section (<c>AddTwoPhaseCoordinator</c>),
/// so each setting has one home and one key. Durations are <see cref="TimeSpan"/>s (<c>00:00:01</c>); the older
/// <c>...Ms</c> keys still work (docs/api.md, "Configuration").
/// </summary>
public sealed class CoordinatorOptions
{
    /// <summary>The configuration section these options bind from.</summary>
    public const string SectionName = "TwoPhase:Coordinator";

    internal const string NoParticipants = "no participants are configured; list each one's Name and Url (TwoPhase__Coordinator__Participants__0__Name, ...__Url)";

    /// <summary>
    /// This replica's name in the shared decision log: the owner of what it begins, decides and claims for recovery
    /// (docs/recovery.md, "Replicas and leases"). Each replica of one coordinator group needs its own; the default, the
    /// machine's name and the process id, is. 1 to 200 characters.
    /// </summary>
    [Required]
    [StringLength(TwoPhase.Persistence.SqlDecisionLog.MaxReplicaIdLength, MinimumLength = 1)]
    public string ReplicaId { get; set; } = TwoPhase.Persistence.SqlDecisionLog.DefaultReplicaId;

    /// <summary>The participants this coordinator's transactions may involve, by name. No default: none is refused at start.</summary>
    public List<ParticipantEndpoint> Participants { get; set; } = [];

    /// <summary>
    /// The coordinator group this coordinator belongs to: every replica of one group shares one decision log, and only
    /// the group that issued a transaction may presume it aborted (docs/protocol.md, "Coordinator groups"). Sent with
    /// every PREPARE and kept in the participant's ledger, so an in-doubt participant asks this group. 1-64 characters,
    /// <c>[A-Za-z0-9][A-Za-z0-9._-]*</c>.
    /// </summary>
    public string Group { get; set; } = CoordinatorGroups.Default;

    /// <summary>
    /// Where participants ask this group about its transactions (the group's load balancer), an absolute http or https
    /// URL; sent with every PREPARE. Null: participants ask the coordinator URL they are configured with.
    /// </summary>
    public string? AdvertisedUrl { get; set; }

    /// <summary>How often recovery scans the decision log (DESIGN §2); it also runs once at start-up.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:10:00")]
    public TimeSpan RecoveryInterval { get; set; } = TimeSpan.FromSeconds(1);

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
    [Range(typeof(TimeSpan), "00:00:00.001", "00:10:00")]
    public TimeSpan AdmissionQueueTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Admission: the Retry-After a shed request is given, in seconds.</summary>
    [Range(1, 3600)]
    public int RetryAfterSeconds { get; set; } = 1;

    /// <summary>Checks the annotations cannot say: at least one participant, and no name given twice.</summary>
    internal static IEnumerable<OptionFailure?> Check(CoordinatorOptions o)
    {
        if (o.Participants.Count == 0)
        {
            yield return new OptionFailure(nameof(Participants), NoParticipants);
        }

        foreach (var name in o.Participants.GroupBy(p => p.Name, StringComparer.Ordinal).Where(g => g.Count() > 1))
        {
            yield return new OptionFailure(nameof(Participants), $"the name '{name.Key}' is given to {name.Count()} participants");
        }

        if (CoordinatorGroups.CheckGroup(o.Group) is { } badGroup)
        {
            yield return new OptionFailure(nameof(Group), badGroup);
        }

        if (o.AdvertisedUrl is not null && CoordinatorGroups.CheckUrl(o.AdvertisedUrl) is { } badUrl)
        {
            yield return new OptionFailure(nameof(AdvertisedUrl), badUrl);
        }
    }

    /// <summary>
    /// The bounds of the protocol's settings, as the <c>...Ms</c> ranges were before they were durations (DESIGN §2
    /// defaults); <see cref="CoordinatorSettings"/> lives in the pure core and carries no annotations.
    /// </summary>
    internal static IEnumerable<OptionFailure?> Bounds(CoordinatorSettings s)
    {
        var tenMinutes = TimeSpan.FromMinutes(10);
        yield return OptionFailure.Unless(nameof(s.PrepareDeadline), s.PrepareDeadline, TimeSpan.FromMilliseconds(50), tenMinutes);
        yield return OptionFailure.Unless(nameof(s.DecisionTimeout), s.DecisionTimeout, TimeSpan.FromMilliseconds(50), tenMinutes);
        yield return OptionFailure.Unless(nameof(s.RetryInitialDelay), s.RetryInitialDelay, TimeSpan.FromMilliseconds(1), TimeSpan.FromMinutes(1));
        yield return OptionFailure.Unless(nameof(s.RetryMaxDelay), s.RetryMaxDelay, TimeSpan.FromMilliseconds(1), tenMinutes);
        yield return OptionFailure.Unless(nameof(s.AbandonGrace), s.AbandonGrace, TimeSpan.Zero, tenMinutes);
        yield return OptionFailure.Unless(nameof(s.DuplicateWait), s.DuplicateWait, TimeSpan.Zero, TimeSpan.FromMinutes(30));
        yield return OptionFailure.Unless(nameof(s.RecoveryBatchSize), s.RecoveryBatchSize, 1, 10_000);
        yield return OptionFailure.Unless(nameof(s.RecoveryParallelism), s.RecoveryParallelism, 1, 256);
        yield return OptionFailure.Unless(nameof(s.RecoveryLease), s.RecoveryLease, TimeSpan.FromMilliseconds(50), tenMinutes);
        yield return OptionFailure.Unless(nameof(s.MaxBackgroundPhaseTwo), s.MaxBackgroundPhaseTwo, 1, 100_000);
    }
}
