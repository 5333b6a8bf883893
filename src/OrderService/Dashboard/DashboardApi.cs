using System.ComponentModel.DataAnnotations;
using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using TwoPhase.AspNetCore;
using TwoPhase.Persistence;
using TwoPhase.Protocol;

namespace OrderService.Dashboard;

/// <summary>What the dashboard shows and where it reads it.</summary>
public sealed class DashboardOptions
{
    public const string SectionName = "Dashboard";

    /// <summary>The participant that serves <c>/v1/products</c> (stock).</summary>
    [Required]
    public string InventoryParticipant { get; set; } = "storage";

    /// <summary>The participant that serves <c>/v1/couriers</c>.</summary>
    [Required]
    public string CourierParticipant { get; set; } = "delivery";

    /// <summary>Newest transactions listed.</summary>
    [Range(1, 1000)]
    public int RecentTransactions { get; set; } = 12;

    /// <summary>Of those, how many get each participant's ledger row (for the per-participant timeline).</summary>
    [Range(0, 1000)]
    public int TimelineTransactions { get; set; } = 6;

    /// <summary>How long one snapshot is reused, so many open pages cost the same as one.</summary>
    [Range(0, 600_000)]
    public int CacheMs { get; set; } = 750;

    /// <summary>Bound on each read from a participant.</summary>
    [Range(50, 600_000)]
    public int ParticipantTimeoutMs { get; set; } = 1500;
}

/// <summary>One participant's view of a transaction: when it prepared (or refused) and when it applied the decision.</summary>
public sealed record ParticipantStep(string State, DateTimeOffset At, DateTimeOffset UpdatedAt, string? Reason);

/// <summary>A recent transaction with its phase timeline.</summary>
public sealed record TimelineView(TransactionView Transaction, IReadOnlyDictionary<string, ParticipantStep?>? Steps);

/// <summary>A participant as the dashboard sees it: reachable or not, and its prepared rows (oldest first).</summary>
public sealed record ParticipantView(string Name, string Url, bool Reachable, string? Error, int PreparedCount, IReadOnlyList<PreparedView> Prepared);

public sealed record PreparedView(string TransactionId, double AgeSeconds, int Checks);

/// <summary>Everything the dashboard page draws, in one same-origin read.</summary>
public sealed record DashboardSnapshot(
    DateTimeOffset Now,
    DashboardFigures Figures,
    int InFlight,
    long UnfinishedCount,
    IReadOnlyList<TransactionView> Unfinished,
    long ConflictedCount,
    IReadOnlyList<TransactionView> Conflicted,
    IReadOnlyList<TimelineView> Recent,
    IReadOnlyList<ParticipantView> Participants,
    JsonElement? Products,
    JsonElement? Couriers);

