using System.Net;
using System.Net.Http.Headers;

namespace TwoPhase.Harness;

/// <summary>What the dispatcher did: deliveries completed, and those it gave up on (the courier stays busy).</summary>
public sealed record DispatchStats(int Completed, int GaveUp);

/// <summary>
/// Completes the delivery of each committed order shortly after the client hears "committed", which
/// frees its courier for later orders: the run needs far fewer couriers than orders and still commits,
/// and couriers are booked again and again while services die, which is what "no double booking" is
/// about. Bounded: at most <see cref="Parallelism"/> requests at once and <see cref="MaxAttempts"/> per
/// delivery. A committed order's delivery may not exist yet (the COMMIT to delivery is still being
/// re-driven) or delivery may be down: both are retried.
/// </summary>
public sealed class CourierDispatcher(HttpClient http, Uri deliveryUrl, string secret) : IAsyncDisposable
{
    private const int Parallelism = 4;
    private const int MaxAttempts = 40;
    private static readonly TimeSpan RetryDelay = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(5);

    private readonly SemaphoreSlim _slots = new(Parallelism, Parallelism);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _work = [];
    private int _completed;
    private int _gaveUp;

    /// <summary>Completes the delivery booked by <paramref name="transactionId"/>, in the background.</summary>
    public void Complete(string transactionId)
    {
        lock (_work)
        {
            if (!_stop.IsCancellationRequested)
            {
                _work.Add(CompleteAsync(transactionId, _stop.Token));
            }
        }
    }

    /// <summary>
    /// Stops: nothing new starts and unfinished deliveries are left active. Awaited before the audit,
    /// which must not read couriers and deliveries while one is being completed.
    /// </summary>
    public async Task<DispatchStats> StopAsync()
    {
        Task[] work;
        lock (_work)
        {
            _stop.Cancel();
            work = [.. _work];
        }

        await Task.WhenAll(work);
        return new DispatchStats(Volatile.Read(ref _completed), Volatile.Read(ref _gaveUp));
    }

    private async Task CompleteAsync(string transactionId, CancellationToken ct)
    {
        try
        {
            if (await CompleteNowAsync(transactionId, ct))
            {
                Interlocked.Increment(ref _completed);
                return;
            }

            Interlocked.Increment(ref _gaveUp);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopped for the audit; the delivery stays active, which is a valid state.
        }
    }

    /// <summary>
    /// Completes the delivery now, in the caller's flow (simulate does, before its worker sends the next order), with the
    /// same bounded retries; true once delivery answered 2xx. Not counted in <see cref="StopAsync"/>'s figures.
    /// </summary>
    public async Task<bool> CompleteNowAsync(string transactionId, CancellationToken ct)
    {
        var uri = new Uri(deliveryUrl, $"/v1/deliveries/{Uri.EscapeDataString(transactionId)}/complete");
        for (var attempt = 1; attempt <= MaxAttempts; attempt++)
        {
            await Task.Delay(RetryDelay, ct);
            await _slots.WaitAsync(ct);
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                timeout.CancelAfter(RequestTimeout);
                using var request = new HttpRequestMessage(HttpMethod.Post, uri);
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", secret);
                using var response = await http.SendAsync(request, timeout.Token);
                if (response.IsSuccessStatusCode)
                {
                    return true;
                }

                // 404: not committed at delivery yet (or an earlier try completed it and its answer was
                // lost; the bound ends that). 5xx: delivery is restarting. Anything else will not change.
                if (response.StatusCode != HttpStatusCode.NotFound && response.StatusCode < HttpStatusCode.InternalServerError)
                {
                    return false;
                }
            }
            catch (Exception e) when (e is HttpRequestException || (e is OperationCanceledException && !ct.IsCancellationRequested))
            {
                // Delivery is down or restarting: try again.
            }
            finally
            {
                _slots.Release();
            }
        }

        return false;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _stop.Dispose();
        _slots.Dispose();
    }
}
