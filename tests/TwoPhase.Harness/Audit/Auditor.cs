using Reference.Contracts;
using TwoPhase.AspNetCore;

namespace TwoPhase.Harness.Audit;

/// <summary>
/// Checks the invariants of docs/design.md §2 against a <see cref="SystemSnapshot"/> and, optionally, the
/// answers clients got. Pure: no I/O, so tests can feed it hand-made snapshots. The one judge of every
/// run: the CLI's audit, chaos and bench, and the end-to-end and fuzz tests.
/// </summary>
/// <remarks>
/// Every order is assumed to involve both participants (each order needs stock and a courier).
/// Rows still <c>prepared</c> are reported by the quiescence invariant only, not as atomicity
/// violations, so a snapshot taken too early reads as "not settled" rather than "inconsistent".
/// Each invariant's name is a constant of <see cref="Invariant"/>.
/// </remarks>
public sealed class Auditor
{
    /// <summary>How many violations each invariant lists; the count is always exact.</summary>
    public int MaxViolationsListed { get; init; } = 20;

    public AuditReport Check(SystemSnapshot snapshot, IReadOnlyList<ClientAnswer>? answers = null)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var view = new View(snapshot);
        var results = new List<InvariantResult>
        {
            AtomicOutcome(view),
            Validity(view),
            Conservation(view),
            NoDoubleBooking(view),
            Settled(view),
            ExactlyOnce(view),
        };
        if (answers is not null)
        {
            results.Add(ClientAnswers(view, answers));
        }

