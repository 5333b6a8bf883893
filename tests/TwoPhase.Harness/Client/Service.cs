namespace TwoPhase.Harness.Client;

/// <summary>The three services of the reference application.</summary>
public enum Service
{
    Order,
    Storage,
    Delivery,
}
