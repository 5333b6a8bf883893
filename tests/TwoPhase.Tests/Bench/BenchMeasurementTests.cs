using System.Diagnostics;
using TwoPhase.Cli.Bench;

namespace TwoPhase.Tests.Bench;

/// <summary>The bench's open-loop measurement: coordinated-omission correction, the sweep's rates, the curve's picture, memory trends.</summary>
public sealed class BenchMeasurementTests
{
    private static long Ms(long origin, double ms) => origin + (long)(ms * Stopwatch.Frequency / 1000.0);

    [Fact]
    public void AnOrderSentLate_CountsFromItsIntendedStart_TheServiceTimeFromTheSend()
    {
        var recorder = new LatencyRecorder();
        var t0 = Stopwatch.GetTimestamp();
        // Due at t0, sent 500 ms late (the generator or a client queue fell behind), answered 10 ms after the send.
        recorder.Record(t0, Ms(t0, 500), Ms(t0, 510));

        Assert.InRange(recorder.CorrectedMs(50), 509, 511);
        Assert.InRange(recorder.ServiceMs(50), 9.9, 10.1);
        Assert.Equal(1, recorder.Corrected.TotalCount);
    }

    [Fact]
    public void AnOrderSentOnTime_IsTheSameBothWays()
    {
        var recorder = new LatencyRecorder();
        var t0 = Stopwatch.GetTimestamp();
        recorder.Record(t0, t0, Ms(t0, 20));
        recorder.Record(t0, Ms(t0, -5), Ms(t0, 30));

        // A send before the intended start (clock jitter) never makes the service time longer than the corrected one.
        Assert.InRange(recorder.CorrectedMs(100), 29.9, 30.1);
        Assert.InRange(recorder.ServiceMs(100), 29.9, 30.1);
        Assert.InRange(recorder.CorrectedMs(0), 19.9, 20.1);
    }

    [Fact]
    public async Task OpenLoop_LatenciesIncludeTheWaitBehindASlowOrder()
    {
        // 50 orders/s for 1 s; the place function lets one order at a time through (a server with one worker), each
        // taking 30 ms: orders queue behind each other, so from the intended start they wait longer than their own 30 ms.
        using var gate = new SemaphoreSlim(1, 1);
        var result = await OpenLoop.RunAsync(
            [new RatePhase("test", 50, TimeSpan.FromSeconds(1))],
            1000,
            async (sequence, ct) =>
            {
                await gate.WaitAsync(ct);
                try
                {
                    await Task.Delay(30, ct);
                    return new Attempt(BenchOutcome.Committed, $"tx-{sequence}");
                }
                finally
                {
                    gate.Release();
                }
            },
            null,
            CancellationToken.None);

        Assert.Equal(50, result.Committed);
        var recorder = result.Latencies["test"];
        Assert.Equal(50, recorder.Corrected.TotalCount);
        Assert.True(recorder.CorrectedMs(50) >= 30, $"p50 {recorder.CorrectedMs(50)} ms");
        // 50 orders x 30 ms each is 1.5 s of work for a 1 s schedule: the last ones wait behind the queue.
        Assert.True(recorder.CorrectedMs(100) > 400, $"max {recorder.CorrectedMs(100)} ms");
        Assert.True(recorder.ServiceMs(100) <= recorder.CorrectedMs(100));
        var point = SweepPoint.Of(100, 50, result, TimeSpan.FromSeconds(1));
        Assert.Equal(50, point.Committed);
        Assert.True(point.AchievedPerSecond < 50, $"achieved {point.AchievedPerSecond}/s: answers ran past the schedule");
        Assert.True(point.P99Ms >= point.P50Ms);
    }

