using HdrHistogram;
using TwoPhase.Harness.Audit;

namespace TwoPhase.Harness.Load;

/// <summary>Counts and latencies of one burst, as the summary table shows them.</summary>
public sealed record LoadSummary(
    int Sent,
    int Committed,
    int Aborted,
    IReadOnlyList<KeyValuePair<string, int>> AbortsByReason,
    int Pending,
    int TransportErrors,
    int ServerErrors,
    int Rejected,
    int BadAnswers,
    IReadOnlyList<KeyValuePair<string, int>> ErrorSamples,
    TimeSpan Elapsed,
    double P50Ms,
    double P95Ms,
    double P99Ms,
    double MaxMs)
{
    /// <summary>Answers that were not a clean committed/aborted/pending: each is a failure of the run.</summary>
    public int Errors => TransportErrors + ServerErrors + Rejected + BadAnswers;

    /// <summary>Answered orders per second of wall time, all outcomes counted.</summary>
    public double OrdersPerSecond => Elapsed > TimeSpan.Zero ? Sent / Elapsed.TotalSeconds : 0;

    public static LoadSummary From(LoadResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var answers = result.Answers;
        var aborts = answers.Where(a => a.Outcome == AnswerOutcome.Aborted)
            .GroupBy(a => a.ReasonClass ?? "no reason given", StringComparer.Ordinal)
            .Select(g => KeyValuePair.Create(g.Key, g.Count()))
            .OrderByDescending(kv => kv.Value)
            .ToList();
        var errors = answers.Where(IsError)
            .GroupBy(a => ReasonClasses.Normalize(a.Reason ?? "?"), StringComparer.Ordinal)
            .Select(g => KeyValuePair.Create(g.Key, g.Count()))
            .OrderByDescending(kv => kv.Value)
            .Take(5)
            .ToList();
        var h = result.LatencyMicros;
        return new LoadSummary(
            Sent: answers.Count,
            Committed: answers.Count(a => a.Outcome == AnswerOutcome.Committed),
            Aborted: answers.Count(a => a.Outcome == AnswerOutcome.Aborted),
            AbortsByReason: aborts,
            Pending: answers.Count(a => a.Outcome == AnswerOutcome.Pending),
            TransportErrors: answers.Count(a => a.Outcome == AnswerOutcome.Unknown && a.HttpStatus is null),
            ServerErrors: answers.Count(a => a.Outcome == AnswerOutcome.Unknown && a.HttpStatus >= 500),
            Rejected: answers.Count(a => a.Outcome == AnswerOutcome.Rejected),
            BadAnswers: answers.Count(a => a.Outcome == AnswerOutcome.Unknown && a.HttpStatus is < 500),
            ErrorSamples: errors,
            Elapsed: result.Elapsed,
            P50Ms: Millis(h, 50),
            P95Ms: Millis(h, 95),
            P99Ms: Millis(h, 99),
            MaxMs: h.TotalCount == 0 ? 0 : h.GetMaxValue() / 1000.0);
    }

    private static bool IsError(ClientAnswer a) => a.Outcome is AnswerOutcome.Unknown or AnswerOutcome.Rejected;

    private static double Millis(HistogramBase h, double percentile) =>
        h.TotalCount == 0 ? 0 : h.GetValueAtPercentile(percentile) / 1000.0;
}
