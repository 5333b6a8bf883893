using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using HdrHistogram;
using Microsoft.AspNetCore.Mvc;
using TwoPhase.Harness.Audit;
using TwoPhase.Harness.Client;

using Reference.Contracts;

namespace TwoPhase.Harness.Load;

/// <summary>The outcome of one burst: every answer, the wall time and the latency histogram (microseconds).</summary>
public sealed record LoadResult(IReadOnlyList<ClientAnswer> Answers, TimeSpan Elapsed, HistogramBase LatencyMicros);

/// <summary>
/// Fires orders at the coordinator with bounded concurrency and keeps every answer, including
/// "unknown" when the connection dropped or timed out, so the audit can hold the system to them.
/// </summary>
public sealed class LoadGenerator(HttpClient http, LoadOptions options)
{
    // Latencies above an hour are recorded as an hour; the histogram must have a bound.
    private const long MaxLatencyMicros = 3_600_000_000;

    /// <summary>The orders this run sends, derived from the seed only.</summary>
    public IReadOnlyList<PlaceOrderRequest> PlanOrders()
    {
        var random = new Random(options.RandomSeed);
        var orders = new List<PlaceOrderRequest>(options.Orders);
        for (var i = 0; i < options.Orders; i++)
        {
            var skus = new List<string>(3);
            if (random.NextDouble() < options.ScarceShare)
            {
                skus.Add(options.ScarceSku);
            }

            // 1-3 distinct lines: a service may reasonably reject the same SKU twice in one order.
            var lines = random.Next(1, 4);
            var plentiful = options.PlentifulSkus.OrderBy(_ => random.Next()).ToList();
            for (var j = 0; skus.Count < lines && j < plentiful.Count; j++)
            {
                skus.Add(plentiful[j]);
            }

            var items = skus.Select(sku => new OrderLine(sku, random.Next(1, 4))).ToList();
            orders.Add(new PlaceOrderRequest(items, ClientOrderId(i)));
        }

        return orders;
    }

    /// <summary>
    /// Sends every planned order; <paramref name="onAnswer"/> is called once per answer, from any thread, and
    /// <paramref name="afterAnswer"/> (if given) is awaited by the same worker before it sends its next order (simulate
    /// completes the order's delivery there, so the courier is free again for that next order).
    /// </summary>
    public async Task<LoadResult> RunAsync(Action<ClientAnswer>? onAnswer, CancellationToken cancellationToken, Func<ClientAnswer, CancellationToken, Task>? afterAnswer = null)
    {
        var planned = PlanOrders();
        var answers = new ClientAnswer[planned.Count];
        var histogram = new LongConcurrentHistogram(1, MaxLatencyMicros, 3);
        var clock = Stopwatch.StartNew();
        await Parallel.ForEachAsync(
            Enumerable.Range(0, planned.Count),
            new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, options.Concurrency), CancellationToken = cancellationToken },
            async (i, ct) =>
            {
                var answer = await PlaceAsync(planned[i], IdempotencyKey(i), ct);
                answers[i] = answer;
                histogram.RecordValue(Math.Clamp((long)(answer.LatencyMs * 1000), 1, MaxLatencyMicros));
                onAnswer?.Invoke(answer);
                if (afterAnswer is not null)
                {
                    await afterAnswer(answer, ct);
                }
            });
        clock.Stop();
        return new LoadResult(answers, clock.Elapsed, histogram);
    }

    /// <summary>Places one order and classifies the answer as <see cref="RunAsync"/> does; for callers that shape their own load (bench).</summary>
    public Task<ClientAnswer> PlaceOneAsync(PlaceOrderRequest order, string idempotencyKey, CancellationToken cancellationToken) =>
        PlaceAsync(order, idempotencyKey, cancellationToken);

    private string ClientOrderId(int i) => $"{options.RunTag}-{i:D7}";

    /// <summary>The Idempotency-Key of the <paramref name="index"/>-th planned order; a retry must send the same one.</summary>
    public string IdempotencyKey(int index) => $"{options.RunTag}-key-{index:D7}";

    private async Task<ClientAnswer> PlaceAsync(PlaceOrderRequest order, string idempotencyKey, CancellationToken ct)
    {
        var clientOrderId = order.ClientOrderId!;
        var started = Stopwatch.GetTimestamp();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(options.RequestTimeout);
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(options.OrderUrl, "/v1/orders"))
            {
                Content = JsonContent.Create(order, options: Json.Options),
            };
            request.Headers.Add("Idempotency-Key", idempotencyKey);
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead, timeout.Token);
            var body = await response.Content.ReadAsStringAsync(timeout.Token);
            var latency = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            var status = (int)response.StatusCode;

            if (response.StatusCode >= HttpStatusCode.InternalServerError)
            {
                // The coordinator may have decided before failing; the audit learns which from its state.
                return Answer(AnswerOutcome.Unknown, null, status, $"HTTP {status}: {ProblemText(body)}", null, latency);
            }

            if (!response.IsSuccessStatusCode)
            {
                return Answer(AnswerOutcome.Rejected, null, status, $"HTTP {status}: {ProblemText(body)}", null, latency);
            }

            var dto = TryRead(body);
            var outcome = dto?.Status switch
            {
                States.Committed => AnswerOutcome.Committed,
                States.Aborted => AnswerOutcome.Aborted,
                States.Pending => AnswerOutcome.Pending,
                _ => AnswerOutcome.Unknown,
            };
            if (dto is null || outcome == AnswerOutcome.Unknown)
            {
                return Answer(AnswerOutcome.Unknown, dto, status, $"HTTP {status} with an unreadable order: {Truncate(body, 200)}", null, latency);
            }

            return outcome == AnswerOutcome.Aborted
                ? Answer(outcome, dto, status, dto.Reason, ReasonClasses.Classify(dto), latency)
                : Answer(outcome, dto, status, null, null, latency);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return Answer(AnswerOutcome.Unknown, null, null, $"transport: no answer within {options.RequestTimeout.TotalSeconds:0} s",
                null, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
        catch (HttpRequestException ex)
        {
            return Answer(AnswerOutcome.Unknown, null, null, $"transport: {ex.HttpRequestError}: {ex.Message}",
                null, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }

        ClientAnswer Answer(AnswerOutcome outcome, OrderView? dto, int? status, string? reason, string? reasonClass, double latency) =>
            new(clientOrderId, idempotencyKey, outcome, dto?.OrderId, dto?.TransactionId ?? dto?.OrderId, status, reason, reasonClass, order.Items, latency);
    }

    private static OrderView? TryRead(string body)
    {
        try
        {
            return JsonSerializer.Deserialize<OrderView>(body, Json.Options);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string ProblemText(string body)
    {
        try
        {
            var problem = JsonSerializer.Deserialize<ProblemDetails>(body, Json.Options);
            if (problem?.Title is not null || problem?.Detail is not null)
            {
                return Truncate($"{problem.Title}: {problem.Detail}".Trim(' ', ':'), 200);
            }
        }
        catch (JsonException)
        {
            // Not a problem detail; show the raw text instead.
        }

        return Truncate(body, 200);
    }

    private static string Truncate(string s, int max)
    {
        // Bodies may be HTML or pretty-printed JSON; one line reads better in a table cell.
        var line = string.Join(' ', s.Split((char[])['\r', '\n', '\t', ' '], StringSplitOptions.RemoveEmptyEntries));
        return line.Length <= max ? line : line[..max] + "...";
    }
}