    [Theory]
    [InlineData(null, new[] { 10, 25, 50, 75, 90, 100, 110 })]
    [InlineData("", new[] { 10, 25, 50, 75, 90, 100, 110 })]
    [InlineData("100,50,10", new[] { 10, 50, 100 })]
    [InlineData("5%, 200%", new[] { 5, 200 })]
    [InlineData("500", new[] { 500 })]
    public void SweepRates_Parse(string? text, int[] expected)
    {
        Assert.Equal(expected, SweepPlan.Parse(text, out var error));
        Assert.Null(error);
    }

    [Theory]
    [InlineData("0", "'0'")]
    [InlineData("501", "'501'")]
    [InlineData("ten", "'ten'")]
    [InlineData("10,,20", "''")]
    [InlineData("-5", "'-5'")]
    [InlineData("10.5", "'10.5'")]
    [InlineData("10,10", "twice")]
    [InlineData("1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21", "at most 20")]
    public void SweepRates_Refused(string text, string mentions)
    {
        Assert.Null(SweepPlan.Parse(text, out var error));
        Assert.Contains(mentions, error, StringComparison.Ordinal);
    }

    [Fact]
    public void SweepRates_ArePercentagesOfThePeak_AtLeastOnePerSecond()
    {
        Assert.Equal([98.0, 490.0, 1078.0], SweepPlan.Rates(980, [10, 50, 110]));
        Assert.Equal([1.0, 2.0], SweepPlan.Rates(4, [10, 50]));
    }

    [Theory]
    [InlineData("curve.png")]
    [InlineData("curve.svg")]
    public void Plot_WritesANonEmptyPicture(string name)
    {
        var folder = Directory.CreateTempSubdirectory("twophase-bench-plot-");
        try
        {
            var path = Path.Combine(folder.FullName, "sub", name);
            SweepPoint Point(int percent, double offered, double achieved, double p50) =>
                new(percent, offered, achieved, (long)achieved * 10, 0, 0, 0, 0, p50, p50 * 3, p50 * 4, p50 * 5, p50 * 2);
            SweepReport.Plot(path, 1000, [Point(10, 100, 99, 5), Point(50, 500, 495, 8), Point(110, 1100, 990, 900)], "test curve");

            var bytes = File.ReadAllBytes(path);
            Assert.True(bytes.Length > 1000, $"{bytes.Length} bytes");
            if (name.EndsWith(".png", StringComparison.Ordinal))
            {
                Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], bytes[..4]);
            }
            else
            {
                Assert.Contains("<svg", System.Text.Encoding.UTF8.GetString(bytes), StringComparison.Ordinal);
            }
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public void Plot_RefusesNoPoints() =>
        Assert.Throws<ArgumentException>(() => SweepReport.Plot(Path.Combine(Path.GetTempPath(), "never.png"), 1, [], "x"));

    [Fact]
    public void MemoryTrend_FirstLastMaxAndSlopePerMinute()
    {
        IReadOnlyDictionary<string, double?> Mib(double? order) => new Dictionary<string, double?> { ["order"] = order };
        var samples = new[]
        {
            new MemorySample(0, Mib(100)), new MemorySample(60, Mib(130)), new MemorySample(90, Mib(null)), new MemorySample(120, Mib(120)),
        };
        var trend = MemoryTrend.Of("order", samples);

        Assert.Equal(3, trend.Samples);
        Assert.Equal(100, trend.FirstMiB);
        Assert.Equal(120, trend.LastMiB);
        Assert.Equal(130, trend.MaxMiB);
        Assert.Equal(10, trend.SlopeMiBPerMinute);
        Assert.Null(MemoryTrend.Of("storage", samples).FirstMiB);
    }

    [Fact]
    public void WorkingSet_OfThisProcess_IsRead_AndOfNoProcess_IsNull()
    {
        Assert.True(MemorySampler.WorkingSetMiB(Environment.ProcessId) > 1);
        Assert.Null(MemorySampler.WorkingSetMiB(int.MaxValue));
        var sample = new MemorySampler().Add("self", Environment.ProcessId).Add("none", null).Sample();
        Assert.NotNull(sample.MiB["self"]);
        Assert.Null(sample.MiB["none"]);
    }
}
