using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;

namespace TwoPhase.AspNetCore;

/// <summary>
/// A typed HTTP client of a coordinator's decision query and admin routes (<see cref="CoordinatorEndpoints.MapTwoPhaseCoordinator"/>),
/// for the callers of another service. Registered by <see cref="TwoPhaseClientExtensions.AddTwoPhaseClient"/>.
/// </summary>
public sealed class TwoPhaseClient(HttpClient http)
{
    /// <summary>The decision for <paramref name="id"/> (committed, aborted or pending; unknown ids are aborted); null for an id the coordinator refuses.</summary>
    public async Task<DecisionQuery?> GetDecisionAsync(string id, CancellationToken ct = default)
    {
        using var response = await http.GetAsync($"v1/transactions/{Uri.EscapeDataString(id)}", ct);
        if (response.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.NotFound)
        {
            return null;
        }

        return await ReadAsync<DecisionQuery>(response, ct);
    }

    /// <summary>The transactions not completed (<paramref name="state"/> <c>unfinished</c>, the default) or refused by a participant (<c>conflicted</c>), oldest first.</summary>
    public async Task<IReadOnlyList<TransactionView>> ListTransactionsAsync(string? state = null, int? limit = null, CancellationToken ct = default)
    {
        var query = string.Join('&', new[] { state is null ? null : $"state={Uri.EscapeDataString(state)}", limit is null ? null : $"limit={limit}" }.Where(q => q is not null));
        using var response = await http.GetAsync(query.Length == 0 ? "v1/admin/transactions" : $"v1/admin/transactions?{query}", ct);
        return await ReadAsync<List<TransactionView>>(response, ct);
    }

    /// <summary>Re-drive <paramref name="id"/> now (aborting it first if abandoned); its state afterwards.</summary>
    public async Task<TransactionView> RetryAsync(string id, CancellationToken ct = default)
    {
        using var response = await http.PostAsync($"v1/admin/transactions/{Uri.EscapeDataString(id)}/retry", content: null, ct);
        return await ReadAsync<TransactionView>(response, ct);
    }

    /// <summary>The answer's body, or <see cref="TwoPhaseClientException"/> with the problem's detail for a status that is not success.</summary>
    private static async Task<T> ReadAsync<T>(HttpResponseMessage response, CancellationToken ct)
    {
        if (!response.IsSuccessStatusCode)
        {
            var detail = await ProblemDetailAsync(response, ct);
            throw new TwoPhaseClientException(response.StatusCode, $"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri?.AbsolutePath} answered {(int)response.StatusCode}{(detail is null ? "" : $": {detail}")}");
        }

        return await response.Content.ReadFromJsonAsync<T>(JsonSerializerOptions.Web, ct)
            ?? throw new TwoPhaseClientException(response.StatusCode, "The coordinator answered with an empty body.");
    }

    private static async Task<string?> ProblemDetailAsync(HttpResponseMessage response, CancellationToken ct)
    {
        try
        {
            var problem = await response.Content.ReadFromJsonAsync<JsonElement>(ct);
            return problem.ValueKind == JsonValueKind.Object && problem.TryGetProperty("detail", out var detail) && detail.ValueKind == JsonValueKind.String
                ? HttpParticipantTransport.Bounded(detail.GetString()!)
                : problem.ValueKind == JsonValueKind.Object && problem.TryGetProperty("title", out var title) && title.ValueKind == JsonValueKind.String ? title.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>A coordinator answered a <see cref="TwoPhaseClient"/> call with an error status.</summary>
public sealed class TwoPhaseClientException(HttpStatusCode status, string message) : Exception(message)
{
    /// <summary>The status it answered.</summary>
    public HttpStatusCode Status => status;
}

/// <summary>Registration of <see cref="TwoPhaseClient"/>.</summary>
public static class TwoPhaseClientExtensions
{
    /// <summary>
    /// <see cref="TwoPhaseClient"/> as a typed <see cref="HttpClient"/> on the coordinator at <paramref name="coordinatorUrl"/>,
    /// sending <c>Authorization: Bearer <paramref name="secret"/></c> when given (the admin routes need it). Returns the
    /// client's builder, for the caller's own handlers and resilience.
    /// </summary>
    public static IHttpClientBuilder AddTwoPhaseClient(this IServiceCollection services, Uri coordinatorUrl, string? secret = null)
    {
        ArgumentNullException.ThrowIfNull(coordinatorUrl);
        var baseAddress = coordinatorUrl.AbsoluteUri.EndsWith('/') ? coordinatorUrl : new Uri(coordinatorUrl.AbsoluteUri + "/");
        return services.AddHttpClient<TwoPhaseClient>(http =>
        {
            http.BaseAddress = baseAddress;
            // Bounded: a coordinator that hangs must not hang its callers forever.
            http.Timeout = TimeSpan.FromSeconds(30);
            if (!string.IsNullOrEmpty(secret))
            {
                http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", secret);
            }
        });
    }
}
