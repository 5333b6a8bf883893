namespace Reference.Contracts;

/// <summary>A product of the storage service and its counters: onHand + sold == received.</summary>
public sealed record Product(string Sku, string Name, long OnHand, long Reserved, long Sold, long Received);

/// <summary>The body of <c>POST /v1/products</c>.</summary>
public sealed record NewProduct(string? Sku, string? Name, long? Stock);

/// <summary>
/// Storage's PREPARE body: the lines to reserve, and the order they are for (kept for people reading the ledger's
/// requests; not needed to reserve). Nothing else: storage refuses unknown fields.
/// </summary>
public sealed record StockPrepare(string? OrderId, IReadOnlyList<OrderLine> Items);
