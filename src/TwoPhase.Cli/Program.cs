using System.CommandLine;
using TwoPhase.Cli.Commands;

namespace TwoPhase.Cli;

internal static class Program
{
    private static Task<int> Main(string[] args)
    {
        var root = new RootCommand("TwoPhase: run, load and audit the two-phase commit order system.")
        {
            DemoCommand.Create(),
            SimulateCommand.Create(),
            AuditCommand.Create(),
            BenchCommand.Create(),
            TopologyChaosCommand.Extend(ChaosCommand.Create()),
            SimulateProtocolCommand.Create(),
        };

        // Ctrl+C cancels the command's token; the commands then stop the services they started
        // and drop demo databases, which can take longer than the default 2 s grace.
        return root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(30) });
    }
}
