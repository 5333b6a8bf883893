namespace TwoPhase.Harness.Client;

/// <summary>A service answered in a way the client cannot use (unexpected status, unreadable body).</summary>
public sealed class ApiException : Exception
{
    public ApiException()
    {
    }

    public ApiException(string message)
        : base(message)
    {
    }

    public ApiException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
