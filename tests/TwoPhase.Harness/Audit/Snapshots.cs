using Reference.Contracts;
using TwoPhase.AspNetCore;

namespace TwoPhase.Harness.Audit;

// What the services hold, as their APIs show it: the services' own wire records (Reference.Contracts, and the
// participant runtime's LedgerRow), so a snapshot read over HTTP and one built by hand in a test are the same type
// and the Auditor judges either without I/O.

/// <summary>Ledger and coordinator states as the API spells them.</summary>
public static class States
{
    public const string Committed = "committed";
    public const string Aborted = "aborted";
    public const string Pending = "pending";
    public const string Preparing = "preparing";
    public const string Prepared = "prepared";
    public const string Refused = "refused";

    /// <summary>Every state a participant ledger row may be in (docs/design.md §2).</summary>
    public static bool IsLedgerState(string? state) => state is Prepared or Refused or Committed or Aborted;

    /// <summary>Still being decided at the coordinator.</summary>
    public static bool IsUndecided(string? status) => status is Pending or Preparing;
}

/// <summary>Everything the auditor reads, taken once the system is (ideally) quiet.</summary>
/// <remarks>
/// <see cref="Decisions"/> holds coordinator decisions for transaction ids that participants hold but the order
/// listing does not (looked up one by one with <c>GET /v1/transactions/{id}</c>); it may be empty.
/// The admin listings (<see cref="Unfinished"/>, <see cref="StoragePrepared"/>, <see cref="DeliveryPrepared"/>) need
/// the shared secret; they are a second view of what is still in flight, empty when not read.
/// </remarks>
public sealed record SystemSnapshot(
    IReadOnlyList<OrderView> Orders,
    IReadOnlyList<LedgerRow> StorageLedger,
    IReadOnlyList<LedgerRow> DeliveryLedger,
    IReadOnlyList<Product> Products,
    IReadOnlyList<Courier> Couriers,
    IReadOnlyList<Delivery> Deliveries,
    IReadOnlyDictionary<string, string> Decisions)
{
    /// <summary>The coordinator's transactions not yet completed (<c>/v1/admin/transactions?state=unfinished</c>).</summary>
    public IReadOnlyList<TransactionView> Unfinished { get; init; } = [];

    /// <summary>Storage's rows still prepared (<c>/v1/admin/prepared</c>).</summary>
    public IReadOnlyList<LedgerRow> StoragePrepared { get; init; } = [];

    /// <summary>Delivery's rows still prepared (<c>/v1/admin/prepared</c>).</summary>
    public IReadOnlyList<LedgerRow> DeliveryPrepared { get; init; } = [];

    public IReadOnlyList<OrderView> Committed => Orders.Where(o => o.Status == States.Committed).ToList();

    public IReadOnlyList<OrderView> Aborted => Orders.Where(o => o.Status == States.Aborted).ToList();

    /// <summary>
    /// Nothing in flight: no participant row prepared, every order decided and completed, nothing unfinished.
    /// Leftover reservations are not part of it on purpose: a reservation held with nothing in flight is a
    /// violation the audit must report, not a reason to keep waiting.
    /// </summary>
    public bool IsQuiet => UnsettledCount == 0;

    /// <summary>How many rows keep the system from being quiet, for progress messages.</summary>
    public int UnsettledCount =>
        StorageLedger.Count(r => r.State == States.Prepared)
        + DeliveryLedger.Count(r => r.State == States.Prepared)
        + StoragePrepared.Count
        + DeliveryPrepared.Count
        + Orders.Count(o => States.IsUndecided(o.Status) || !o.Completed)
        + Unfinished.Count;
}
