using System.Collections.Concurrent;
using TwoPhase.EndToEnd.Tests.Harness;
using Xunit;
using Xunit.Abstractions;

namespace TwoPhase.EndToEnd.Tests;

/// <summary>
/// A database server crash mid-load. Every service runs on a PostgreSQL cluster of its own, started by the test on a
/// free port (not the shared server, which other test projects use at the same time), as in production where each
/// service has its own server. One cluster is stopped with <c>pg_ctl stop -m immediate</c> while orders are in flight:
/// no checkpoint, WAL still in its buffers lost, so commits made with synchronous_commit off may vanish while forced
/// ones must not. It is started again with its data (crash recovery), and then the system must converge with every
/// invariant holding and every answer a client got still true.
/// </summary>
public sealed class DatabaseCrashTests(ITestOutputHelper output)
{
    private const int Orders = 240;
    private const int Concurrency = 12;
    // The crash falls in the middle of the first half, with Concurrency orders in flight; the rest of that half
    // meets the dead server, the second half the restarted one.
    private const int FirstHalf = Orders / 2;
    private const int AnsweredBeforeCrash = FirstHalf / 2;
    private const int RetriesPerLostAnswer = 10;
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(90);

    [Theory]
    [InlineData(Service.Order)]
    [InlineData(Service.Storage)]
    public async Task OwnClusterStoppedImmediatelyMidLoad_RestartedWithItsData_ConvergesAndEveryClientAnswerHolds(Service crashed)
    {
        var clusters = new Dictionary<Service, PostgresCluster>();
        try
        {
            foreach (var service in Enum.GetValues<Service>())
            {
                clusters[service] = await PostgresCluster.CreateAsync(
                    new PostgresClusterOptions { Name = $"twophase-e2e-pg-{service.ToString().ToLowerInvariant()}", MaxConnections = 100 }, CancellationToken.None);
            }

            await using var system = await TestSystem.StartAsync(Store.Postgres, output, new SystemOptions
            {
                PostgresServers = clusters.ToDictionary(kv => kv.Key, kv => kv.Value.ConnectionString),
            });
            system.Log($"clusters: {string.Join(", ", clusters.Select(kv => $"{kv.Key} on {kv.Value.Port}"))}; crashing {crashed}'s");
            await system.SeedAsync(new Dictionary<string, long> { ["widget"] = 100_000 }, couriers: Orders);

            var load = new CrashLoad(system);
            var first = load.RunAsync(0, FirstHalf);
            await load.Answered(AnsweredBeforeCrash).WaitAsync(StepTimeout);
            var cluster = clusters[crashed];
            await cluster.StopImmediateAsync(CancellationToken.None);
            var atCrash = load.AnsweredCount;
            system.Log($"stopped {crashed}'s cluster (immediate) after {atCrash} answers");
            await first.WaitAsync(StepTimeout);
            await cluster.StartAsync(CancellationToken.None);
            system.Log($"started {crashed}'s cluster again after {load.AnsweredCount} answers");
            await load.RunAsync(FirstHalf, Orders - FirstHalf).WaitAsync(StepTimeout);
            await load.RetryLostAsync();

            var after = await Invariants.AssertConvergedAsync(system, TimeSpan.FromSeconds(60));
            var told = load.Answers.ToList();
            system.Log($"answers: {string.Join(", ", told.GroupBy(a => a.Told).Select(g => $"{g.Count()} {g.Key}"))}");
            Assert.Equal(Orders, told.Select(a => a.Index).Distinct().Count());
            AssertEveryAnswerHolds(after, told);
            // The system worked before and after the crash, not only survived it.
            Assert.Contains(told, a => a.Told == "committed" && a.Index < AnsweredBeforeCrash);
            Assert.Contains(told, a => a.Told == "committed" && a.Index >= FirstHalf);
        }
        finally
        {
            foreach (var cluster in clusters.Values)
            {
                await cluster.DisposeAsync();
            }
        }
    }

