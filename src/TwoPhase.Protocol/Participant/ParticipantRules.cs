namespace TwoPhase.Protocol;

/// <summary>What a participant must do with a message, given its ledger row (if any).</summary>
public enum ParticipantAction
{
    /// <summary>Reserve and record the vote.</summary>
    Reserve,

    /// <summary>The row already answers the message: reply from it, change nothing.</summary>
    AnswerFromLedger,

    /// <summary>Apply the held reservation for good (prepared -> committed).</summary>
    ApplyCommit,

    /// <summary>Release what is held (prepared -> aborted).</summary>
    Release,

    /// <summary>No row: leave an aborted tombstone so a late PREPARE votes no.</summary>
    WriteTombstone,

    /// <summary>The message contradicts the ledger: refuse with 409 and log it loudly.</summary>
    Conflict,
}

/// <summary>The outcome of a COMMIT or ABORT at a participant: what it answers.</summary>
/// <param name="State">The ledger state after the message (null when there is no row).</param>
/// <param name="Conflict">True when the message contradicts the ledger (409).</param>
/// <param name="Detail">What the conflict is.</param>
public sealed record DecisionResult(LedgerState? State, bool Conflict, string? Detail);

/// <summary>What a COMMIT or ABORT does to a ledger row: the action to carry out, and the answer once it is done.</summary>
/// <param name="Action">What to do: apply, release, write a tombstone, answer from the row, or refuse.</param>
/// <param name="Answer">The reply, whose <see cref="DecisionResult.State"/> is the row's state after the action.</param>
public sealed record DecisionStep(ParticipantAction Action, DecisionResult Answer);

/// <summary>
/// The participant's state machine (docs/design.md §2) as plain functions of the ledger row (or none) and the message;
/// the in-doubt half is <see cref="InDoubtRules"/>. The SQL ledger (<c>TwoPhase.Persistence.LedgerParticipant</c>)
/// follows these on every path, and a simulator can drive them with an in-memory ledger.
/// <code>
///   none     --PREPARE, reserved--> prepared (yes)      none --PREPARE, refused--> refused (no)
///   none     --ABORT-->             aborted (tombstone: a late PREPARE votes no)
///   prepared --COMMIT-->            committed           prepared --ABORT--> aborted (released)
///   any row  --PREPARE-->           the same row, its vote again
///   committed, refused, aborted are final: a repeat is answered from the row, a contradiction is a 409.
/// </code>
/// </summary>
public static class ParticipantRules
{
    /// <summary>The reason a refusal records when the domain gives none.</summary>
    public const string DefaultRefusal = "refused";

    /// <summary>The reason an abort tombstone records.</summary>
    public const string TombstoneReason = "abort arrived before prepare";

    /// <summary>PREPARE: a new id reserves; any existing row, a tombstone included, answers from itself and changes nothing.</summary>
    public static ParticipantAction OnPrepare(LedgerState? current) =>
        current is null ? ParticipantAction.Reserve : ParticipantAction.AnswerFromLedger;

    /// <summary>The vote a ledger row stands for. Only a prepared or committed row ever voted yes.</summary>
    public static VoteKind VoteOf(LedgerState state) =>
        state is LedgerState.Prepared or LedgerState.Committed ? VoteKind.Yes : VoteKind.No;

    /// <summary>PREPARE answered from a row (a repeat, a late one after a tombstone, or the row a new one claimed).</summary>
    public static (VoteKind Vote, string? Reason) Answer(LedgerEntry row) => (VoteOf(row.State), row.Reason);

    /// <summary>
    /// The row a new PREPARE claims once the domain has reserved (prepared, vote yes) or refused (refused, vote no,
    /// nothing held; the refusal keeps the domain's reason). Its vote is <see cref="Answer"/> of it.
    /// </summary>
    public static LedgerEntry Claim(string transactionId, bool reserved, string? holding, string? refusal, DateTimeOffset now) =>
        new(transactionId, reserved ? LedgerState.Prepared : LedgerState.Refused, reserved ? null : refusal ?? DefaultRefusal, holding, now, now, 0, null);

    /// <summary>
    /// The claim found a row after all: another writer claimed the id between our look and our claim. What this
    /// PREPARE reserved is given back, then the row that won answers: one transaction reserves at most once, and a
    /// tombstone written meanwhile still makes the PREPARE vote no.
    /// </summary>
    public static ParticipantAction OnClaimLost(bool reserved) =>
        reserved ? ParticipantAction.Release : ParticipantAction.AnswerFromLedger;

    /// <summary>COMMIT: prepared -> committed; committed again is a no-op; anything else is a conflict.</summary>
    public static DecisionStep OnCommit(LedgerState? current) => current switch
    {
        LedgerState.Prepared => new(ParticipantAction.ApplyCommit, Done(LedgerState.Committed)),
        LedgerState.Committed => new(ParticipantAction.AnswerFromLedger, Done(LedgerState.Committed)),
        // Not prepared here (unknown, refused, aborted): committing would invent state.
        null => new(ParticipantAction.Conflict, new(null, true, "commit for a transaction that was never prepared here")),
        { } state => new(ParticipantAction.Conflict, new(state, true, $"commit for a transaction that is {state.ToWire()} here")),
    };

    /// <summary>ABORT: none -> tombstone; prepared -> aborted, released; refused or aborted again: no-op; committed: conflict.</summary>
    public static DecisionStep OnAbort(LedgerState? current) => current switch
    {
        null => new(ParticipantAction.WriteTombstone, Done(LedgerState.Aborted)),
        LedgerState.Prepared => new(ParticipantAction.Release, Done(LedgerState.Aborted)),
        LedgerState.Refused or LedgerState.Aborted => new(ParticipantAction.AnswerFromLedger, Done(current.Value)),
        // Committed is final; an abort now means the coordinator contradicts itself.
        _ => new(ParticipantAction.Conflict, new(LedgerState.Committed, true, "abort for a transaction already committed here")),
    };

    /// <summary><see cref="OnCommit"/> or <see cref="OnAbort"/>, by the decision the message carries.</summary>
    public static DecisionStep OnDecision(Decision decision, LedgerState? current) =>
        decision == Decision.Commit ? OnCommit(current) : OnAbort(current);

    /// <summary>The row an ABORT for an unknown id leaves (<see cref="ParticipantAction.WriteTombstone"/>).</summary>
    public static LedgerEntry Tombstone(string transactionId, DateTimeOffset now) =>
        new(transactionId, LedgerState.Aborted, TombstoneReason, null, now, now, 0, null);

    private static DecisionResult Done(LedgerState state) => new(state, false, null);
}
