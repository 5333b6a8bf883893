using Reference.Contracts;
using TwoPhase.AspNetCore;
using TwoPhase.Harness.Audit;

namespace TwoPhase.Tests.Audit;

/// <summary>
/// The judge of every chaos, bench and end-to-end run, judged: a clean snapshot passes, and for each way an
/// invariant can break, a hand-made snapshot with exactly that breach fails exactly that invariant.
/// </summary>
public sealed class AuditorTests
{
    private static readonly DateTimeOffset At = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static readonly Auditor Judge = new();

    [Fact]
    public void CleanSnapshot_PassesEveryInvariant()
    {
        var report = Judge.Check(Clean(), CleanAnswers());

        Assert.True(report.Passed, Describe(report));
        Assert.True(report.WasQuiet);
        Assert.Equal(
            [Invariant.AtomicOutcome, Invariant.Validity, Invariant.Conservation, Invariant.NoDoubleBooking, Invariant.Settled, Invariant.ExactlyOnce, Invariant.ClientAnswers],
            report.Results.Select(r => r.Name));
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void SnapshotWithOneBreach_FailsExactlyThatInvariant(string breach)
    {
        var (snapshot, answers, invariant) = Cases[breach];

        var report = Judge.Check(snapshot, answers);

        Assert.Equal([invariant], report.Results.Where(r => !r.Passed).Select(r => r.Name));
        var failed = report.Results.Single(r => r.Name == invariant);
        Assert.Equal(failed.ViolationCount, failed.Violations.Count);
    }

    [Fact]
    public void ManyViolations_AreCountedExactly_AndListedBounded()
    {
        var snapshot = Clean() with { StorageLedger = [.. Clean().StorageLedger, .. Enumerable.Range(0, 30).Select(i => Row($"stray-{i}", "prepared"))] };

        var settled = new Auditor { MaxViolationsListed = 5 }.Check(snapshot).Results.Single(r => r.Name == Invariant.Settled);

        Assert.Equal(30, settled.ViolationCount);
        Assert.Equal(5, settled.Violations.Count);
    }

    public static TheoryData<string> CaseNames() => new(Cases.Keys);

    // The clean system: t1 committed (2 widgets, courier c1 on it), t2 aborted (delivery voted no), c2 free.
    // Each case changes one thing.
    private static readonly Dictionary<string, (SystemSnapshot Snapshot, IReadOnlyList<ClientAnswer>? Answers, string Invariant)> Cases = new()
    {
        // Atomic outcome
        ["committed at the coordinator, aborted at a participant"] =
            (Clean() with { StorageLedger = [Row("t1", "aborted"), Row("t2", "aborted")] }, null, Invariant.AtomicOutcome),
        ["participants disagree on a transaction the coordinator committed"] =
            (Clean() with { Decisions = Decided("t9", "committed"), StorageLedger = [.. Clean().StorageLedger, Row("t9", "committed")], DeliveryLedger = [.. Clean().DeliveryLedger, Row("t9", "aborted")] }, null, Invariant.AtomicOutcome),

        // Validity. (A participant committing what the coordinator aborted breaks atomic outcome and validity at
        // once, by definition; the cases here break one only.)
        ["a participant committed what the coordinator never decided"] =
            (Clean() with { StorageLedger = [.. Clean().StorageLedger, Row("t9", "committed")] }, null, Invariant.Validity),
        ["commit decided without a yes from every participant"] =
            (Clean() with { Orders = [Order("t1", "committed", votes: Votes("yes", "no"), items: Widgets(2)), Order("t2", "aborted")] }, null, Invariant.Validity),
        ["a ledger row in no protocol state"] =
            (Clean() with { DeliveryLedger = [Row("t1", "committed"), Row("t2", "maybe")] }, null, Invariant.Validity),

        // Conservation
        ["onHand + sold != received"] =
            (Clean() with { Products = [Widget(onHand: 9)] }, null, Invariant.Conservation),
        ["a negative counter"] =
            (Clean() with { Products = [Widget(), new Product("gadget", "Gadget", -1, 0, 1, 0)] }, null, Invariant.Conservation),
        ["reserved more than on hand"] =
            (Clean() with { Products = [Widget(reserved: 9)] }, null, Invariant.Conservation),
        ["units still reserved once quiet"] =
            (Clean() with { Products = [Widget(reserved: 1)] }, null, Invariant.Conservation),
        ["sold differs from what committed orders took"] =
            (Clean() with { Products = [new Product("widget", "Widget", 7, 0, 3, 10)] }, null, Invariant.Conservation),
        ["committed orders took a product storage does not list"] =
            (Clean() with { Orders = [Order("t1", "committed", items: [.. Widgets(2), new OrderLine("ghost", 1)]), Order("t2", "aborted")] }, null, Invariant.Conservation),

        // No double booking
        ["one courier on two active deliveries"] =
            (Clean() with { Decisions = Decided("t3", "committed"), Deliveries = [Active("t1", "c1"), Active("t3", "c1")] }, null, Invariant.NoDoubleBooking),
        ["a busy courier with no active delivery"] =
            (Clean() with { Couriers = [Courier("c1", "busy", "t1"), Courier("c2", "busy", "t2")] }, null, Invariant.NoDoubleBooking),
        ["a busy courier naming another transaction than its delivery"] =
            (Clean() with { Couriers = [Courier("c1", "busy", null), Courier("c2", "free", null)] }, null, Invariant.NoDoubleBooking),
        ["a free courier naming a transaction"] =
            (Clean() with { Couriers = [Courier("c1", "busy", "t1"), Courier("c2", "free", "t2")] }, null, Invariant.NoDoubleBooking),
        ["a courier still reserved once quiet"] =
            (Clean() with { Couriers = [Courier("c1", "busy", "t1"), Courier("c2", "reserved", "t2")] }, null, Invariant.NoDoubleBooking),
        ["a courier in no known status"] =
            (Clean() with { Couriers = [Courier("c1", "busy", "t1"), Courier("c2", "lost", null)] }, null, Invariant.NoDoubleBooking),
        ["a committed order without a delivery"] =
            (Clean() with { Deliveries = [], Couriers = [Courier("c1", "free", null), Courier("c2", "free", null)] }, null, Invariant.NoDoubleBooking),
        ["a delivery for an aborted order"] =
            (Clean() with { Deliveries = [Active("t1", "c1"), new Delivery("t2", "c2", "t2", "completed")] }, null, Invariant.NoDoubleBooking),
        ["a delivery naming a courier nobody lists"] =
            (Clean() with { Deliveries = [Active("t1", "c1"), new Delivery("t9", "c9", "t9", "completed")], Decisions = Decided("t9", "committed") }, null, Invariant.NoDoubleBooking),

        // Settled (liveness)
        ["a participant row still prepared"] =
            (Clean() with { DeliveryLedger = [Row("t1", "committed"), Row("t2", "prepared")] }, null, Invariant.Settled),
        ["an order still pending"] =
            (Clean() with { Orders = [Order("t1", "committed", items: Widgets(2)), Order("t2", "pending", votes: Votes("yes", "no"))] }, null, Invariant.Settled),
        ["a decided order not completed"] =
            (Clean() with { Orders = [Order("t1", "committed", completed: false, items: Widgets(2)), Order("t2", "aborted")] }, null, Invariant.Settled),
        ["an order in no known status"] =
            (Clean() with { Orders = [Order("t1", "committed", items: Widgets(2)), Order("t2", "limbo")] }, null, Invariant.Settled),
        ["the coordinator lists an unfinished transaction"] =
            (Clean() with { Unfinished = [Unfinished("t8")] }, null, Invariant.Settled),
        ["a participant's admin listing still holds a row prepared"] =
            (Clean() with { StoragePrepared = [Row("t8", "prepared")] }, null, Invariant.Settled),

        // Exactly once
        ["one client order id became two orders"] =
            (Clean() with { Orders = [Order("t1", "committed", clientOrderId: "client-1", items: Widgets(2)), Order("t2", "aborted", clientOrderId: "client-1")] }, null, Invariant.ExactlyOnce),
        ["two orders share one transaction"] =
            (Clean() with { Orders = [Order("t1", "committed", items: Widgets(2)), Order("t2", "aborted"), Order("t2", "aborted")] }, null, Invariant.ExactlyOnce),
        ["an order runs as a transaction of another id"] =
            (Clean() with { Orders = [Order("t1", "committed", items: Widgets(2)), Order("t2", "aborted") with { OrderId = "o2" }] }, null, Invariant.ExactlyOnce),
        ["a participant lists one transaction twice"] =
            (Clean() with { StorageLedger = [.. Clean().StorageLedger, Row("t2", "aborted")] }, null, Invariant.ExactlyOnce),

        // Client answers (stability)
        ["told committed, but aborted"] =
            (Clean(), [Answer("t2", AnswerOutcome.Committed)], Invariant.ClientAnswers),
        ["told committed, but the coordinator has no such order"] =
            (Clean(), [Answer("t7", AnswerOutcome.Committed)], Invariant.ClientAnswers),
        ["told aborted, but committed"] =
            (Clean(), [Answer("t1", AnswerOutcome.Aborted)], Invariant.ClientAnswers),
        ["no answer, and committed at only some places"] =
            (Clean() with { Decisions = Decided("t9", "committed"), StorageLedger = [.. Clean().StorageLedger, Row("t9", "committed")] }, [Answer("t9", AnswerOutcome.Unknown)], Invariant.ClientAnswers),
    };

    private static SystemSnapshot Clean() => new(
        [Order("t1", "committed", items: Widgets(2)), Order("t2", "aborted")],
        [Row("t1", "committed"), Row("t2", "aborted")],
        [Row("t1", "committed"), Row("t2", "refused")],
        [Widget()],
        [Courier("c1", "busy", "t1"), Courier("c2", "free", null)],
        [Active("t1", "c1")],
        new Dictionary<string, string>());

    private static ClientAnswer[] CleanAnswers() => [Answer("t1", AnswerOutcome.Committed), Answer("t2", AnswerOutcome.Aborted)];

    private static OrderView Order(
        string id, string status, bool completed = true, string? clientOrderId = null,
        IReadOnlyDictionary<string, VoteView>? votes = null, IReadOnlyList<OrderLine>? items = null) => new(
        id,
        id,
        clientOrderId ?? $"client-{id}",
        status,
        status == "aborted" ? "delivery voted no" : null,
        items ?? Widgets(1),
        votes ?? (status == "committed" ? Votes("yes", "yes") : Votes("yes", "no")),
        completed ? ["storage", "delivery"] : [],
        completed,
        At,
        At);

    private static Dictionary<string, VoteView> Votes(string storage, string delivery) =>
        new() { ["storage"] = new VoteView(storage, null), ["delivery"] = new VoteView(delivery, null) };

    private static OrderLine[] Widgets(long quantity) => [new OrderLine("widget", quantity)];

    private static LedgerRow Row(string tx, string state) => new(tx, state, null, null, At, At, 0, 0);

    private static Product Widget(long onHand = 8, long reserved = 0) => new("widget", "Widget", onHand, reserved, 2, 10);

    private static Courier Courier(string id, string status, string? tx) => new(id, $"Courier {id}", status, tx);

    private static Delivery Active(string tx, string courier) => new(tx, courier, tx, "active");

    private static Dictionary<string, string> Decided(string tx, string state) => new() { [tx] = state };

    private static TransactionView Unfinished(string tx) => new(
        tx, "committed", false, 1, ["storage", "delivery"], ["storage"], Votes("yes", "yes"), null, 1, At, At, null, null, [], null);

    private static ClientAnswer Answer(string orderId, AnswerOutcome outcome) =>
        new($"client-{orderId}", $"key-{orderId}", outcome, orderId, orderId, 200, null, null, Widgets(1), 1);

    private static string Describe(AuditReport report) =>
        string.Join("\n", report.Results.Where(r => !r.Passed).SelectMany(r => r.Violations.Select(v => $"{r.Name}: {v}")));
}
