using System.Net;
using System.Net.Http.Headers;
using TwoPhase.Harness.Audit;

namespace TwoPhase.Cli.Commands;

/// <summary>
/// Completes a committed order's delivery (<c>POST /v1/deliveries/{tx}/complete</c>) as the bench does, so its courier
/// serves the next order. The client may hear "committed" before the COMMIT reached delivery (the decision is durable
/// first, docs/protocol.md): a 404 is retried, a bounded number of times.
/// </summary>
internal sealed class DeliveryCompleter(HttpClient http, Uri deliveryUrl, string? secret)
{
    private const int MaxAttempts = 50;
    private static readonly TimeSpan RetryDelay = TimeSpan.FromMilliseconds(20);
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(5);

    private int _completed;
    private int _failed;

    public int Completed => Volatile.Read(ref _completed);

    public int Failed => Volatile.Read(ref _failed);

    public async Task CompleteAsync(ClientAnswer answer, CancellationToken ct)
    {
        if (answer.Outcome != AnswerOutcome.Committed || answer.TransactionId is not { } tx)
        {
            return;
        }

        var uri = new Uri(deliveryUrl, $"/v1/deliveries/{Uri.EscapeDataString(tx)}/complete");
        for (var attempt = 1; attempt <= MaxAttempts; attempt++)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(RequestTimeout);
            using var request = new HttpRequestMessage(HttpMethod.Post, uri);
            if (!string.IsNullOrEmpty(secret))
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", secret);
            }

            try
            {
                using var response = await http.SendAsync(request, timeout.Token);
                if (response.IsSuccessStatusCode)
                {
                    Interlocked.Increment(ref _completed);
                    return;
                }

                // 404: the COMMIT has not reached delivery yet; 5xx: delivery is busy or restarting. Anything else stays.
                if (response.StatusCode != HttpStatusCode.NotFound && response.StatusCode < HttpStatusCode.InternalServerError)
                {
                    break;
                }
            }
            catch (Exception e) when (e is HttpRequestException || (e is OperationCanceledException && !ct.IsCancellationRequested))
            {
                // Delivery did not answer in time: try again.
            }

            await Task.Delay(RetryDelay, ct);
        }

        Interlocked.Increment(ref _failed);
    }
}
