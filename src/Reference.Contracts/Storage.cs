namespace Reference.Contracts;

/// <summary>A product of the storage service and its counters: onHand + sold == received.</summary>
public sealed record Product(string Sku, string Name, long OnHand, long Reserved, long Sold, long Received);

/// <summary>The body of <c>POST /v1/products</c>.</summary>
public sealed record NewProduct(string? Sku, string? Name, long? Stock);
