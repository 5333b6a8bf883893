using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Reference.Contracts;
using TwoPhase.AspNetCore;

namespace TwoPhase.Harness.Client;

/// <summary>
/// The typed client of the reference system's public API, as the tests use it: every call bounded in time, every
/// listing read page by page, every non-success answer an exception that carries the body. It reads and writes the
/// services' own records (Reference.Contracts, TwoPhase.AspNetCore's Wire.cs).
/// </summary>
public sealed class Api(HttpClient http, Uri order, Uri storage, Uri delivery)
{
    public const int PageSize = 1000;

    // Strict web defaults: a test wants a mistyped field to fail loudly (the auditor's reader is lenient on purpose).
    private static readonly JsonSerializerOptions Json = JsonSerializerOptions.Web;

    public HttpClient Http => http;

    public Uri OrderUrl => order;

    public Uri StorageUrl => storage;

    public Uri DeliveryUrl => delivery;

    public ServiceEndpoints Endpoints => new(order, storage, delivery);

    public Uri Participant(ServiceKind participant) => participant switch
    {
        ServiceKind.Storage => storage,
        ServiceKind.Delivery => delivery,
        _ => throw new ArgumentOutOfRangeException(nameof(participant), participant, "not a participant"),
    };

    // ---- order service

    /// <summary>POST /v1/orders. Returns whatever was answered; a connection that dies throws HttpRequestException.</summary>
    public async Task<OrderResult> PlaceOrderAsync(IEnumerable<OrderLine> items, string? idempotencyKey = null, string? clientOrderId = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(order, "v1/orders"))
        {
            Content = JsonContent.Create(new PlaceOrderRequest(items.ToList(), clientOrderId), options: Json),
        };
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }

        using var response = await http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        var isOrder = response.IsSuccessStatusCode && body.TrimStart().StartsWith('{');
        return new OrderResult((int)response.StatusCode, body, isOrder ? JsonSerializer.Deserialize<OrderView>(body, Json) : null);
    }

    public Task<OrderResult> PlaceOrderAsync(string sku, long quantity = 1, string? idempotencyKey = null) =>
        PlaceOrderAsync([new OrderLine(sku, quantity)], idempotencyKey);

    /// <summary>POST /order?order_id=N, the old system's client call; the raw JSON answer.</summary>
    public async Task<(int Status, JsonElement Body)> PlaceLegacyOrderAsync(long orderId)
    {
        using var response = await http.PostAsync(new Uri(order, $"order?order_id={orderId}"), null);
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, JsonSerializer.Deserialize<JsonElement>(text));
    }

    public Task<OrderView> GetOrderAsync(string id) => GetAsync<OrderView>(order, $"v1/orders/{id}");

    public Task<List<OrderView>> ListOrdersAsync() => PagedAsync<OrderView>(order, "v1/orders", o => o.OrderId);

    public Task<List<TransactionView>> UnfinishedAsync() => GetAsync<List<TransactionView>>(order, "v1/admin/transactions?state=unfinished");

    /// <summary>The coordinator's decision query: committed, aborted or pending.</summary>
    public async Task<string> DecisionAsync(string transactionId) =>
        (await GetAsync<DecisionQuery>(order, $"v1/transactions/{transactionId}")).State;

    // ---- participants

    public Task<List<LedgerRow>> LedgerAsync(ServiceKind participant) => PagedAsync<LedgerRow>(Participant(participant), "v1/transactions", r => r.TransactionId);

    public Task<List<LedgerRow>> PreparedAsync(ServiceKind participant) => GetAsync<List<LedgerRow>>(Participant(participant), "v1/admin/prepared");

    /// <summary>A participant's ledger row, or null (404).</summary>
    public async Task<LedgerRow?> LedgerRowAsync(ServiceKind participant, string transactionId)
    {
        using var response = await http.GetAsync(new Uri(Participant(participant), $"v1/transactions/{transactionId}"));
        if (response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return null;
        }

        await EnsureSuccessAsync(response);
        return await response.Content.ReadFromJsonAsync<LedgerRow>(Json);
    }

    /// <summary>POST /v1/transactions/{id}/{prepare|commit|abort} straight to a participant, as a duplicated or stray message.</summary>
    public async Task<(int Status, string Body)> SendProtocolAsync(ServiceKind participant, string transactionId, string verb, object? body = null)
    {
        using var content = new StringContent(body is null ? "{}" : JsonSerializer.Serialize(body, Json), Encoding.UTF8, "application/json");
        using var response = await http.PostAsync(new Uri(Participant(participant), $"v1/transactions/{transactionId}/{verb}"), content);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>POST /v1/transactions/batch with a raw JSON body, with this system's secret or, when <paramref name="authenticated"/> is false, none.</summary>
    public async Task<(int Status, string Body)> SendBatchAsync(ServiceKind participant, string json, bool authenticated = true)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(Participant(participant), "v1/transactions/batch"))
        {
            Content = new StringContent(json, Encoding.UTF8, "application/json"),
        };
        if (!authenticated)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "not-the-secret");
        }

        using var response = await http.SendAsync(request);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    // ---- storage

    public Task<List<Product>> ProductsAsync() => GetAsync<List<Product>>(storage, "v1/products");

    public Task AddProductAsync(string sku, long stock) => PostAsync(storage, "v1/products", new NewProduct(sku, $"Product {sku}", stock));

    // ---- delivery

    public Task<List<Courier>> CouriersAsync() => GetAsync<List<Courier>>(delivery, "v1/couriers");

    public async Task AddCouriersAsync(int count)
    {
        for (var i = 0; i < count; i++)
        {
            await PostAsync(delivery, "v1/couriers", new NewCourier($"courier-{i + 1:D3}", $"Courier {i + 1}"));
        }
    }

    public Task<List<Delivery>> DeliveriesAsync() => PagedAsync<Delivery>(delivery, "v1/deliveries", d => d.TransactionId);

    // ---- plumbing

    public async Task<T> GetAsync<T>(Uri service, string path)
    {
        using var response = await http.GetAsync(new Uri(service, path));
        await EnsureSuccessAsync(response);
        return (await response.Content.ReadFromJsonAsync<T>(Json))!;
    }

    private async Task PostAsync(Uri service, string path, object body)
    {
        using var response = await http.PostAsJsonAsync(new Uri(service, path), body, Json);
        await EnsureSuccessAsync(response);
    }

    /// <summary>Reads <c>?after=&amp;limit=1000</c> pages until a short one; the first page has no <c>after</c>.</summary>
    private async Task<List<T>> PagedAsync<T>(Uri service, string path, Func<T, string> key)
    {
        var all = new List<T>();
        string? after = null;
        // Bounded: a million rows is far beyond any test.
        for (var page = 0; page < 1000; page++)
        {
            var query = after is null ? $"{path}?limit={PageSize}" : $"{path}?after={Uri.EscapeDataString(after)}&limit={PageSize}";
            var rows = await GetAsync<List<T>>(service, query);
            all.AddRange(rows);
            if (rows.Count < PageSize)
            {
                return all;
            }

            after = key(rows[^1]);
        }

        throw new InvalidOperationException($"{path} did not end within 1000 pages.");
    }

    private static async Task EnsureSuccessAsync(HttpResponseMessage response)
    {
        if (!response.IsSuccessStatusCode)
        {
            var body = await response.Content.ReadAsStringAsync();
            throw new HttpRequestException($"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri} answered {(int)response.StatusCode}: {body}", null, response.StatusCode);
        }
    }

    public static HttpClient CreateHttpClient(string secret) =>
        new(new SocketsHttpHandler { UseProxy = false, PooledConnectionLifetime = TimeSpan.FromSeconds(30), MaxConnectionsPerServer = 256 })
        {
            Timeout = TimeSpan.FromSeconds(30),
            DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Bearer", secret) },
        };
}
