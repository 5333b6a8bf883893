using System.Collections.Concurrent;
using System.Diagnostics;
using CsCheck;
using TwoPhase.Fuzz.Tests.Harness;
using Xunit.Abstractions;

namespace TwoPhase.Fuzz.Tests;

/// <summary>
/// Random and malformed requests at every endpoint of every service, with and without credentials
/// (docs/security.md). Each request is one the system must refuse, or answer from what it recorded; none
/// may get a 5xx, and the whole state, read through the APIs after every batch, must not move.
/// </summary>
[Collection(ServicesCollection.Name)]
public sealed class FuzzTests(Services services, ITestOutputHelper output)
{
    /// <summary>Cases per run; <c>TWOPHASE_FUZZ_CASES</c> overrides (at least one batch).</summary>
    private static int CaseCount => int.TryParse(Environment.GetEnvironmentVariable("TWOPHASE_FUZZ_CASES"), out var n) ? Math.Max(n, BatchSize) : 12_000;

    /// <summary>Cases between two snapshots of the state.</summary>
    private const int BatchSize = 200;

    [Fact]
    public async Task RandomRefusedRequests_NeverFail_NeverChangeState_AuditClean()
    {
        var world = await WorldSetup.CreateAsync(services);
        var baseline = await State.SnapshotAsync(services);
        var classes = Cases.All(world);
        var perClass = new ConcurrentDictionary<string, int>();
        var perStatus = new ConcurrentDictionary<int, int>();
        var sent = 0;
        var clock = Stopwatch.StartNew();

        await Gen.OneOf(classes.Select(c => c.Gen).ToArray()).Array[BatchSize].SampleAsync(
            async batch =>
            {
                var failures = new ConcurrentBag<string>();
                await Parallel.ForEachAsync(batch, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (c, _) =>
                {
                    if (await CheckAsync(services, c) is { } failure)
                    {
                        failures.Add(failure);
                    }

                    perClass.AddOrUpdate(c.Class, 1, (_, n) => n + 1);
                    Interlocked.Increment(ref sent);
                });
                Assert.True(failures.IsEmpty, $"{failures.Count} of {batch.Length} cases failed:\n{string.Join('\n', failures.Take(10))}\n{services.RecentLog()}");
                var now = await State.SnapshotAsync(services);
                Assert.True(now == baseline, $"refused requests changed the state.\nbefore: {baseline}\nafter:  {now}\nbatch:\n{string.Join('\n', batch.Select(c => c.ToString()))}");
            },
            iter: CaseCount / BatchSize,
            threads: 1,
            print: batch => $"{batch.Length} cases, first: {batch.FirstOrDefault()}");

        var audit = await State.AuditAsync(services);
        Assert.True(audit.Count == 0, $"audit: {string.Join('\n', audit)}");
        output.WriteLine($"{sent} cases in {clock.Elapsed.TotalSeconds:0.0} s, {classes.Count} classes");
        foreach (var (cls, n) in perClass.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            output.WriteLine($"  {n,6}  {cls}");
        }

        Assert.True(sent >= CaseCount, $"only {sent} cases ran");
        Assert.Equal(classes.Count, perClass.Count);
    }

    /// <summary>Null when the answer is the expected one, a problem detail, and not a 5xx; else what went wrong.</summary>
    public static async Task<string?> CheckAsync(Services s, FuzzCase c)
    {
        try
        {
            using var request = c.ToRequest(s);
            using var response = await s.Http.SendAsync(request);
            var status = (int)response.StatusCode;
            var body = await response.Content.ReadAsStringAsync();
            if (!c.Expected.Contains(status))
            {
                return $"{c}\n  => {status}: {(body.Length > 400 ? body[..400] : body)}";
            }

            if (status >= 400 && response.Content.Headers.ContentType?.MediaType != "application/problem+json")
            {
                return $"{c}\n  => {status} without a problem detail ({response.Content.Headers.ContentType}): {body}";
            }

            return null;
        }
        catch (HttpRequestException e)
        {
            return $"{c}\n  => transport error {e.HttpRequestError}: {e.Message}";
        }
    }
}