/// <summary>
/// Builds dashboard snapshots: the rolling figures from memory, the decision log from the local database, and
/// the participants' state through their own APIs, read server-side (with the shared secret, which never
/// reaches the browser), so the page makes same-origin requests only.
/// </summary>
public sealed class DashboardReader(
    DashboardRecorder recorder,
    SqlDecisionLog log,
    Database db,
    TransactionAdmission admission,
    IReadOnlyDictionary<string, ParticipantRef> participants,
    IHttpClientFactory clients,
    IOptions<DashboardOptions> options,
    IOptions<TwoPhaseOptions> shared,
    TimeProvider time)
{
    public const string ClientName = "twophase-dashboard";

    private readonly SemaphoreSlim _refresh = new(1, 1);
    private (DashboardSnapshot Snapshot, long At)? _cached;

    public async Task<DashboardSnapshot> ReadAsync(CancellationToken cancellationToken)
    {
        if (Fresh() is { } hit)
        {
            return hit;
        }

        await _refresh.WaitAsync(cancellationToken);
        try
        {
            if (Fresh() is { } raced)
            {
                return raced;
            }

            var snapshot = await BuildAsync(cancellationToken);
            _cached = (snapshot, time.GetTimestamp());
            return snapshot;
        }
        finally
        {
            _refresh.Release();
        }
    }

    private DashboardSnapshot? Fresh() =>
        _cached is { } c && time.GetElapsedTime(c.At).TotalMilliseconds < options.Value.CacheMs ? c.Snapshot : null;

    private async Task<DashboardSnapshot> BuildAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        var now = time.GetUtcNow();
        var http = clients.CreateClient(ClientName);
        var prepared = participants.Values.Select(p => PreparedAsync(http, p, cancellationToken)).ToList();
        var products = GetJsonAsync(http, o.InventoryParticipant, "v1/products", cancellationToken);
        var couriers = GetJsonAsync(http, o.CourierParticipant, "v1/couriers", cancellationToken);
        var unfinishedCount = await Observation.UnfinishedAsync(db, cancellationToken);
        var unfinished = await log.ListUnfinishedAsync(20, cancellationToken);
        var conflictedCount = await log.CountConflictedAsync(cancellationToken);
        var conflicted = conflictedCount > 0 ? await log.ListConflictedAsync(20, cancellationToken) : [];
        var recent = await log.ListRecentAsync(Math.Clamp(o.RecentTransactions, 1, 100), cancellationToken);
        var timelines = await Task.WhenAll(recent.Select((r, i) => TimelineAsync(http, r, now, i < o.TimelineTransactions, cancellationToken)));
        return new DashboardSnapshot(
            now,
            recorder.Snapshot(),
            (int)admission.InFlight,
            unfinishedCount.Count,
            unfinished.Select(r => TransactionView.From(r, now)).ToList(),
            conflictedCount,
            conflicted.Select(r => TransactionView.From(r, now)).ToList(),
            timelines,
            await Task.WhenAll(prepared),
            await products,
            await couriers);
    }

    private async Task<TimelineView> TimelineAsync(HttpClient http, TransactionRecord record, DateTimeOffset now, bool withSteps, CancellationToken cancellationToken)
    {
        var view = TransactionView.From(record, now);
        if (!withSteps)
        {
            return new TimelineView(view, null);
        }

        var steps = new Dictionary<string, ParticipantStep?>();
        foreach (var name in record.Participants)
        {
            var row = await GetAsync<LedgerRow>(http, name, $"v1/transactions/{Uri.EscapeDataString(record.Id)}", cancellationToken);
            steps[name] = row.Value is { } r ? new ParticipantStep(r.State, r.CreatedAt, r.UpdatedAt, r.Reason) : null;
        }

        return new TimelineView(view, steps);
    }

    private async Task<ParticipantView> PreparedAsync(HttpClient http, ParticipantRef participant, CancellationToken cancellationToken)
    {
        var (rows, error) = await GetAsync<List<LedgerRow>>(http, participant.Name, "v1/admin/prepared", cancellationToken);
        return new ParticipantView(
            participant.Name,
            participant.Url.ToString(),
            error is null,
            error,
            rows?.Count ?? 0,
            (rows ?? []).Take(10).Select(r => new PreparedView(r.TransactionId, r.AgeSeconds, r.Checks)).ToList());
    }

    private async Task<JsonElement?> GetJsonAsync(HttpClient http, string participant, string path, CancellationToken cancellationToken) =>
        (await GetAsync<JsonElement>(http, participant, path, cancellationToken)) is { Error: null } ok ? ok.Value : null;

    /// <summary>One bounded read from a participant; an unreachable or failing one is reported, never thrown.</summary>
    private async Task<(T? Value, string? Error)> GetAsync<T>(HttpClient http, string participant, string path, CancellationToken cancellationToken)
    {
        if (!participants.TryGetValue(participant, out var target) || target.Legacy)
        {
            return (default, "not a v1 participant");
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.Value.ParticipantTimeoutMs);
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(target.Url, path));
        if (!string.IsNullOrEmpty(shared.Value.Secret))
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", shared.Value.Secret);
        }

        try
        {
            using var response = await http.SendAsync(request, timeout.Token);
            return response.IsSuccessStatusCode
                ? (await response.Content.ReadFromJsonAsync<T>(JsonSerializerOptions.Web, timeout.Token), null)
                : (default, $"HTTP {(int)response.StatusCode}");
        }
        catch (Exception e) when (e is HttpRequestException or JsonException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return (default, e is OperationCanceledException ? "timed out" : "unreachable");
        }
    }
}

public static class DashboardApi
{
    private const string AssetPrefix = "OrderService.Dashboard.Assets.";

    public static WebApplicationBuilder AddDashboard(this WebApplicationBuilder builder)
    {
        builder.Services.AddTwoPhaseOptions<DashboardOptions>(DashboardOptions.SectionName);
        builder.Services.AddSingleton<DashboardRecorder>();
        builder.Services.AddSingleton<DashboardReader>();
        builder.Services.AddHttpClient(DashboardReader.ClientName);
        return builder;
    }

    /// <summary>The page at <c>/</c> (and its script and style, embedded in this assembly) and its data at <c>/v1/dashboard</c>.</summary>
    public static IEndpointRouteBuilder MapDashboard(this IEndpointRouteBuilder endpoints)
    {
        // Created now, not at the first page view, so the figures cover everything since start.
        endpoints.ServiceProvider.GetRequiredService<DashboardRecorder>();
        endpoints.MapGet("/v1/dashboard", async Task<Ok<DashboardSnapshot>> (DashboardReader reader, CancellationToken ct) => TypedResults.Ok(await reader.ReadAsync(ct)))
            .WithTags("Dashboard")
            .WithSummary("Live figures, recent transactions with their timelines, prepared rows, stock and couriers.");
        endpoints.MapGet("/", () => Asset("index.html", "text/html; charset=utf-8")).ExcludeFromDescription();
        endpoints.MapGet("/dashboard/{name}", (string name) => name switch
        {
            "dashboard.js" => Asset(name, "text/javascript; charset=utf-8"),
            "dashboard.css" => Asset(name, "text/css; charset=utf-8"),
            _ => Results.NotFound(),
        }).ExcludeFromDescription();
        return endpoints;
    }

    private static IResult Asset(string name, string contentType)
    {
        var stream = typeof(DashboardApi).Assembly.GetManifestResourceStream(AssetPrefix + name)
            ?? throw new InvalidOperationException($"Dashboard asset {name} is not embedded.");
        return Results.Stream(stream, contentType);
    }
}
