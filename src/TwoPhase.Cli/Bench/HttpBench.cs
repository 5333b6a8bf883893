using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using TwoPhase.Harness.Load;
using TwoPhase.Harness.Audit;
using TwoPhase.Harness.Client;

namespace TwoPhase.Cli.Bench;

/// <summary>
/// The bench's side of the real system: seeds the run's products and couriers, places orders through the
/// coordinator's API (the load generator's request and answer classification) and completes deliveries.
/// </summary>
/// <param name="http">The run's pooled client.</param>
/// <param name="endpoints">The three services.</param>
/// <param name="secret">Sent as Bearer on seeding and completions.</param>
/// <param name="runTag">Prefix of the run's client order ids.</param>
/// <param name="requestTimeout">Per order; past it the answer is unknown (default: the load generator's).</param>
public sealed class HttpBench(HttpClient http, ServiceEndpoints endpoints, string? secret, string runTag, TimeSpan? requestTimeout = null)
{
    private static readonly TimeSpan SeedTimeout = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan CompleteTimeout = TimeSpan.FromSeconds(30);

    // Couriers are one request each; a few at a time keeps seeding quick without becoming a load test.
    private const int SeedParallelism = 8;

    private readonly LoadGenerator _orders = new(http, requestTimeout is { } timeout
        ? new LoadOptions { OrderUrl = endpoints.Order, RunTag = runTag, RequestTimeout = timeout }
        : new LoadOptions { OrderUrl = endpoints.Order, RunTag = runTag });

    /// <summary>Every answer, warm-up included, for the audit to hold the system to.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<ClientAnswer> Answers { get; } = new();

    /// <summary>Creates the catalog's products and <paramref name="couriers"/> more couriers.</summary>
    public async Task SeedAsync(BenchCatalog catalog, int couriers, string courierPrefix, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        foreach (var (sku, stock) in catalog.Products)
        {
            await PostAsync(new Uri(endpoints.Storage, "/v1/products"), new NewProduct(sku, sku, stock), cancellationToken);
        }

        await Parallel.ForEachAsync(
            Enumerable.Range(1, couriers),
            new ParallelOptions { MaxDegreeOfParallelism = SeedParallelism, CancellationToken = cancellationToken },
            async (i, ct) => await PostAsync(new Uri(endpoints.Delivery, "/v1/couriers"), new NewCourier(null, $"{courierPrefix}-{i:D4}"), ct));
    }

    /// <summary>Places one order with a unique client order id and idempotency key.</summary>
    public async Task<Attempt> PlaceAsync(IReadOnlyList<OrderLine> items, string clientOrderId, CancellationToken cancellationToken)
    {
        var answer = await _orders.PlaceOneAsync(new PlaceOrderRequest(items, clientOrderId), clientOrderId + "-key", cancellationToken);
        Answers.Enqueue(answer);
        return answer.Outcome switch
        {
            // Load shed by the coordinator's admission (docs/api.md): nothing was started.
            AnswerOutcome.Unknown when answer.HttpStatus == (int)HttpStatusCode.ServiceUnavailable => new Attempt(BenchOutcome.Shed, null, answer.Reason),
            AnswerOutcome.Committed => new Attempt(BenchOutcome.Committed, answer.TransactionId),
            AnswerOutcome.Aborted => new Attempt(BenchOutcome.Aborted, answer.TransactionId),
            AnswerOutcome.Pending => new Attempt(BenchOutcome.Pending, answer.TransactionId),
            _ => new Attempt(BenchOutcome.Error, answer.TransactionId, answer.Reason ?? answer.Outcome.ToString()),
        };
    }

    /// <summary><c>POST /v1/deliveries/{tx}/complete</c>: true when the delivery service answered 2xx.</summary>
    public async Task<bool> CompleteAsync(Attempt attempt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(attempt);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(CompleteTimeout);
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(endpoints.Delivery, $"/v1/deliveries/{Uri.EscapeDataString(attempt.TransactionId ?? "")}/complete"));
        Authorize(request);
        using var response = await http.SendAsync(request, timeout.Token);
        return response.IsSuccessStatusCode;
    }

    private async Task PostAsync<T>(Uri uri, T body, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(SeedTimeout);
        using var request = new HttpRequestMessage(HttpMethod.Post, uri) { Content = JsonContent.Create(body, options: Json.Options) };
        Authorize(request);
        using var response = await http.SendAsync(request, timeout.Token);
        if (!response.IsSuccessStatusCode)
        {
            var text = await response.Content.ReadAsStringAsync(timeout.Token);
            throw new ApiException($"POST {uri} answered {(int)response.StatusCode}{(response.StatusCode == HttpStatusCode.Unauthorized ? " (pass --secret)" : "")}: {(text.Length > 300 ? text[..300] : text)}");
        }
    }

    private void Authorize(HttpRequestMessage request)
    {
        if (!string.IsNullOrEmpty(secret))
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", secret);
        }
    }
}
