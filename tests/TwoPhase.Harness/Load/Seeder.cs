using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using TwoPhase.Harness.Client;

using Reference.Contracts;

namespace TwoPhase.Harness.Load;

/// <summary>
/// Seeds products and couriers through the services' domain APIs. Creating products and couriers
/// is an operator action, so the services may demand the shared secret for it; it is sent when known.
/// </summary>
public sealed class Seeder(HttpClient http, Uri storageUrl, Uri deliveryUrl, string? secret)
{
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(15);

    // Couriers are added one request each; a few in parallel keeps seeding quick without
    // turning the seed itself into a load test.
    private const int CourierParallelism = 8;

    public async Task SeedAsync(SeedPlan plan, CancellationToken cancellationToken)
    {
        foreach (var (sku, name) in SeedPlan.PlentifulProducts)
        {
            await CreateProductAsync(new NewProduct(sku, name, plan.PlentifulStock), cancellationToken);
        }

        await CreateProductAsync(new NewProduct(SeedPlan.ScarceSku, "Scarce gadget", plan.ScarceStock), cancellationToken);
        await Parallel.ForEachAsync(
            Enumerable.Range(1, plan.Couriers),
            new ParallelOptions { MaxDegreeOfParallelism = CourierParallelism, CancellationToken = cancellationToken },
            async (i, ct) => await PostAsync(new Uri(deliveryUrl, "/v1/couriers"), new NewCourier(null, $"courier-{i:D4}"), allowConflict: false, ct));
    }

    private Task CreateProductAsync(NewProduct product, CancellationToken ct) =>
        // 409: the product exists (e.g. a second simulate against the same services); keep it as is.
        PostAsync(new Uri(storageUrl, "/v1/products"), product, allowConflict: true, ct);

    private async Task PostAsync<T>(Uri uri, T body, bool allowConflict, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(RequestTimeout);
        using var request = new HttpRequestMessage(HttpMethod.Post, uri) { Content = JsonContent.Create(body, options: Json.Options) };
        if (!string.IsNullOrEmpty(secret))
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", secret);
        }

        using var response = await http.SendAsync(request, timeout.Token);
        if (response.IsSuccessStatusCode || (allowConflict && response.StatusCode == HttpStatusCode.Conflict))
        {
            return;
        }

        var text = await response.Content.ReadAsStringAsync(timeout.Token);
        throw new ApiException($"POST {uri} answered {(int)response.StatusCode}: {(text.Length > 300 ? text[..300] : text)}");
    }
}
