using Reference.Contracts;

namespace TwoPhase.Harness.Audit;

/// <summary>What a client was told about one order it placed.</summary>
public enum AnswerOutcome
{
    /// <summary>The coordinator said committed: the order must be committed everywhere, forever.</summary>
    Committed,

    /// <summary>The coordinator said aborted: nothing may be held or applied for it anywhere.</summary>
    Aborted,

    /// <summary>The coordinator said pending (a decision was still being driven): either outcome is allowed, but wholly.</summary>
    Pending,

    /// <summary>No answer (connection dropped, timeout, 5xx): either outcome is allowed, but wholly.</summary>
    Unknown,

    /// <summary>A 4xx: the coordinator refused the request itself; no transaction should exist for it.</summary>
    Rejected,
}

/// <summary>One answer a load-generating client got, kept so the audit can hold the system to it.</summary>
/// <remarks>
/// <see cref="ClientOrderId"/> is the client's own id for the order: how the audit finds an order
/// whose answer was lost. <see cref="Reason"/> is the abort reason, or the error for unknown and
/// rejected answers; <see cref="ReasonClass"/> groups it for the summary, e.g. "delivery no: no free courier".
/// </remarks>
public sealed record ClientAnswer(
    string ClientOrderId,
    string IdempotencyKey,
    AnswerOutcome Outcome,
    string? OrderId,
    string? TransactionId,
    int? HttpStatus,
    string? Reason,
    string? ReasonClass,
    IReadOnlyList<OrderLine> Items,
    double LatencyMs);
