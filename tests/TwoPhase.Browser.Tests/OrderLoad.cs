using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace TwoPhase.Browser.Tests;

/// <summary>
/// A small simulator: a few workers placing orders in a loop, most for one widget, some for more gadgets than
/// there are (so aborts show too), completing each committed delivery so couriers come free again.
/// </summary>
public sealed class OrderLoad : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(30) };
    private readonly CourierDispatcher _dispatcher;
    private readonly Task[] _workers;
    private long _committed;
    private long _aborted;

    public OrderLoad(ReferenceSystem system, int workers)
    {
        _dispatcher = new CourierDispatcher(_http, system.Delivery.Url, system.Secret);
        _workers = Enumerable.Range(0, workers).Select(w => Task.Run(() => RunAsync(system, w, _stop.Token))).ToArray();
    }

    public long Committed => Interlocked.Read(ref _committed);

    public long Aborted => Interlocked.Read(ref _aborted);

    private async Task RunAsync(ReferenceSystem system, int worker, CancellationToken stop)
    {
        for (var i = 0; !stop.IsCancellationRequested; i++)
        {
            try
            {
                var gadgets = i % 10 == worker % 10;
                var order = new { items = new[] { gadgets ? new { sku = "gadget", quantity = 40 } : new { sku = "widget", quantity = 1 } } };
                using var response = await _http.PostAsJsonAsync(new Uri(system.Order.Url, "/v1/orders"), order, stop);
                if (response.StatusCode != HttpStatusCode.Created)
                {
                    Interlocked.Increment(ref _aborted);
                    continue;
                }

                Interlocked.Increment(ref _committed);
                var placed = await response.Content.ReadFromJsonAsync<JsonElement>(stop);
                _dispatcher.Complete(placed.GetProperty("transactionId").GetString()!);
            }
            catch (Exception e) when (e is HttpRequestException || (e is OperationCanceledException && !stop.IsCancellationRequested))
            {
                // A slow or refused request under load: the next one goes on.
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_workers);
        await _dispatcher.DisposeAsync();
        _stop.Dispose();
        _http.Dispose();
    }
}
