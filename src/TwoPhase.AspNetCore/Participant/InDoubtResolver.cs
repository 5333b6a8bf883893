using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TwoPhase.Persistence;
using TwoPhase.Protocol;

namespace TwoPhase.AspNetCore;

/// <summary>
/// Resolves prepared rows older than the in-doubt timeout by asking the coordinator (DESIGN §2). Never decides
/// alone: an unreachable coordinator or a pending answer means ask again later, with capped backoff.
/// </summary>
internal sealed class InDoubtResolver(
    LedgerParticipant participant,
    IHttpClientFactory clients,
    IOptions<ParticipantOptions> options,
    IOptions<TwoPhaseOptions> shared,
    TimeProvider time,
    ILogger<InDoubtResolver> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(o.CheckIntervalMs), time);
        do
        {
            try
            {
                await ResolveOnceAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                Log.RecoveryFailed(logger, e);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>
    /// One pass, by <see cref="InDoubtRules"/>: every row due (<see cref="InDoubtRules.IsDue"/>, the query's WHERE) asks the
    /// coordinator, and <see cref="InDoubtRules.OnAnswer"/> says what to do with the answer.
    /// </summary>
    public async Task ResolveOnceAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        var now = time.GetUtcNow();
        var inDoubt = await participant.FindInDoubtAsync(now - TimeSpan.FromMilliseconds(o.InDoubtAfterMs), now, o.BatchSize, cancellationToken);
        var http = clients.CreateClient(ParticipantExtensions.CoordinatorClientName);
        await Parallel.ForEachAsync(inDoubt, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken }, async (entry, ct) =>
        {
            var answer = await AskAsync(http, entry, ct);
            switch (InDoubtRules.OnAnswer(answer))
            {
                case InDoubtAction.AskAgain:
                    var next = InDoubtRules.NextCheck(
                        entry, time.GetUtcNow(), TimeSpan.FromMilliseconds(o.RetryInitialDelayMs), TimeSpan.FromMilliseconds(o.RetryMaxDelayMs), Random.Shared.NextDouble());
                    await participant.ScheduleCheckAsync(entry.TransactionId, next, ct);
                    break;
                case var decided:
                    // The decision is applied as the coordinator's COMMIT or ABORT would be, by the same rules.
                    await participant.DecideAsync(entry.TransactionId, decided == InDoubtAction.Commit ? Decision.Commit : Decision.Abort, ct);
                    Log.InDoubtResolved(logger, entry.TransactionId, answer!.Value.ToWire());
                    break;
            }
        });
    }

    /// <summary>
    /// The answer of the coordinator group that sent the row's PREPARE (<c>GET {url}/v1/transactions/{id}?group=G</c>,
    /// <see cref="InDoubtRules.QueryTarget"/>); null when it cannot be asked or says nothing readable.
    /// </summary>
    private async Task<DecisionQueryAnswer?> AskAsync(HttpClient http, LedgerEntry entry, CancellationToken cancellationToken)
    {
        var o = options.Value;
        var transactionId = entry.TransactionId;
        var (url, group) = InDoubtRules.QueryTarget(entry, o.CoordinatorUrl);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(o.QueryTimeoutMs);
        var query = group is null ? "" : $"?{CoordinatorGroups.QueryParameter}={Uri.EscapeDataString(group)}";
        using var request = new HttpRequestMessage(HttpMethod.Get, $"{url.TrimEnd('/')}/v1/transactions/{Uri.EscapeDataString(transactionId)}{query}");
        if (!string.IsNullOrEmpty(shared.Value.Secret))
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", shared.Value.Secret);
        }

        try
        {
            using var response = await http.SendAsync(request, timeout.Token);
            if (response.StatusCode == System.Net.HttpStatusCode.NotFound && await IsNotThisGroupAsync(response, timeout.Token))
            {
                // Asked the wrong group (a coordinator moved, a URL behind the wrong balancer): not a decision.
                Log.InDoubtUnreachable(logger, transactionId, $"{url} is not coordinator group '{group}'");
                return DecisionQueryAnswer.NotThisGroup;
            }

            if (!response.IsSuccessStatusCode)
            {
                Log.InDoubtUnreachable(logger, transactionId, $"HTTP {(int)response.StatusCode}");
                return null;
            }

            var answer = await response.Content.ReadFromJsonAsync<DecisionQuery>(JsonSerializerOptions.Web, timeout.Token);
            return StateNames.TryParseDecisionQueryAnswer(answer?.State);
        }
        catch (Exception e) when (e is HttpRequestException or JsonException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            Log.InDoubtUnreachable(logger, transactionId, e.GetType().Name);
            return null;
        }
    }

    /// <summary>A 404 whose problem type ends <c>/not-this-group</c>; anything else (a 404 from a proxy, a bad body) is just an error.</summary>
    private static async Task<bool> IsNotThisGroupAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            var problem = await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken);
            return problem.ValueKind == JsonValueKind.Object
                && problem.TryGetProperty("type", out var type)
                && type.ValueKind == JsonValueKind.String
                && type.GetString()!.EndsWith("/" + CoordinatorGroups.NotThisGroupSuffix, StringComparison.Ordinal);
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
