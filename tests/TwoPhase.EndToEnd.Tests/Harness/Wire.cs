using System.Text.Json;

namespace TwoPhase.EndToEnd.Tests.Harness;

// The services' JSON as docs/api.md describes it, read back by the tests. Only what the tests look at.

public sealed record OrderLine(string Sku, long Quantity);

public sealed record VoteView(string Vote, string? Reason);

public sealed record OrderView(
    string OrderId,
    string TransactionId,
    string? ClientOrderId,
    string Status,
    string? Reason,
    IReadOnlyList<OrderLine> Items,
    IReadOnlyDictionary<string, VoteView> Votes,
    IReadOnlyList<string> Acknowledged,
    bool Completed);

public sealed record TransactionView(string TransactionId, string State, bool Completed, string? Reason, IReadOnlyList<string> Acknowledged);

public sealed record LedgerRow(string TransactionId, string State, string? Reason, JsonElement? Holding);

public sealed record Product(string Sku, string Name, long OnHand, long Reserved, long Sold, long Received);

public sealed record Courier(string Id, string Name, string Status, string? TransactionId);

public sealed record Delivery(string TransactionId, string CourierId, string? OrderId, string Status);

public sealed record PrepareAnswer(string TransactionId, string Vote, string? Reason);

public sealed record DecisionAnswer(string TransactionId, string State);

/// <summary>What a POST answered: the status, the raw body, and the order when the body is one.</summary>
public sealed record OrderResult(int Status, string Body, OrderView? Order);

/// <summary>Assertions on an order answer that show the whole answer when they fail.</summary>
public static class Expect
{
    public static OrderView Order(OrderResult placed, string status, int? httpStatus = null)
    {
        Xunit.Assert.True(
            placed.Order is not null && placed.Order.Status == status && (httpStatus is null || placed.Status == httpStatus),
            $"expected an order {status}{(httpStatus is null ? "" : $" with HTTP {httpStatus}")}, got HTTP {placed.Status}: {placed.Body}");
        return placed.Order!;
    }
}
