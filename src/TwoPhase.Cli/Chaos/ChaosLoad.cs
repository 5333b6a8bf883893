using System.Diagnostics;
using TwoPhase.Harness.Load;
using TwoPhase.Harness.Audit;
using TwoPhase.Harness;

namespace TwoPhase.Cli.Chaos;

/// <summary>How the chaos client retries an order whose answer it did not get.</summary>
public sealed record ClientRetryPolicy
{
    /// <summary>Tries per order, the first included.</summary>
    public int MaxAttempts { get; init; } = 10;

    /// <summary>No new try once this much time has passed since the first.</summary>
    public TimeSpan Budget { get; init; } = TimeSpan.FromSeconds(30);

    public TimeSpan InitialDelay { get; init; } = TimeSpan.FromMilliseconds(200);

    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Each try's own bound; longer than a prepare deadline plus a decision write.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(15);

    public TimeSpan DelayBefore(int attempt) =>
        TimeSpan.FromTicks(Math.Min(MaxDelay.Ticks, InitialDelay.Ticks << Math.Min(attempt - 1, 20)));
}

/// <summary>Every answer of a chaos load: the last one per order, and every one the client got on the way.</summary>
/// <param name="Final">One per order, in plan order: what the client was finally told.</param>
/// <param name="All">Every answer of every try, each of which the system must honour.</param>
/// <param name="Retried">Orders that needed more than one try.</param>
/// <param name="Elapsed">From the first order to the last answer.</param>
public sealed record ChaosLoadResult(IReadOnlyList<ClientAnswer> Final, IReadOnlyList<ClientAnswer> All, int Retried, TimeSpan Elapsed);

/// <summary>
/// The simulator under kills: places the planned orders with bounded concurrency, parks at the
/// <see cref="LoadGate"/>, and retries an order whose answer was lost (connection refused or dropped,
/// timeout, 5xx, pending) a bounded number of times with the same Idempotency-Key, so a retry can only
/// learn the first try's outcome, never start a second transaction.
/// </summary>
public sealed class ChaosLoad(LoadGenerator generator, int concurrency, ClientRetryPolicy retry, LoadGate gate)
{
    /// <param name="onFinal">Called once per order with its last answer, from any thread.</param>
    /// <param name="cancellationToken">Stops the load.</param>
    public async Task<ChaosLoadResult> RunAsync(Action<ClientAnswer>? onFinal, CancellationToken cancellationToken)
    {
        var planned = generator.PlanOrders();
        var final = new ClientAnswer[planned.Count];
        var all = new List<ClientAnswer>(planned.Count * 2);
        var retried = 0;
        var clock = Stopwatch.StartNew();
        await Parallel.ForEachAsync(
            Enumerable.Range(0, planned.Count),
            new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, concurrency), CancellationToken = cancellationToken },
            async (i, ct) =>
            {
                await gate.EnterAsync(i, ct);
                var key = generator.IdempotencyKey(i);
                var first = Stopwatch.StartNew();
                ClientAnswer answer;
                for (var attempt = 1; ; attempt++)
                {
                    answer = await generator.PlaceOneAsync(planned[i], key, ct);
                    lock (all)
                    {
                        all.Add(answer);
                    }

                    if (!IsLost(answer) || attempt >= retry.MaxAttempts || first.Elapsed >= retry.Budget)
                    {
                        break;
                    }

                    if (attempt == 1)
                    {
                        Interlocked.Increment(ref retried);
                    }

                    await Task.Delay(retry.DelayBefore(attempt), ct);
                }

                final[i] = answer;
                onFinal?.Invoke(answer);
            });
        clock.Stop();
        return new ChaosLoadResult(final, all, retried, clock.Elapsed);
    }

    /// <summary>No definite outcome: worth asking again with the same key.</summary>
    public static bool IsLost(ClientAnswer answer) => answer.Outcome is AnswerOutcome.Unknown or AnswerOutcome.Pending;
}
