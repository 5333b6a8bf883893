namespace TwoPhase.Protocol;

/// <summary>
/// A participant's ledger row: one per transaction id, written in the same local transaction as the business
/// change it records (docs/design.md §2). The one row type of the participant, in its store and in the state machine.
/// </summary>
/// <param name="TransactionId">The transaction, as the coordinator named it.</param>
/// <param name="State">Where the transaction stands here.</param>
/// <param name="Reason">Why it was refused, or that it is a tombstone; null for a yes vote.</param>
/// <param name="Holding">What is held, as JSON the domain reads back at commit or abort (and operators read).</param>
/// <param name="CreatedAt">When the row was claimed: the start of its in-doubt timeout.</param>
/// <param name="UpdatedAt">When its state last changed.</param>
/// <param name="Checks">How often the coordinator has been asked about it without a decision.</param>
/// <param name="NextCheckAt">When it may be asked again; null: as soon as it is in doubt.</param>
public sealed record LedgerEntry(
    string TransactionId,
    LedgerState State,
    string? Reason,
    string? Holding,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    int Checks,
    DateTimeOffset? NextCheckAt)
{
    /// <summary>
    /// The coordinator group that sent the PREPARE (docs/protocol.md, "Coordinator groups"): the group an in-doubt row asks,
    /// and the only one that may presume it aborted. Null for a row whose PREPARE named none (an older coordinator, the
    /// old protocol) and for tombstones.
    /// </summary>
    public string? CoordinatorGroup { get; init; }

    /// <summary>Where that group answers the decision query, as its PREPARE said; null: the configured coordinator URL.</summary>
    public string? CoordinatorUrl { get; init; }
}
