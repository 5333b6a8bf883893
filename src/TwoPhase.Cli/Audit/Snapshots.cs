using TwoPhase.Cli.Api;

namespace TwoPhase.Cli.Audit;

// Plain records of what the services hold, as the auditor needs them. They carry no HTTP, so a
// test can build a snapshot by hand (or from a database) and call the Auditor directly.

/// <summary>Ledger and coordinator states as the API spells them.</summary>
public static class States
{
    public const string Committed = "committed";
    public const string Aborted = "aborted";
    public const string Pending = "pending";
    public const string Preparing = "preparing";
    public const string Prepared = "prepared";
    public const string Refused = "refused";
}

/// <summary>An order at the coordinator; <see cref="Status"/> is committed, aborted or pending.</summary>
public sealed record OrderSnapshot(
    string OrderId,
    string TransactionId,
    string? ClientOrderId,
    string Status,
    IReadOnlyList<OrderLine> Items);

/// <summary>One participant ledger row; <see cref="State"/> is prepared, refused, committed or aborted.</summary>
public sealed record LedgerRowSnapshot(string TransactionId, string State);

/// <summary>A product's counters at the storage service.</summary>
public sealed record ProductSnapshot(string Sku, long OnHand, long Reserved, long Sold, long Received);

/// <summary>A courier at the delivery service; <see cref="Status"/> is free, reserved or busy.</summary>
public sealed record CourierSnapshot(string Id, string Status, string? TransactionId);

/// <summary>A delivery at the delivery service; <see cref="Status"/> is active or completed.</summary>
public sealed record DeliverySnapshot(string TransactionId, string CourierId, string Status);

/// <summary>Everything the auditor reads, taken once the system is (ideally) quiet.</summary>
/// <remarks>
/// <see cref="Decisions"/> holds coordinator decisions for transaction ids that participants hold
/// but the order listing does not (looked up one by one with <c>GET /v1/transactions/{id}</c>); it may be empty.
/// </remarks>
public sealed record SystemSnapshot(
    IReadOnlyList<OrderSnapshot> Orders,
    IReadOnlyList<LedgerRowSnapshot> StorageLedger,
    IReadOnlyList<LedgerRowSnapshot> DeliveryLedger,
    IReadOnlyList<ProductSnapshot> Products,
    IReadOnlyList<CourierSnapshot> Couriers,
    IReadOnlyList<DeliverySnapshot> Deliveries,
    IReadOnlyDictionary<string, string> Decisions)
{
    /// <summary>No participant row is prepared and no order is still pending at the coordinator.</summary>
    public bool IsQuiet =>
        !StorageLedger.Any(r => r.State == States.Prepared)
        && !DeliveryLedger.Any(r => r.State == States.Prepared)
        && !Orders.Any(o => IsUndecided(o.Status));

    /// <summary>How many rows keep the system from being quiet, for progress messages.</summary>
    public int UnsettledCount =>
        StorageLedger.Count(r => r.State == States.Prepared)
        + DeliveryLedger.Count(r => r.State == States.Prepared)
        + Orders.Count(o => IsUndecided(o.Status));

    internal static bool IsUndecided(string status) => status is States.Pending or States.Preparing;
}