    /// <summary>Told committed: committed. Told aborted: not committed. One order per client order id, whatever the retries.</summary>
    private static void AssertEveryAnswerHolds(SystemSnapshot after, IReadOnlyList<(int Index, string Told)> told)
    {
        var byClient = after.Orders.Where(o => o.ClientOrderId is not null).GroupBy(o => o.ClientOrderId!).ToDictionary(g => g.Key, g => g.ToList());
        var problems = new List<string>();
        foreach (var (clientId, orders) in byClient.Where(kv => kv.Value.Count > 1))
        {
            problems.Add($"{clientId} has {orders.Count} orders: {string.Join(", ", orders.Select(o => $"{o.OrderId} {o.Status}"))}");
        }

        foreach (var (index, answer) in told)
        {
            var order = byClient.GetValueOrDefault(CrashLoad.ClientOrderId(index))?.FirstOrDefault();
            if (answer == "committed" && order?.Status != "committed")
            {
                problems.Add($"order {index} was told committed and is {order?.Status ?? "missing"}");
            }

            if (answer == "aborted" && order?.Status == "committed")
            {
                problems.Add($"order {index} was told aborted and is committed ({order.OrderId})");
            }
        }

        Assert.True(problems.Count == 0, $"{problems.Count} client answer(s) contradicted:\n  " + string.Join("\n  ", problems.Take(50)));
    }

    /// <summary>The orders, with bounded concurrency, each under its own Idempotency-Key, every answer kept.</summary>
    private sealed class CrashLoad(TestSystem system)
    {
        private readonly ConcurrentQueue<(int Index, string Told)> _answers = new();
        private readonly ConcurrentDictionary<int, TaskCompletionSource> _waiters = new();
        private readonly ConcurrentBag<int> _lost = [];
        private int _answered;

        public IReadOnlyCollection<(int Index, string Told)> Answers => _answers;

        public int AnsweredCount => Volatile.Read(ref _answered);

        public static string ClientOrderId(int index) => $"crash-{index:D4}";

        /// <summary>Completes once <paramref name="count"/> orders have had their first answer.</summary>
        public Task Answered(int count)
        {
            var waiter = _waiters.GetOrAdd(count, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            if (AnsweredCount >= count)
            {
                waiter.TrySetResult();
            }

            return waiter.Task;
        }

        /// <summary>Places orders <paramref name="from"/> to <paramref name="from"/> + <paramref name="count"/> - 1.</summary>
        public Task RunAsync(int from, int count) => Parallel.ForEachAsync(
            Enumerable.Range(from, count),
            new ParallelOptions { MaxDegreeOfParallelism = Concurrency },
            async (i, _) =>
            {
                if (await PlaceAsync(i) == "lost")
                {
                    _lost.Add(i);
                }

                var answered = Interlocked.Increment(ref _answered);
                foreach (var (count, waiter) in _waiters)
                {
                    if (answered >= count)
                    {
                        waiter.TrySetResult();
                    }
                }
            });

        /// <summary>Asks again, with the same key, for each order whose answer was lost, until it gets one (bounded).</summary>
        public async Task RetryLostAsync()
        {
            foreach (var i in _lost.Order())
            {
                for (var attempt = 1; attempt <= RetriesPerLostAnswer && await PlaceAsync(i) == "lost"; attempt++)
                {
                    // Bounded backoff while recovery decides what the crash left preparing.
                    await Task.Delay(TimeSpan.FromMilliseconds(100 * attempt));
                }
            }
        }

        private async Task<string> PlaceAsync(int index)
        {
            string told;
            try
            {
                var placed = await system.Api.PlaceOrderAsync([new OrderLine("widget", 1)], $"crash-key-{index:D4}", ClientOrderId(index));
                told = placed.Order?.Status is "committed" or "aborted" ? placed.Order.Status : "lost";
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                told = "lost";
            }

            _answers.Enqueue((index, told));
            return told;
        }
    }
}
