namespace TwoPhase.Harness.Client;

// The wire types the client reads are the services' own records, not copies: the reference app's public JSON from
// Reference.Contracts (OrderView, Product, Courier, Delivery, TransactionView, OrderLine and the request bodies),
// the protocol's from TwoPhase.AspNetCore (PrepareAnswer, DecisionAnswer, DecisionQuery, LedgerRow), and RFC 7807
// problem details as ASP.NET Core's ProblemDetails. Only what is the client's own lives here.

/// <summary>
/// The body of <c>POST /v1/orders</c> as a client builds it: well-formed lines. The order service reads the same JSON
/// as <see cref="Reference.Contracts.NewOrder"/>, whose fields are nullable so that a missing one gets its own problem detail.
/// </summary>
public sealed record PlaceOrderRequest(IReadOnlyList<Reference.Contracts.OrderLine> Items, string? ClientOrderId);

/// <summary>What a POST of an order answered: the status, the raw body, and the order when the body is one.</summary>
public sealed record OrderResult(int Status, string Body, Reference.Contracts.OrderView? Order);
