namespace TwoPhase.Harness;

/// <summary>A service could not be built, started or did not become ready in time.</summary>
public sealed class ServiceStartException : Exception
{
    public ServiceStartException()
    {
    }

    public ServiceStartException(string message)
        : base(message)
    {
    }

    public ServiceStartException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
