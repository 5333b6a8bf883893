namespace TwoPhase.Simulation.Tests;

public sealed class DebugTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public void One()
    {
        var seed = int.Parse(Environment.GetEnvironmentVariable("SIM_FROM") ?? "1");
        try
        {
            var r = World.Run(seed, trace: true);
            output.WriteLine(r.Report());
        }
        catch (Exception e)
        {
            output.WriteLine(e.ToString());
            throw;
        }
    }
}
