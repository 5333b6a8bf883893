using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Reference.Contracts;
using TwoPhase.AspNetCore;
using TwoPhase.Harness.Client;

namespace TwoPhase.Harness.Audit;

/// <summary>
/// Reads a <see cref="SystemSnapshot"/> from the three services' APIs (paged listings per
/// docs/api.md). Read-only; every request is bounded in time and retried a bounded number of times.
/// </summary>
public sealed class ServiceSnapshotReader(HttpClient http, ServiceEndpoints endpoints, string? secret)
{
    /// <summary>Page size for listings; the API caps <c>limit</c> at 1000.</summary>
    public const int PageSize = 1000;

    // A listing longer than this is not a demo or a test run; stop rather than page forever
    // against a service whose cursor does not advance.
    private const int MaxPages = 10_000;

    // Ledger rows the order listing does not explain are looked up one by one; bounded because
    // each is a request, and a handful is enough to show what is wrong.
    private const int MaxDecisionLookups = 500;

    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(30);
    private const int Attempts = 3;

    /// <summary>
    /// Also read the admin listings (unfinished transactions, prepared rows), a second view of what is in flight.
    /// They need the shared secret: either <c>secret</c> or a default header on the client.
    /// </summary>
    public bool ReadAdminListings { get; init; }

    /// <summary>Reads everything once. The reads are not atomic across services: take it when quiet.</summary>
    public async Task<SystemSnapshot> ReadAsync(CancellationToken cancellationToken)
    {
        var snapshot = await ReadStateAsync(cancellationToken);
        var explained = snapshot.Orders.Select(o => o.TransactionId).ToHashSet(StringComparer.Ordinal);
        var orphans = snapshot.StorageLedger.Concat(snapshot.DeliveryLedger)
            .Select(r => r.TransactionId)
            .Concat(snapshot.Deliveries.Select(d => d.TransactionId))
            .Where(tx => !explained.Contains(tx))
            .Distinct(StringComparer.Ordinal)
            .Take(MaxDecisionLookups)
            .ToList();
        if (orphans.Count == 0)
        {
            return snapshot;
        }

        var decisions = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var tx in orphans)
        {
            var decision = await GetAsync<DecisionQuery>(endpoints.Order, $"/v1/transactions/{Uri.EscapeDataString(tx)}", cancellationToken);
            if (decision?.State is { } state)
            {
                decisions[tx] = state;
            }
        }