        return new AuditReport(results, snapshot.IsQuiet, snapshot.Orders.Count, answers?.Count ?? 0);
    }

    private ViolationList NewList(string name, string description) => new(name, description, MaxViolationsListed);

    private InvariantResult AtomicOutcome(View v)
    {
        var list = NewList(Invariant.AtomicOutcome,
            "committed at the coordinator => committed at storage and delivery; aborted => committed nowhere; never committed at one participant and aborted at the other");
        foreach (var order in v.Snapshot.Orders)
        {
            var tx = order.TransactionId;
            var storage = v.StorageState(tx);
            var delivery = v.DeliveryState(tx);
            switch (order.Status)
            {
                case States.Committed:
                    foreach (var (participant, state) in new[] { ("storage", storage), ("delivery", delivery) })
                    {
                        // prepared is "not yet", reported by the settled invariant.
                        if (state is not (States.Committed or States.Prepared))
                        {
                            list.Add($"order {order.OrderId} (tx {tx}) is committed at the coordinator but {participant} has it {Describe(state)}");
                        }
                    }

                    break;
                case States.Aborted:
                    foreach (var (participant, state) in new[] { ("storage", storage), ("delivery", delivery) })
                    {
                        if (state == States.Committed)
                        {
                            list.Add($"order {order.OrderId} (tx {tx}) is aborted at the coordinator but committed at {participant}");
                        }
                    }

                    break;
            }
        }

        // Independent of the coordinator: the two participants must never disagree on a final outcome.
        foreach (var tx in v.StorageRows.Keys.Union(v.DeliveryRows.Keys))
        {
            var storage = v.StorageState(tx);
            var delivery = v.DeliveryState(tx);
            if ((storage == States.Committed && delivery is States.Aborted or States.Refused)
                || (delivery == States.Committed && storage is States.Aborted or States.Refused))
            {
                list.Add($"tx {tx}: storage {Describe(storage)}, delivery {Describe(delivery)}");
            }
        }

        return list.ToResult();
    }

    private InvariantResult Validity(View v)
    {
        var list = NewList(Invariant.Validity,
            "a participant commits only transactions the coordinator decided to commit; commit is decided only on a yes from every participant; ledger rows are in a protocol state");
        foreach (var order in v.Snapshot.Orders.Where(o => o.Status == States.Committed))
        {
            var votes = order.Votes ?? new Dictionary<string, VoteView>();
            if (votes.Count != Participants.Length || votes.Values.Any(vote => vote.Vote != "yes"))
            {
                list.Add($"order {order.OrderId} is committed without a yes from every participant: {string.Join(", ", votes.Select(kv => $"{kv.Key}={kv.Value.Vote}"))}");
            }
        }

        foreach (var (participant, rows) in new[] { ("storage", v.StorageRows), ("delivery", v.DeliveryRows) })
        {
            foreach (var row in rows.Values.Where(r => !States.IsLedgerState(r.State)))
            {
                list.Add($"{participant} ledger row {row.TransactionId} has unknown state {Describe(row.State)}");
            }

            foreach (var row in rows.Values.Where(r => r.State == States.Committed))
            {
                var decision = v.Decision(row.TransactionId);
                if (decision != States.Committed)
                {
                    list.Add($"{participant} committed tx {row.TransactionId} but the coordinator has it {Describe(decision)}");
                }
            }
        }

        return list.ToResult();
    }

    private InvariantResult Conservation(View v)
    {
        var list = NewList(Invariant.Conservation,
            "per product onHand + sold == received, nothing negative, reserved <= onHand (0 once quiet), sold == units of committed orders");
        var soldByOrders = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var order in v.Snapshot.Orders.Where(o => o.Status == States.Committed))
        {
            foreach (var line in order.Items)
            {
                soldByOrders[line.Sku] = soldByOrders.GetValueOrDefault(line.Sku) + line.Quantity;
            }
        }

        var quiet = v.Snapshot.IsQuiet;
        foreach (var p in v.Snapshot.Products)
        {
            if (p.OnHand + p.Sold != p.Received)
            {
                list.Add($"{p.Sku}: onHand {p.OnHand} + sold {p.Sold} != received {p.Received}");
            }

            if (p.OnHand < 0 || p.Reserved < 0 || p.Sold < 0 || p.Received < 0)
            {
                list.Add($"{p.Sku}: negative counter (onHand {p.OnHand}, reserved {p.Reserved}, sold {p.Sold}, received {p.Received})");
            }

            if (p.Reserved > p.OnHand)
            {
                list.Add($"{p.Sku}: reserved {p.Reserved} > onHand {p.OnHand}");
            }

            if (quiet && p.Reserved != 0)
            {
                list.Add($"{p.Sku}: {p.Reserved} units still reserved with no transaction prepared");
            }

            var expected = soldByOrders.GetValueOrDefault(p.Sku);
            if (p.Sold != expected)
            {
                list.Add($"{p.Sku}: sold {p.Sold} but committed orders hold {expected} units");
            }
        }

        var known = v.Snapshot.Products.Select(p => p.Sku).ToHashSet(StringComparer.Ordinal);
        foreach (var (sku, units) in soldByOrders.Where(kv => !known.Contains(kv.Key)))
        {
            list.Add($"{sku}: committed orders hold {units} units of a product storage does not list");
        }

        return list.ToResult();
    }

    private InvariantResult NoDoubleBooking(View v)
    {
        var list = NewList(Invariant.NoDoubleBooking,
            "no courier on two active deliveries; a courier is busy for exactly its active delivery, free for nothing; each committed order has exactly one delivery");
        var active = v.Snapshot.Deliveries.Where(d => d.Status == "active").ToList();
        foreach (var group in active.GroupBy(d => d.CourierId, StringComparer.Ordinal).Where(g => g.Count() > 1))
        {
            list.Add($"courier {group.Key} is on {group.Count()} active deliveries: {string.Join(", ", group.Select(d => d.TransactionId).Take(5))}");
        }

        var activeByCourier = active.GroupBy(d => d.CourierId, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var couriers = new Dictionary<string, Courier>(StringComparer.Ordinal);
        foreach (var c in v.Snapshot.Couriers)
        {
            if (!couriers.TryAdd(c.Id, c))
            {
                list.Add($"courier id {c.Id} is listed twice");
                continue;
            }

            var hasActive = activeByCourier.TryGetValue(c.Id, out var delivery);
            switch (c.Status)
            {
                case "busy" when !hasActive:
                    list.Add($"courier {c.Id} is busy but has no active delivery");
                    break;
                case "busy" when c.TransactionId != delivery!.TransactionId:
                    list.Add($"courier {c.Id} is busy for tx {c.TransactionId ?? "nothing"} but its active delivery is tx {delivery.TransactionId}");
                    break;
                case "free" or "reserved" when hasActive:
                    list.Add($"courier {c.Id} is {c.Status} but has an active delivery (tx {delivery!.TransactionId})");
                    break;
                case "free" when c.TransactionId is not null:
                    list.Add($"courier {c.Id} is free but names tx {c.TransactionId}");
                    break;
                case "reserved" when v.Snapshot.IsQuiet:
                    list.Add($"courier {c.Id} is still reserved (tx {c.TransactionId ?? "?"}) with no transaction prepared");
                    break;
                case "busy" or "free" or "reserved":
                    break;
                default:
                    list.Add($"courier {c.Id} has unknown status {Describe(c.Status)}");
                    break;
            }
        }

        foreach (var d in v.Snapshot.Deliveries.Where(d => !couriers.ContainsKey(d.CourierId)))
        {
            list.Add($"delivery for tx {d.TransactionId} names courier {d.CourierId}, which the delivery service does not list");
        }

        var deliveriesByTx = v.Snapshot.Deliveries.GroupBy(d => d.TransactionId, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        foreach (var order in v.Snapshot.Orders.Where(o => o.Status == States.Committed))
        {
            var count = deliveriesByTx.GetValueOrDefault(order.TransactionId);
            if (count != 1 && v.DeliveryState(order.TransactionId) != States.Prepared)
            {
                list.Add($"committed order {order.OrderId} (tx {order.TransactionId}) has {count} deliveries");
            }
        }

        foreach (var tx in deliveriesByTx.Keys)
        {
            var decision = v.Decision(tx);
            if (decision != States.Committed)
            {
                list.Add($"a delivery exists for tx {tx}, which the coordinator has {Describe(decision)}");
            }
        }

        return list.ToResult();
    }

    private InvariantResult Settled(View v)
    {
        var list = NewList(Invariant.Settled,
            "once quiet, no participant row is still prepared and every coordinator order is decided and completed");
        foreach (var (participant, rows, listed) in new[]
                 {
                     ("storage", v.StorageRows, v.Snapshot.StoragePrepared),
                     ("delivery", v.DeliveryRows, v.Snapshot.DeliveryPrepared),
                 })
        {
            // The ledger listing and the admin listing of prepared rows are two views; a row in either is still held.
            var prepared = rows.Values.Where(r => r.State == States.Prepared).Select(r => r.TransactionId)
                .Union(listed.Select(r => r.TransactionId), StringComparer.Ordinal);
            foreach (var tx in prepared)
            {
                list.Add($"{participant} still holds tx {tx} prepared (coordinator: {Describe(v.Decision(tx))})");
            }
        }

        var reported = new HashSet<string>(StringComparer.Ordinal);
        foreach (var order in v.Snapshot.Orders)
        {
            var problem = order.Status switch
            {
                _ when States.IsUndecided(order.Status) => $"is still {order.Status} at the coordinator",
                States.Committed or States.Aborted when !order.Completed => $"is {order.Status} but not completed (acknowledged by [{string.Join(",", order.Acknowledged ?? [])}])",
                States.Committed or States.Aborted => null,
                _ => $"has unknown status {Describe(order.Status)}",
            };
            if (problem is not null)
            {
                reported.Add(order.TransactionId);
                list.Add($"order {order.OrderId} (tx {order.TransactionId}) {problem}");
            }
        }

        foreach (var t in v.Snapshot.Unfinished.Where(t => !reported.Contains(t.TransactionId)))
        {
            list.Add($"tx {t.TransactionId} is not completed at the coordinator (state {t.State}, acknowledged [{string.Join(",", t.Acknowledged ?? [])}])");
        }

        return list.ToResult();
    }

    private InvariantResult ExactlyOnce(View v)
    {
        var list = NewList(Invariant.ExactlyOnce,
            "one order per client order id, one transaction per order (of the same id), one ledger row per transaction at each participant");
        foreach (var group in v.Snapshot.Orders.Where(o => o.ClientOrderId is not null)
                     .GroupBy(o => o.ClientOrderId!, StringComparer.Ordinal).Where(g => g.Count() > 1))
        {
            list.Add($"client order id {group.Key} became {group.Count()} orders: {string.Join(", ", group.Select(o => o.OrderId).Take(5))}");
        }

        // The reference app runs each order as the transaction of the same id, so a retry can never fork one.
        foreach (var order in v.Snapshot.Orders.Where(o => o.OrderId != o.TransactionId))
        {
            list.Add($"order {order.OrderId} runs as tx {order.TransactionId}");
        }

        foreach (var group in v.Snapshot.Orders.GroupBy(o => o.TransactionId, StringComparer.Ordinal).Where(g => g.Count() > 1))
        {
            list.Add($"tx {group.Key} is shared by {group.Count()} orders");
        }

        foreach (var dup in v.DuplicateLedgerRows)
        {
            list.Add(dup);
        }

        return list.ToResult();
    }

    private InvariantResult ClientAnswers(View v, IReadOnlyList<ClientAnswer> answers)
    {
        var list = NewList(Invariant.ClientAnswers,
            "told committed => committed at both participants; told aborted => nothing held or applied anywhere; no answer => wholly committed or wholly aborted");
        var byOrderId = v.Snapshot.Orders.GroupBy(o => o.OrderId, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var byClientId = v.Snapshot.Orders.Where(o => o.ClientOrderId is not null)
            .GroupBy(o => o.ClientOrderId!, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var deliveryTx = v.Snapshot.Deliveries.Select(d => d.TransactionId).ToHashSet(StringComparer.Ordinal);

        foreach (var answer in answers)
        {
            OrderView? order = null;
            if (answer.OrderId is not null)
            {
                byOrderId.TryGetValue(answer.OrderId, out order);
            }

            if (order is null)
            {
                byClientId.TryGetValue(answer.ClientOrderId, out order);
            }

            var tx = order?.TransactionId ?? answer.TransactionId;
            var label = $"client order {answer.ClientOrderId}";
            var storage = tx is null ? null : v.StorageState(tx);
            var delivery = tx is null ? null : v.DeliveryState(tx);
            var coordinator = tx is null ? null : v.Decision(tx);

            switch (answer.Outcome)
            {
                case AnswerOutcome.Committed:
                    if (order is null)
                    {
                        list.Add($"{label} was told committed (order {answer.OrderId}) but the coordinator has no such order");
                    }
                    else if (coordinator != States.Committed || storage != States.Committed || delivery != States.Committed)
                    {
                        list.Add($"{label} was told committed but is coordinator {Describe(coordinator)}, storage {Describe(storage)}, delivery {Describe(delivery)}");
                    }

                    break;
                case AnswerOutcome.Aborted:
                    if (coordinator == States.Committed || storage is States.Committed or States.Prepared
                        || delivery is States.Committed or States.Prepared || (tx is not null && deliveryTx.Contains(tx)))
                    {
                        list.Add($"{label} was told aborted but is coordinator {Describe(coordinator)}, storage {Describe(storage)}, delivery {Describe(delivery)}");
                    }

                    break;
                default:
                    // No definite answer: either outcome is fine, but it must be the same everywhere.
                    var anyCommitted = coordinator == States.Committed || storage == States.Committed || delivery == States.Committed;
                    var allCommitted = coordinator == States.Committed && storage == States.Committed && delivery == States.Committed;
                    if (anyCommitted && !allCommitted)
                    {
                        list.Add($"{label} ({answer.Outcome.ToString().ToLowerInvariant()} answer) is partly committed: coordinator {Describe(coordinator)}, storage {Describe(storage)}, delivery {Describe(delivery)}");
                    }

                    break;
            }
        }

        return list.ToResult();
    }

    // Every order is assumed to involve both participants (each order needs stock and a courier).
    private static readonly string[] Participants = ["storage", "delivery"];

    private static string Describe(string? state) => state ?? "missing";

    /// <summary>Indexes a snapshot once so each invariant looks rows up by transaction id.</summary>
    private sealed class View
    {
        public View(SystemSnapshot snapshot)
        {
            Snapshot = snapshot;
            StorageRows = Index("storage", snapshot.StorageLedger);
            DeliveryRows = Index("delivery", snapshot.DeliveryLedger);
            foreach (var order in snapshot.Orders)
            {
                _orderDecisions.TryAdd(order.TransactionId, order.Status);
            }
        }

        private readonly Dictionary<string, string> _orderDecisions = new(StringComparer.Ordinal);

        public SystemSnapshot Snapshot { get; }

        public Dictionary<string, LedgerRow> StorageRows { get; }

        public Dictionary<string, LedgerRow> DeliveryRows { get; }

        public List<string> DuplicateLedgerRows { get; } = [];

        public string? StorageState(string tx) => StorageRows.TryGetValue(tx, out var row) ? row.State : null;

        public string? DeliveryState(string tx) => DeliveryRows.TryGetValue(tx, out var row) ? row.State : null;

        /// <summary>The coordinator's view: the order's status, else a looked-up decision, else unknown (null).</summary>
        public string? Decision(string tx) =>
            _orderDecisions.TryGetValue(tx, out var status) ? status
            : Snapshot.Decisions.TryGetValue(tx, out var decision) ? decision
            : null;

        private Dictionary<string, LedgerRow> Index(string participant, IReadOnlyList<LedgerRow> rows)
        {
            var index = new Dictionary<string, LedgerRow>(StringComparer.Ordinal);
            foreach (var row in rows)
            {
                if (!index.TryAdd(row.TransactionId, row))
                {
                    DuplicateLedgerRows.Add($"{participant} lists tx {row.TransactionId} twice");
                }
            }

            return index;
        }
    }
}

/// <summary>The names of the invariants the <see cref="Auditor"/> checks, as they appear in its report.</summary>
public static class Invariant
{
    /// <summary>Never committed at one participant and aborted at another; the coordinator's decision holds everywhere.</summary>
    public const string AtomicOutcome = "atomic outcome";

    /// <summary>A participant commits only what the coordinator decided to commit, and commit is decided only on all-yes.</summary>
    public const string Validity = "validity";

    /// <summary>Per product, stock on hand + units sold = received; nothing negative; reserved &lt;= on hand.</summary>
    public const string Conservation = "conservation";

    /// <summary>A courier serves at most one active order at a time, and its status says which.</summary>
    public const string NoDoubleBooking = "no double booking";

    /// <summary>Liveness, once quiet: nothing prepared, every order decided and completed.</summary>
    public const string Settled = "settled";

    /// <summary>Retries and replays change nothing: one order per client id, one transaction per order, one ledger row per transaction.</summary>
    public const string ExactlyOnce = "exactly once";

    /// <summary>Stability: what a client was told holds.</summary>
    public const string ClientAnswers = "client answers";
}
