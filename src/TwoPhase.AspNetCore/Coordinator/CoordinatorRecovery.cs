using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TwoPhase.Protocol;

namespace TwoPhase.AspNetCore;

/// <summary>Recovery at start-up and every interval (docs/design.md §2): abandoned prepares abort, decisions are re-driven.</summary>
internal sealed class CoordinatorRecovery(TwoPhaseCoordinator coordinator, IOptions<CoordinatorOptions> options, TimeProvider time, ILogger<CoordinatorRecovery> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.RecoveryInterval, time);
        do
        {
            try
            {
                int touched;
                // Drain a backlog (after a crash) batch by batch, but yield to the timer once caught up.
                do
                {
                    touched = await coordinator.RecoverOnceAsync(stoppingToken);
                    if (touched > 0)
                    {
                        Log.Recovered(logger, touched);
                    }
                }
                while (touched >= coordinator.Settings.RecoveryBatchSize && !stoppingToken.IsCancellationRequested);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                Log.RecoveryFailed(logger, e);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
