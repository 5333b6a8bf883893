namespace TwoPhase.Cli.Audit;

/// <summary>
/// Checks the invariants of DESIGN §2 against a <see cref="SystemSnapshot"/> and, optionally, the
/// answers clients got. Pure: no I/O, so tests can feed it hand-made snapshots.
/// </summary>
/// <remarks>
/// Every order is assumed to involve both participants (each order needs stock and a courier).
/// Rows still <c>prepared</c> are reported by the quiescence invariant only, not as atomicity
/// violations, so a snapshot taken too early reads as "not settled" rather than "inconsistent".
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
        var list = NewList("atomic outcome",
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
        var list = NewList("validity",
            "a participant commits only transactions the coordinator decided to commit");
        foreach (var (participant, rows) in new[] { ("storage", v.StorageRows), ("delivery", v.DeliveryRows) })
        {
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
        var list = NewList("conservation",
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
        var list = NewList("no double booking",
            "no courier on two active deliveries; busy couriers match active deliveries; each committed order has exactly one delivery");
        var active = v.Snapshot.Deliveries.Where(d => d.Status == "active").ToList();
        foreach (var group in active.GroupBy(d => d.CourierId, StringComparer.Ordinal).Where(g => g.Count() > 1))
        {
            list.Add($"courier {group.Key} is on {group.Count()} active deliveries: {string.Join(", ", group.Select(d => d.TransactionId).Take(5))}");
        }

        var activeByCourier = active.GroupBy(d => d.CourierId, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var couriers = new Dictionary<string, CourierSnapshot>(StringComparer.Ordinal);
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
                case "busy" when c.TransactionId is not null && c.TransactionId != delivery!.TransactionId:
                    list.Add($"courier {c.Id} is busy for tx {c.TransactionId} but its active delivery is tx {delivery.TransactionId}");
                    break;
                case "free" or "reserved" when hasActive:
                    list.Add($"courier {c.Id} is {c.Status} but has an active delivery (tx {delivery!.TransactionId})");
                    break;
                case "reserved" when v.Snapshot.IsQuiet:
                    list.Add($"courier {c.Id} is still reserved (tx {c.TransactionId ?? "?"}) with no transaction prepared");
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
        var list = NewList("settled",
            "once quiet, no participant row is still prepared and no coordinator order is still pending");
        foreach (var (participant, rows) in new[] { ("storage", v.StorageRows), ("delivery", v.DeliveryRows) })
        {
            foreach (var row in rows.Values.Where(r => r.State == States.Prepared))
            {
                list.Add($"{participant} still holds tx {row.TransactionId} prepared (coordinator: {Describe(v.Decision(row.TransactionId))})");
            }
        }

        foreach (var order in v.Snapshot.Orders.Where(o => SystemSnapshot.IsUndecided(o.Status)))
        {
            list.Add($"order {order.OrderId} (tx {order.TransactionId}) is still {order.Status} at the coordinator");
        }

        return list.ToResult();
    }

    private InvariantResult ExactlyOnce(View v)
    {
        var list = NewList("exactly once",
            "one order per client order id, one ledger row per transaction at each participant");
        foreach (var group in v.Snapshot.Orders.Where(o => o.ClientOrderId is not null)
                     .GroupBy(o => o.ClientOrderId!, StringComparer.Ordinal).Where(g => g.Count() > 1))
        {
            list.Add($"client order id {group.Key} became {group.Count()} orders: {string.Join(", ", group.Select(o => o.OrderId).Take(5))}");
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
        var list = NewList("client answers",
            "told committed => committed at both participants; told aborted => nothing held or applied anywhere; no answer => wholly committed or wholly aborted");
        var byOrderId = v.Snapshot.Orders.GroupBy(o => o.OrderId, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var byClientId = v.Snapshot.Orders.Where(o => o.ClientOrderId is not null)
            .GroupBy(o => o.ClientOrderId!, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var deliveryTx = v.Snapshot.Deliveries.Select(d => d.TransactionId).ToHashSet(StringComparer.Ordinal);

        foreach (var answer in answers)
        {
            OrderSnapshot? order = null;
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

        public Dictionary<string, LedgerRowSnapshot> StorageRows { get; }

        public Dictionary<string, LedgerRowSnapshot> DeliveryRows { get; }

        public List<string> DuplicateLedgerRows { get; } = [];

        public string? StorageState(string tx) => StorageRows.TryGetValue(tx, out var row) ? row.State : null;

        public string? DeliveryState(string tx) => DeliveryRows.TryGetValue(tx, out var row) ? row.State : null;

        /// <summary>The coordinator's view: the order's status, else a looked-up decision, else unknown (null).</summary>
        public string? Decision(string tx) =>
            _orderDecisions.TryGetValue(tx, out var status) ? status
            : Snapshot.Decisions.TryGetValue(tx, out var decision) ? decision
            : null;

        private Dictionary<string, LedgerRowSnapshot> Index(string participant, IReadOnlyList<LedgerRowSnapshot> rows)
        {
            var index = new Dictionary<string, LedgerRowSnapshot>(StringComparer.Ordinal);
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
