namespace TwoPhase.Protocol;

/// <summary>A coordinator's durable record of one transaction (docs/design.md §2).</summary>
public enum TransactionState
{
    /// <summary>Prepares may be in flight. Not a decision: past its deadline it becomes <see cref="Aborted"/>.</summary>
    Preparing,

    /// <summary>The commit point has been passed and forced to disk; every participant will commit. Never changes.</summary>
    Committed,

    /// <summary>Decided abort; every participant will release what it holds. Never changes.</summary>
    Aborted,
}

/// <summary>What a participant's ledger says about one transaction.</summary>
public enum LedgerState
{
    /// <summary>Voted yes; resources are held until the decision arrives. The only in-doubt state.</summary>
    Prepared,

    /// <summary>Voted no; nothing is held. Final.</summary>
    Refused,

    /// <summary>The reservation is applied for good. Final.</summary>
    Committed,

    /// <summary>Released, or a tombstone left by an abort that arrived before the prepare. Final.</summary>
    Aborted,
}

/// <summary>The coordinator's decision.</summary>
public enum Decision
{
    /// <summary>All participants voted yes and the decision is durable.</summary>
    Commit,

    /// <summary>Someone voted no, failed, or missed the deadline.</summary>
    Abort,
}

/// <summary>How durable an abort decision must be before the log returns (a commit is always forced).</summary>
public enum Durability
{
    /// <summary>May be lost in a crash of the log's database (PostgreSQL <c>synchronous_commit = off</c>, SQLite <c>synchronous = NORMAL</c>).</summary>
    Relaxed,

    /// <summary>On disk before the call returns.</summary>
    Forced,
}

/// <summary>The answer to "what happened to transaction X?" (<c>GET /v1/transactions/{id}</c>).</summary>
public enum DecisionQueryAnswer
{
    /// <summary>Still preparing within its deadline: ask again later.</summary>
    Pending,

    /// <summary>Decided commit.</summary>
    Committed,

    /// <summary>Decided abort, or unknown to the coordinator (presumed abort).</summary>
    Aborted,

    /// <summary>
    /// Unknown to the coordinator asked, and asked about as another coordinator group's (a 404 whose problem type ends
    /// <c>/not-this-group</c>): that coordinator never issued the id, so it cannot presume it aborted. Not a decision:
    /// ask the right group again later.
    /// </summary>
    NotThisGroup,
}

/// <summary>How a participant answered a PREPARE.</summary>
public enum VoteKind
{
    /// <summary>Prepared: resources are held and the prepared record is durable.</summary>
    Yes,

    /// <summary>Refused: nothing is held.</summary>
    No,

    /// <summary>No usable answer: an error, or the prepare deadline passed. Counts as no.</summary>
    None,
}

/// <summary>How a participant answered a COMMIT or an ABORT.</summary>
public enum AckKind
{
    /// <summary>The participant applied (or had already applied) the decision durably.</summary>
    Acknowledged,

    /// <summary>The participant refused: its ledger contradicts the decision (a protocol violation, 409).</summary>
    Conflict,

    /// <summary>No answer (network, timeout, 5xx): try again later.</summary>
    Failed,
}

/// <summary>
/// The states' names on the wire and in the databases: lower case, the words of the design (docs/design.md §2).
/// They are part of the protocol: a name once written is read back by every later version.
/// </summary>
public static class StateNames
{
    /// <summary><c>preparing</c>, <c>committed</c> or <c>aborted</c>.</summary>
    public static string ToWire(this TransactionState state) => state switch
    {
        TransactionState.Preparing => "preparing",
        TransactionState.Committed => "committed",
        _ => "aborted",
    };

    /// <summary>The state named by <see cref="ToWire(TransactionState)"/>.</summary>
    /// <exception cref="FormatException">Any other string: a corrupt row, never guessed at.</exception>
    public static TransactionState ParseTransactionState(string value) => value switch
    {
        "preparing" => TransactionState.Preparing,
        "committed" => TransactionState.Committed,
        "aborted" => TransactionState.Aborted,
        _ => throw new FormatException($"Unknown transaction state '{value}'."),
    };

    /// <summary><c>prepared</c>, <c>refused</c>, <c>committed</c> or <c>aborted</c>.</summary>
    public static string ToWire(this LedgerState state) => state switch
    {
        LedgerState.Prepared => "prepared",
        LedgerState.Refused => "refused",
        LedgerState.Committed => "committed",
        _ => "aborted",
    };

    /// <summary>The state named by <see cref="ToWire(LedgerState)"/>.</summary>
    /// <exception cref="FormatException">Any other string: a corrupt row, never guessed at.</exception>
    public static LedgerState ParseLedgerState(string value) => value switch
    {
        "prepared" => LedgerState.Prepared,
        "refused" => LedgerState.Refused,
        "committed" => LedgerState.Committed,
        "aborted" => LedgerState.Aborted,
        _ => throw new FormatException($"Unknown ledger state '{value}'."),
    };

    /// <summary>
    /// <c>pending</c>, <c>committed</c> or <c>aborted</c>, as the decision query answers; <c>not-this-group</c> (for logs:
    /// on the wire it is the 404's problem type, never a state).
    /// </summary>
    public static string ToWire(this DecisionQueryAnswer answer) => answer switch
    {
        DecisionQueryAnswer.Pending => "pending",
        DecisionQueryAnswer.Committed => "committed",
        DecisionQueryAnswer.Aborted => "aborted",
        DecisionQueryAnswer.NotThisGroup => "not-this-group",
        _ => throw new ArgumentOutOfRangeException(nameof(answer), answer, "Unknown decision query answer."),
    };

    /// <summary>The coordinator's answer as it came over the wire; null for anything else (read as no answer).</summary>
    public static DecisionQueryAnswer? TryParseDecisionQueryAnswer(string? value) => value switch
    {
        "pending" => DecisionQueryAnswer.Pending,
        "committed" => DecisionQueryAnswer.Committed,
        "aborted" => DecisionQueryAnswer.Aborted,
        _ => null,
    };

    /// <summary><c>yes</c>, <c>no</c> or <c>none</c> (no usable answer).</summary>
    public static string ToWire(this VoteKind vote) => vote switch
    {
        VoteKind.Yes => "yes",
        VoteKind.No => "no",
        _ => "none",
    };
}
