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
/// <param name="Payload">The JSON body each participant receives with PREPARE.</param>
/// <param name="IdempotencyKey">Client retry key; a second begin with the same key finds the first transaction.</param>
/// <param name="RequestHash">Hash of the client's request, to tell a retry from a different request with a reused key.</param>
public sealed record TransactionRequest(
    string Id,
    IReadOnlyList<ParticipantRef> Participants,
    string Payload,
    string? IdempotencyKey = null,
    string? RequestHash = null);

/// <summary>What the coordinator's decision log holds for one transaction.</summary>
public sealed record TransactionRecord(
    string Id,
    TransactionState State,
    IReadOnlyList<string> Participants,
    IReadOnlyList<string> Acknowledged,
    IReadOnlyList<Vote> Votes,
    string? Reason,
    string Payload,
    string? IdempotencyKey,
    string? RequestHash,
    DateTimeOffset CreatedAt,
    DateTimeOffset Deadline,
    DateTimeOffset? DecidedAt,
    DateTimeOffset? CompletedAt,
    int Attempts,
    DateTimeOffset? NextAttemptAt)
{
    public bool IsCompleted => CompletedAt is not null;

    /// <summary>Participants that refused the decision (409): each contradicts a durable decision and needs a person.</summary>
    public IReadOnlyList<string> Conflicts { get; init; } = [];

    /// <summary>When every participant had acknowledged or refused: recovery stopped re-driving it. Never completed.</summary>
    public DateTimeOffset? SettledAt { get; init; }

    /// <summary>Some participant refused the decision.</summary>
    public bool IsConflicted => Conflicts.Count > 0;
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
    IReadOnlyList<string> Acknowledged);
