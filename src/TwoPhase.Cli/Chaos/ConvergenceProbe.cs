using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json;
using TwoPhase.Harness.Client;

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

/// <summary>When the system converged, measured from a given moment (null if it did not within the timeout).</summary>
public sealed record ConvergenceResult(TimeSpan? After, ConvergencePoll Last, int Polls);

/// <summary>
/// What the faults left behind when the last one healed: the transactions then unfinished at the coordinator or
/// prepared at a participant, and when the last of them was finished (null if not within the timeout).
/// </summary>
/// <param name="Count">How many there were.</param>
/// <param name="After">From the heal until none of them was unfinished or prepared any more.</param>
/// <param name="Remaining">Those still unfinished or prepared at the last poll (a few ids), when not resolved.</param>
public sealed record LeftoverResult(int Count, TimeSpan? After, IReadOnlyList<string> Remaining);

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

    /// <summary>
    /// While the load still runs on the healed system, new transactions come and go, so "nothing unfinished" cannot be
    /// waited for; what the faults left behind can. Reads the transactions unfinished or prepared at
    /// <paramref name="from"/> (the last heal) and polls until none of them is any more.
    /// </summary>
    public async Task<LeftoverResult> WaitForLeftoversAsync(Stopwatch clock, TimeSpan from, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(clock);
        HashSet<string>? leftovers = null;
        var remaining = new List<string>();
        while (true)
        {
            var (ids, error) = await IdsAsync(cancellationToken);
            var at = clock.Elapsed - from;
            if (error is null)
            {
                leftovers ??= ids;
                remaining = leftovers.Where(ids.Contains).ToList();
                if (remaining.Count == 0)
                {
                    return new LeftoverResult(leftovers.Count, at, []);
                }
            }

            if (at >= timeout)
            {
                return new LeftoverResult(leftovers?.Count ?? 0, null, remaining.Take(5).ToList());
            }

            await Task.Delay(Interval, cancellationToken);
        }
    }

    public async Task<ConvergencePoll> PollAsync(CancellationToken cancellationToken)
    {
        var results = await ReadAllAsync(cancellationToken);
        var error = string.Join("; ", results.Select(r => r.Error).OfType<string>());
        return new ConvergencePoll(results[0].Ids.Count, results[1].Ids.Count, results[2].Ids.Count, error.Length == 0 ? null : error);
    }

    /// <summary>The ids unfinished at the coordinator or prepared at either participant, or why a service could not be read.</summary>
    private async Task<(HashSet<string> Ids, string? Error)> IdsAsync(CancellationToken cancellationToken)
    {
        var results = await ReadAllAsync(cancellationToken);
        var error = string.Join("; ", results.Select(r => r.Error).OfType<string>());
        return (results.SelectMany(r => r.Ids).ToHashSet(StringComparer.Ordinal), error.Length == 0 ? null : error);
    }

    private Task<(List<string> Ids, string? Error)[]> ReadAllAsync(CancellationToken cancellationToken) => Task.WhenAll(
        ReadAsync(endpoints.Order, "/v1/admin/transactions?state=unfinished", cancellationToken),
        ReadAsync(endpoints.Storage, "/v1/admin/prepared", cancellationToken),
        ReadAsync(endpoints.Delivery, "/v1/admin/prepared", cancellationToken));

    private async Task<(List<string> Ids, string? Error)> ReadAsync(Uri service, string pathAndQuery, CancellationToken ct)
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
                return ([], $"GET {uri} answered {(int)response.StatusCode}");
            }

            await using var body = await response.Content.ReadAsStreamAsync(timeout.Token);
            using var json = await JsonDocument.ParseAsync(body, cancellationToken: timeout.Token);
            if (json.RootElement.ValueKind != JsonValueKind.Array)
            {
                return ([], $"GET {uri}: expected a JSON array");
            }

            // An entry without an id still counts (as its position), so a count never shrinks for want of a field.
            return (json.RootElement.EnumerateArray()
                .Select((e, i) => e.ValueKind == JsonValueKind.Object && e.TryGetProperty("transactionId", out var id) && id.GetString() is { } text ? text : $"#{i}")
                .ToList(), null);
        }
        catch (Exception e) when (e is HttpRequestException or JsonException || (e is OperationCanceledException && !ct.IsCancellationRequested))
        {
            return ([], $"GET {uri}: {e.Message}");
        }
    }
}
