namespace TwoPhase.Harness.Client;

/// <summary>Where the three services listen.</summary>
public sealed record ServiceEndpoints(Uri Order, Uri Storage, Uri Delivery)
{
    public static ServiceEndpoints Default { get; } = new(
        new Uri("http://127.0.0.1:8000"), new Uri("http://127.0.0.1:8002"), new Uri("http://127.0.0.1:8001"));
}
