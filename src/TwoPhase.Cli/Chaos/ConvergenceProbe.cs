using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json;
using TwoPhase.Cli.Audit;

namespace TwoPhase.Cli.Chaos;

/// <summary>What one poll saw.</summary>
/// <param name="Unfinished">Transactions the coordinator has not marked completed.</param>
/// <param name="StoragePrepared">Storage ledger rows still prepared.</param>
/// <param name="DeliveryPrepared">Delivery ledger rows still prepared.</param>
/// <param name="Error">Why a service could not be read, if one could not; such a poll never counts as converged.</param>
public sealed record ConvergencePoll(int Unfinished, int StoragePrepared, int DeliveryPrepared, string? Error)
{
    public bool Converged => Error is null && Unfinished == 0 && StoragePrepared == 0 && DeliveryPrepared == 0;
}

/// <summary>When the system converged, measured from the last restart (null if it did not within the timeout).</summary>
public sealed record ConvergenceResult(TimeSpan? After, ConvergencePoll Last, int Polls);

/// <summary>
/// Polls the operator views until the system has converged: <c>GET /v1/admin/transactions?state=unfinished</c>
/// on the order service and <c>GET /v1/admin/prepared</c> on both participants, all empty.
/// </summary>
public sealed class ConvergenceProbe(HttpClient http, ServiceEndpoints endpoints, string secret)
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(3);

    /// <summary>Polls until converged or <paramref name="timeout"/> has passed since <paramref name="from"/> (a time on <paramref name="clock"/>).</summary>
    public async Task<ConvergenceResult> WaitAsync(Stopwatch clock, TimeSpan from, TimeSpan timeout, Action<ConvergencePoll>? onPoll, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(clock);
        var polls = 0;
        while (true)
        {
            var poll = await PollAsync(cancellationToken);
            polls++;
            // The time the answers were complete, not when the next poll would start.
            var at = clock.Elapsed - from;
            onPoll?.Invoke(poll);
            if (poll.Converged)
            {
                return new ConvergenceResult(at, poll, polls);
            }

            if (at >= timeout)
            {
                return new ConvergenceResult(null, poll, polls);
            }

            await Task.Delay(Interval, cancellationToken);
        }
    }

    public async Task<ConvergencePoll> PollAsync(CancellationToken cancellationToken)
    {
        var unfinished = CountAsync(endpoints.Order, "/v1/admin/transactions?state=unfinished", cancellationToken);
        var storage = CountAsync(endpoints.Storage, "/v1/admin/prepared", cancellationToken);
        var delivery = CountAsync(endpoints.Delivery, "/v1/admin/prepared", cancellationToken);
        var results = await Task.WhenAll(unfinished, storage, delivery);
        var error = string.Join("; ", results.Select(r => r.Error).OfType<string>());
        return new ConvergencePoll(results[0].Count, results[1].Count, results[2].Count, error.Length == 0 ? null : error);
    }

    private async Task<(int Count, string? Error)> CountAsync(Uri service, string pathAndQuery, CancellationToken ct)
    {
        var uri = new Uri(service, pathAndQuery);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(RequestTimeout);
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, uri);
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", secret);
            using var response = await http.SendAsync(request, timeout.Token);
            if (!response.IsSuccessStatusCode)
            {
                return (0, $"GET {uri} answered {(int)response.StatusCode}");
            }

            await using var body = await response.Content.ReadAsStreamAsync(timeout.Token);
            using var json = await JsonDocument.ParseAsync(body, cancellationToken: timeout.Token);
            return json.RootElement.ValueKind == JsonValueKind.Array
                ? (json.RootElement.GetArrayLength(), null)
                : (0, $"GET {uri}: expected a JSON array");
        }
        catch (Exception e) when (e is HttpRequestException or JsonException || (e is OperationCanceledException && !ct.IsCancellationRequested))
        {
            return (0, $"GET {uri}: {e.Message}");
        }
    }
}
