namespace TwoPhase.Protocol;

/// <summary>A participant as the coordinator knows it: a name, where it listens, which dialect it speaks.</summary>
/// <param name="Name">Stable name used in votes and acknowledgements ("storage", "delivery").</param>
/// <param name="Url">Base URL of the participant.</param>
/// <param name="Legacy">True when it speaks only the old <c>/prepare</c>, <c>/commit</c>, <c>/rollback</c> protocol.</param>
public sealed record ParticipantRef(string Name, Uri Url, bool Legacy = false);

/// <summary>One participant's answer to PREPARE.</summary>
/// <param name="Participant">Who voted.</param>
/// <param name="Kind">Yes, no, or no usable answer.</param>
/// <param name="Reason">Why not yes, for people reading the order's answer.</param>
public sealed record Vote(string Participant, VoteKind Kind, string? Reason = null);

/// <summary>One participant's answer to COMMIT or ABORT.</summary>
/// <param name="Participant">Who answered.</param>
/// <param name="Kind">Acknowledged, conflict or failed.</param>
/// <param name="Detail">What went wrong, when it did.</param>
public sealed record Ack(string Participant, AckKind Kind, string? Detail = null);

/// <summary>A new transaction as the coordinator's caller describes it.</summary>
/// <param name="Id">Transaction id, unique; also the order id.</param>
/// <param name="Participants">Everyone who must vote.</param>
/// <param name="Payloads">
/// Participant name to that participant's JSON body: what it receives with PREPARE (and, in the old protocol's dialect,
/// what its COMMIT and ROLLBACK are built from). Exactly one per participant: each gets only its own.
/// </param>
/// <param name="IdempotencyKey">Client retry key; a second begin with the same key finds the first transaction.</param>
/// <param name="RequestHash">Hash of the client's request, to tell a retry from a different request with a reused key.</param>
/// <param name="Metadata">The caller's own JSON, kept with the transaction in the decision log and sent to no participant (the order service keeps its order there).</param>
public sealed record TransactionRequest(
    string Id,
    IReadOnlyList<ParticipantRef> Participants,
    IReadOnlyDictionary<string, string> Payloads,
    string? IdempotencyKey = null,
    string? RequestHash = null,
    string? Metadata = null)
{
    /// <summary>The same <paramref name="payload"/> for every participant, as before payloads were per participant.</summary>
    public static IReadOnlyDictionary<string, string> SamePayload(IEnumerable<ParticipantRef> participants, string payload) =>
        participants.ToDictionary(p => p.Name, _ => payload, StringComparer.Ordinal);
}

/// <summary>What the coordinator's decision log holds for one transaction.</summary>
public sealed record TransactionRecord(
    string Id,
    TransactionState State,
    IReadOnlyList<string> Participants,
    IReadOnlyList<string> Acknowledged,
    IReadOnlyList<Vote> Votes,
    string? Reason,
    IReadOnlyDictionary<string, string> Payloads,
    string? IdempotencyKey,
    string? RequestHash,
    DateTimeOffset CreatedAt,
    DateTimeOffset Deadline,
    DateTimeOffset? DecidedAt,
    DateTimeOffset? CompletedAt,
    int Attempts,
    DateTimeOffset? NextAttemptAt)
{
    /// <summary>Every participant acknowledged the decision: nothing is left to drive for this transaction.</summary>
    public bool IsCompleted => CompletedAt is not null;

    /// <summary>Participants that refused the decision (409): each contradicts a durable decision and needs a person.</summary>
    public IReadOnlyList<string> Conflicts { get; init; } = [];

    /// <summary>When every participant had acknowledged or refused: recovery stopped re-driving it. Never completed.</summary>
    public DateTimeOffset? SettledAt { get; init; }

    /// <summary>Some participant refused the decision.</summary>
    public bool IsConflicted => Conflicts.Count > 0;

    /// <summary>The caller's own JSON given with the request (<see cref="TransactionRequest.Metadata"/>), if any.</summary>
    public string? Metadata { get; init; }

    /// <summary>
    /// The coordinator replica that last took the transaction (began or decided it, or claimed it for recovery); it is
    /// that replica's until <see cref="NextAttemptAt"/>. Null on rows written before replicas had names.
    /// </summary>
    public string? Owner { get; init; }

    /// <summary>What <paramref name="participant"/> was sent with PREPARE; <c>{}</c> for a name the record has no payload for.</summary>
    public string PayloadOf(string participant) => Payloads.TryGetValue(participant, out var payload) ? payload : "{}";
}

/// <summary>The coordinator's answer to its caller once the decision is durable.</summary>
/// <param name="Id">Transaction id.</param>
/// <param name="State">Committed or aborted (never preparing).</param>
/// <param name="Reason">Why it aborted: who voted no and why, or which deadline passed.</param>
/// <param name="Votes">Each participant's vote.</param>
/// <param name="Acknowledged">Participants that have acknowledged the decision so far.</param>
public sealed record TransactionOutcome(
    string Id,
    TransactionState State,
    string? Reason,
    IReadOnlyList<Vote> Votes,
    IReadOnlyList<string> Acknowledged)
{
    /// <summary>
    /// True when the request's idempotency key found an earlier transaction: this call ran nothing, and the outcome is
    /// that transaction's (its <see cref="Id"/>, which may differ from the request's).
    /// </summary>
    public bool Replayed { get; init; }
}
