using System.ComponentModel.DataAnnotations;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.Extensions.Options;
using TwoPhase.AspNetCore;
using TwoPhase.Protocol;

namespace OrderService.Orders;

/// <summary>Where the order service learns which SKUs exist.</summary>
public sealed class CatalogOptions
{
    public const string SectionName = "Orders:Catalog";

    /// <summary>Reject unknown SKUs with 400 before any transaction starts. Off: storage votes no and the order aborts.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Storage's base URL; unset: the participant named <c>storage</c>.</summary>
    [Url]
    public string? Url { get; set; }

    /// <summary>Least time between two catalog reads, so a stream of unknown SKUs cannot turn into a stream of reads.</summary>
    [Range(0, 600_000)]
    public int MinRefreshIntervalMs { get; set; } = 100;

    [Range(50, 600_000)]
    public int RequestTimeoutMs { get; set; } = 2000;

    /// <summary>Most SKUs kept; a larger catalog is not cached and storage decides (never a wrong 400).</summary>
    [Range(1, 10_000_000)]
    public int MaxSkus { get; set; } = 100_000;
}

/// <summary>
/// The SKUs storage knows, cached so that a known SKU costs no round trip. A miss asks storage again, but
/// only through a read that started after the miss (a product created a moment ago is found), one read at
/// a time, at most one per <see cref="CatalogOptions.MinRefreshIntervalMs"/>. When storage cannot be read
/// the answer is "don't know" and the order goes ahead: storage's vote stays the authority, and a SKU
/// deleted after the check still aborts the order.
/// </summary>
public sealed class SkuCatalog(IHttpClientFactory clients, IOptions<CatalogOptions> options, IOptions<TwoPhaseOptions> shared, IReadOnlyDictionary<string, ParticipantRef> participants)
{
    public const string ClientName = "twophase-catalog";

    private sealed record Snapshot(HashSet<string>? Skus, long StartedAt);

    private readonly Lock _gate = new();
    private Snapshot _current = new(null, 0);
    private Task<Snapshot>? _refresh;

    /// <summary>The first SKU of <paramref name="skus"/> storage certainly does not know, with its index; null if none (or storage cannot say).</summary>
    public async Task<(int Index, string Sku)?> FindUnknownAsync(IReadOnlyList<string> skus, CancellationToken cancellationToken)
    {
        if (!options.Value.Enabled || CatalogUrl() is null)
        {
            return null;
        }

        var missedAt = Stopwatch.GetTimestamp();
        var snapshot = _current;
        if (snapshot.Skus is not null && skus.All(snapshot.Skus.Contains))
        {
            return null;
        }

        // Two rounds at most: the read in flight may have started before our miss.
        for (var round = 0; round < 2 && snapshot.StartedAt < missedAt; round++)
        {
            snapshot = await RefreshAsync().WaitAsync(cancellationToken);
        }

        if (snapshot.Skus is null || snapshot.StartedAt < missedAt)
        {
            return null;
        }

        for (var i = 0; i < skus.Count; i++)
        {
            if (!snapshot.Skus.Contains(skus[i]))
            {
                return (i, skus[i]);
            }
        }

        return null;
    }

    private Task<Snapshot> RefreshAsync()
    {
        lock (_gate)
        {
            if (_refresh is { IsCompleted: false } running)
            {
                return running;
            }

            // Not the caller's token: the read is shared by every waiter.
            return _refresh = ReadAsync();
        }
    }

    private async Task<Snapshot> ReadAsync()
    {
        var o = options.Value;
        var since = Stopwatch.GetElapsedTime(_current.StartedAt);
        if (_current.StartedAt != 0 && since < TimeSpan.FromMilliseconds(o.MinRefreshIntervalMs))
        {
            await Task.Delay(TimeSpan.FromMilliseconds(o.MinRefreshIntervalMs) - since);
        }

        var startedAt = Stopwatch.GetTimestamp();
        try
        {
            using var timeout = new CancellationTokenSource(o.RequestTimeoutMs);
            using var request = new HttpRequestMessage(HttpMethod.Get, $"{CatalogUrl()!.TrimEnd('/')}/v1/products");
            if (!string.IsNullOrEmpty(shared.Value.Secret))
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", shared.Value.Secret);
            }

            using var response = await clients.CreateClient(ClientName).SendAsync(request, timeout.Token);
            response.EnsureSuccessStatusCode();
            var products = await response.Content.ReadFromJsonAsync<List<CatalogEntry>>(JsonSerializerOptions.Web, timeout.Token) ?? [];
            var snapshot = products.Count <= o.MaxSkus
                ? new Snapshot(products.Where(p => p.Sku is not null).Select(p => p.Sku!).ToHashSet(StringComparer.Ordinal), startedAt)
                : new Snapshot(null, startedAt);
            _current = snapshot;
            return snapshot;
        }
        catch (Exception e) when (e is HttpRequestException or JsonException or OperationCanceledException)
        {
            // Storage unreachable or not a v1 storage: no opinion; the transaction will find out.
            return new Snapshot(null, startedAt);
        }
    }

    private string? CatalogUrl() =>
        options.Value.Url ?? (participants.TryGetValue("storage", out var storage) && !storage.Legacy ? storage.Url.ToString() : null);

    private sealed record CatalogEntry(string? Sku);
}
