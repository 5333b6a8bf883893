using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using TwoPhase.Protocol;

namespace TwoPhase.AspNetCore;

/// <summary>
/// PREPARE, COMMIT and ABORT over HTTP/JSON, in the v1 dialect or the old one. A v1 PREPARE names the coordinator group
/// (<paramref name="identity"/>) in its headers, so the participant knows whom to ask when in doubt; the old dialect has no
/// place for it.
/// </summary>
internal sealed class HttpParticipantTransport(HttpClient http, IOptions<TwoPhaseOptions> options, CoordinatorIdentity? identity = null) : IParticipantTransport
{
    public const string ClientName = "twophase-participants";

    private readonly CoordinatorIdentity _identity = identity ?? CoordinatorIdentity.Unnamed;

    public async Task<Vote> PrepareAsync(ParticipantRef participant, string transactionId, string payload, CancellationToken cancellationToken)
    {
        using var request = participant.Legacy
            ? Post(participant, LegacyDialect.PreparePath, LegacyDialect.Body(transactionId, payload))
            : Post(participant, $"v1/transactions/{Uri.EscapeDataString(transactionId)}/prepare", payload);
        if (!participant.Legacy)
        {
            request.Headers.TryAddWithoutValidation(CoordinatorGroups.GroupHeader, _identity.Group);
            if (_identity.Url is { } url)
            {
                request.Headers.TryAddWithoutValidation(CoordinatorGroups.UrlHeader, url);
            }
        }

        try
        {
            using var response = await http.SendAsync(request, cancellationToken);
            if (!participant.Legacy && IsRefusedBody((int)response.StatusCode))
            {
                // The participant refused this PREPARE's body (malformed, or invalid by its rules): this transaction's NO,
                // with the problem's detail as the reason its client sees.
                return new Vote(participant.Name, VoteKind.No, await RefusalAsync(response, cancellationToken));
            }

            if (!response.IsSuccessStatusCode)
            {
                return new Vote(participant.Name, VoteKind.None, $"prepare answered HTTP {(int)response.StatusCode}");
            }

            var body = await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken);
            return VoteOf(participant, body);
        }
        catch (HttpRequestException e)
        {
            return new Vote(participant.Name, VoteKind.None, $"unreachable: {e.HttpRequestError}");
        }
        catch (JsonException)
        {
            return new Vote(participant.Name, VoteKind.None, "prepare answer was not JSON");
        }
    }

    /// <summary>The statuses a participant refuses a PREPARE's body with: 400 (malformed or against its rules) and 422 (its resource manager's verdict).</summary>
    internal static bool IsRefusedBody(int status) => status is StatusCodes.Status400BadRequest or StatusCodes.Status422UnprocessableEntity;

    /// <summary>Longest reason taken from a participant's answer: it ends up in the decision log and the client's answer.</summary>
    internal const int MaxReasonLength = 500;

    /// <summary>A refused PREPARE's reason: the problem detail's <c>detail</c>, bounded; the status when there is none.</summary>
    private static async Task<string> RefusalAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var fallback = $"prepare refused with HTTP {(int)response.StatusCode}";
        try
        {
            var problem = await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken);
            return problem.ValueKind == JsonValueKind.Object && problem.TryGetProperty("detail", out var detail) && detail.ValueKind == JsonValueKind.String
                ? Bounded(detail.GetString()!)
                : fallback;
        }
        catch (JsonException)
        {
            return fallback;
        }
    }

    internal static string Bounded(string reason) => reason.Length <= MaxReasonLength ? reason : reason[..MaxReasonLength];

    /// <summary>
    /// A participant's answer to PREPARE, whatever it sent: anything but an object whose <c>vote</c> is the string
    /// <c>yes</c> or <c>no</c> (a number, null, an array, a bare string) is no vote, with the reason, never an
    /// exception: a participant's bad answer must abort the order, not fail the coordinator's request.
    /// </summary>
    internal static Vote VoteOf(ParticipantRef participant, JsonElement body)
    {
        if (body.ValueKind != JsonValueKind.Object)
        {
            return new Vote(participant.Name, VoteKind.None, $"prepare answer was JSON {body.ValueKind.ToString().ToLowerInvariant()}, not an object");
        }

        if (!body.TryGetProperty("vote", out var vote))
        {
            return new Vote(participant.Name, VoteKind.None, "prepare answer had no vote");
        }

        var reason = body.TryGetProperty("reason", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
        return (vote.ValueKind == JsonValueKind.String ? vote.GetString() : null) switch
        {
            "yes" => new Vote(participant.Name, VoteKind.Yes),
            "no" => new Vote(participant.Name, VoteKind.No, reason ?? "refused"),
            _ => new Vote(participant.Name, VoteKind.None, vote.ValueKind == JsonValueKind.String
                ? "prepare answer's vote was neither yes nor no"
                : $"prepare answer's vote was JSON {vote.ValueKind.ToString().ToLowerInvariant()}, not \"yes\" or \"no\""),
        };
    }

    public async Task<Ack> SendDecisionAsync(ParticipantRef participant, string transactionId, Decision decision, string payload, CancellationToken cancellationToken)
    {
        using var request = participant.Legacy
            ? Post(participant, LegacyDialect.DecisionPath(decision), LegacyDialect.Body(transactionId, payload))
            : Post(participant, $"v1/transactions/{Uri.EscapeDataString(transactionId)}/{(decision == Decision.Commit ? "commit" : "abort")}", null);
        try
        {
            using var response = await http.SendAsync(request, cancellationToken);
            return response.StatusCode switch
            {
                _ when response.IsSuccessStatusCode => new Ack(participant.Name, AckKind.Acknowledged),
                HttpStatusCode.Conflict => new Ack(participant.Name, AckKind.Conflict, await response.Content.ReadAsStringAsync(cancellationToken)),
                _ => new Ack(participant.Name, AckKind.Failed, $"HTTP {(int)response.StatusCode}"),
            };
        }
        catch (HttpRequestException e)
        {
            return new Ack(participant.Name, AckKind.Failed, $"unreachable: {e.HttpRequestError}");
        }
    }

    private HttpRequestMessage Post(ParticipantRef participant, string path, string? json)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(participant.Url, path))
        {
            Content = new StringContent(json ?? "{}", Encoding.UTF8, "application/json"),
        };
        if (!string.IsNullOrEmpty(options.Value.Secret))
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", options.Value.Secret);
        }

        return request;
    }
}
