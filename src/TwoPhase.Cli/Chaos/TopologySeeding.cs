using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using TwoPhase.Harness.Client;
using TwoPhase.Harness.Load;

namespace TwoPhase.Cli.Chaos;

/// <summary>
/// Seeds products and couriers through the balancers, as <see cref="Seeder"/> does, but each request is retried (at most
/// 5 tries): a pooled connection the balancer closed as idle fails the request that reuses it. Couriers get ids, so a
/// retried create that did land answers 409 and creates nothing twice.
/// </summary>
public static class TopologySeeding
{
    private const int Attempts = 5;
    private const int CourierParallelism = 8;
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(15);

    public static async Task SeedAsync(HttpClient http, Uri storage, Uri delivery, string secret, SeedPlan plan, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(plan);
        foreach (var (sku, name) in SeedPlan.PlentifulProducts)
        {
            await PostAsync(http, new Uri(storage, "/v1/products"), new NewProduct(sku, name, plan.PlentifulStock), secret, ct);
        }

        await PostAsync(http, new Uri(storage, "/v1/products"), new NewProduct(SeedPlan.ScarceSku, "Scarce gadget", plan.ScarceStock), secret, ct);
        await Parallel.ForEachAsync(Enumerable.Range(1, plan.Couriers), new ParallelOptions { MaxDegreeOfParallelism = CourierParallelism, CancellationToken = ct },
            async (i, c) => await PostAsync(http, new Uri(delivery, "/v1/couriers"), new NewCourier($"courier-{i:D5}", $"courier-{i:D5}"), secret, c));
    }

    private static async Task PostAsync<T>(HttpClient http, Uri uri, T body, string secret, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(RequestTimeout);
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, uri) { Content = JsonContent.Create(body, options: Json.Options) };
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", secret);
                using var response = await http.SendAsync(request, timeout.Token);
                // 409: it exists (a retry of a create that landed); keep it.
                if (response.IsSuccessStatusCode || response.StatusCode == HttpStatusCode.Conflict)
                {
                    return;
                }

                var text = await response.Content.ReadAsStringAsync(timeout.Token);
                if ((int)response.StatusCode < 500 || attempt >= Attempts)
                {
                    throw new ApiException($"POST {uri} answered {(int)response.StatusCode}: {(text.Length > 300 ? text[..300] : text)}");
                }
            }
            catch (Exception e) when (attempt < Attempts && (e is HttpRequestException || (e is OperationCanceledException && !ct.IsCancellationRequested)))
            {
                // Retried below.
            }

            await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt), ct);
        }
    }
}
