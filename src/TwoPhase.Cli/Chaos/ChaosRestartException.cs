namespace TwoPhase.Cli.Chaos;

/// <summary>A killed service did not become ready again: the run fails, it is not a setup problem.</summary>
public sealed class ChaosRestartException : Exception
{
    public ChaosRestartException()
    {
    }

    public ChaosRestartException(string message)
        : base(message)
    {
    }

    public ChaosRestartException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
