namespace Reference.Contracts;

/// <summary>A courier of the delivery service; <see cref="Status"/> is free, reserved or busy.</summary>
public sealed record Courier(string Id, string Name, string Status, string? TransactionId);

/// <summary>The body of <c>POST /v1/couriers</c>; without an id the service makes one.</summary>
public sealed record NewCourier(string? Id, string? Name);

/// <summary>A delivery of the delivery service, keyed by the transaction that booked it; active or completed.</summary>
public sealed record Delivery(string TransactionId, string CourierId, string? OrderId, string Status);

/// <summary>Delivery's PREPARE body: the order the courier is booked for.</summary>
public sealed record CourierPrepare(string? OrderId);