        return snapshot with { Decisions = decisions };
    }

    /// <summary>
    /// Reads snapshots until the system is quiet (nothing prepared, nothing pending) or
    /// <paramref name="timeout"/> passes; returns the last one read, quiet or not.
    /// </summary>
    public async Task<SystemSnapshot> WaitForQuietAsync(TimeSpan timeout, Action<SystemSnapshot>? onPoll, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var snapshot = await ReadStateAsync(cancellationToken);
            onPoll?.Invoke(snapshot);
            if (snapshot.IsQuiet || clock.Elapsed >= timeout)
            {
                // The final read also resolves decisions for orphan rows; only worth it once.
                return await ReadAsync(cancellationToken);
            }

            await Task.Delay(TimeSpan.FromMilliseconds(500), cancellationToken);
        }
    }

    private async Task<SystemSnapshot> ReadStateAsync(CancellationToken ct)
    {
        // Participants are read first and the coordinator last. The coordinator decides before a
        // participant applies, so a participant row read as committed is then always read as
        // committed at the coordinator too; the other order would show a commit in flight as a
        // participant committing without a decision (a false validity violation).
        var storageRows = GetPagedAsync<LedgerRow>(endpoints.Storage, "/v1/transactions", r => r.TransactionId, ct);
        var deliveryRows = GetPagedAsync<LedgerRow>(endpoints.Delivery, "/v1/transactions", r => r.TransactionId, ct);
        var products = GetListAsync<Product>(endpoints.Storage, "/v1/products", ct);
        var couriers = GetListAsync<Courier>(endpoints.Delivery, "/v1/couriers", ct);
        var deliveries = GetPagedAsync<Delivery>(endpoints.Delivery, "/v1/deliveries", d => d.TransactionId, ct);
        await Task.WhenAll(storageRows, deliveryRows, products, couriers, deliveries);
        var storagePrepared = ReadAdminListings ? await GetListAsync<LedgerRow>(endpoints.Storage, "/v1/admin/prepared", ct) : [];
        var deliveryPrepared = ReadAdminListings ? await GetListAsync<LedgerRow>(endpoints.Delivery, "/v1/admin/prepared", ct) : [];
        var orders = await GetPagedAsync<OrderView>(endpoints.Order, "/v1/orders", o => o.OrderId, ct);
        var unfinished = ReadAdminListings ? await GetListAsync<TransactionView>(endpoints.Order, "/v1/admin/transactions?state=unfinished", ct) : [];

        // A field a service left out reads as null whatever the record says; the auditor compares values, so
        // name what is missing instead of failing on it.
        return new SystemSnapshot(
            orders.Select(o => o with
            {
                TransactionId = o.TransactionId ?? o.OrderId,
                Status = o.Status ?? "unknown",
                Items = o.Items ?? [],
                Votes = o.Votes ?? new Dictionary<string, VoteView>(),
                Acknowledged = o.Acknowledged ?? [],
            }).ToList(),
            (await storageRows).Select(ToLedger).ToList(),
            (await deliveryRows).Select(ToLedger).ToList(),
            await products,
            (await couriers).Select(c => c with { Status = c.Status ?? "unknown" }).ToList(),
            (await deliveries).Select(d => d with { Status = d.Status ?? "unknown" }).ToList(),
            new Dictionary<string, string>(StringComparer.Ordinal))
        {
            Unfinished = unfinished,
            StoragePrepared = storagePrepared,
            DeliveryPrepared = deliveryPrepared,
        };

        static LedgerRow ToLedger(LedgerRow r) => r with { State = r.State ?? "unknown" };
    }

    private async Task<List<T>> GetPagedAsync<T>(Uri service, string path, Func<T, string> idOf, CancellationToken ct)
    {
        var all = new List<T>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        string? after = null;
        for (var page = 0; page < MaxPages; page++)
        {
            var query = after is null ? $"?limit={PageSize}" : $"?after={Uri.EscapeDataString(after)}&limit={PageSize}";
            var items = await GetListAsync<T>(service, path + query, ct);
            foreach (var item in items)
            {
                // A cursor that does not advance would otherwise loop until MaxPages.
                if (!seen.Add(idOf(item)))
                {
                    throw new ApiException($"{service}{path.TrimStart('/')}: paging returned id '{idOf(item)}' twice; is 'after' honoured?");
                }
            }

            all.AddRange(items);
            if (items.Count < PageSize)
            {
                return all;
            }

            after = idOf(items[^1]);
        }

        throw new ApiException($"{service}{path.TrimStart('/')}: more than {MaxPages} pages");
    }

    private async Task<List<T>> GetListAsync<T>(Uri service, string pathAndQuery, CancellationToken ct)
    {
        var element = await GetAsync<JsonElement>(service, pathAndQuery, ct);
        // docs/api.md shows listings as arrays; accept a wrapper object too ({"items": [...]})
        // so a service that pages with an envelope is still auditable.
        var array = element.ValueKind switch
        {
            JsonValueKind.Array => element,
            JsonValueKind.Object when TryGetArray(element, out var inner) => inner,
            _ => throw new ApiException($"{service}{pathAndQuery.TrimStart('/')}: expected a JSON array, got {element.ValueKind}"),
        };
        return array.Deserialize<List<T>>(Json.Options) ?? [];
    }

    private static bool TryGetArray(JsonElement obj, out JsonElement array)
    {
        foreach (var name in new[] { "items", "data", "results", "value" })
        {
            if (obj.TryGetProperty(name, out array) && array.ValueKind == JsonValueKind.Array)
            {
                return true;
            }
        }

        array = default;
        return false;
    }

    private async Task<T?> GetAsync<T>(Uri service, string pathAndQuery, CancellationToken ct)
    {
        var uri = new Uri(service, pathAndQuery);
        for (var attempt = 1; ; attempt++)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(RequestTimeout);
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, uri);
                if (!string.IsNullOrEmpty(secret))
                {
                    // Participant listings and decision queries may sit behind the shared secret.
                    request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", secret);
                }

                using var response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead, timeout.Token);
                if (response.StatusCode >= HttpStatusCode.InternalServerError && attempt < Attempts)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(250 * attempt), ct);
                    continue;
                }

                if (!response.IsSuccessStatusCode)
                {
                    var body = await response.Content.ReadAsStringAsync(timeout.Token);
                    throw new ApiException($"GET {uri} answered {(int)response.StatusCode} {response.ReasonPhrase}: {Truncate(body, 300)}");
                }

                await using var stream = await response.Content.ReadAsStreamAsync(timeout.Token);
                return await JsonSerializer.DeserializeAsync<T>(stream, Json.Options, timeout.Token);
            }
            catch (Exception ex) when (attempt < Attempts && !ct.IsCancellationRequested
                                       && ex is HttpRequestException or OperationCanceledException)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(250 * attempt), ct);
            }
            catch (OperationCanceledException ex) when (!ct.IsCancellationRequested)
            {
                throw new ApiException($"GET {uri} timed out after {Attempts} attempts", ex);
            }
            catch (HttpRequestException ex)
            {
                throw new ApiException($"GET {uri} failed: {ex.Message}", ex);
            }
            catch (JsonException ex)
            {
                throw new ApiException($"GET {uri}: unreadable JSON: {ex.Message}", ex);
            }
        }
    }

    private static string Truncate(string s, int max) => s.Length <= max ? s : s[..max] + "...";
}
