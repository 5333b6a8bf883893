using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace TwoPhase.Fuzz.Tests.Harness;

/// <summary>
/// The three services as real processes (the harness's <see cref="ReferenceSystem"/>) on free ports, each with its own
/// SQLite file in a temporary folder and its own seed data, a shared secret, and the old protocol closed to unauthenticated callers.
/// </summary>
public sealed class Services : IAsyncLifetime
{
    private ReferenceSystem? _system;

    public string Secret { get; } = ReferenceSystem.NewSecret();

    public Dictionary<Svc, Uri> Urls { get; } = [];

    /// <summary>Sends nothing by default: each request says what credentials it carries.</summary>
    public HttpClient Http { get; } = new(new SocketsHttpHandler { MaxConnectionsPerServer = 64, PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30) })
    {
        Timeout = TimeSpan.FromSeconds(60),
    };

    public async Task InitializeAsync()
    {
        _system = await ReferenceSystem.StartAsync(new SystemOptions
        {
            Secret = Secret,
            // The setup order takes the services' own seed: a widget and courier c-001.
            SeedEnabled = true,
            LogLevel = "Warning",
            // Loopback would leave the old protocol open by default; the operator closes it here, so it must need the secret.
            ExtraEnvironment = new Dictionary<string, string> { ["TwoPhase__Participant__AllowUnauthenticatedLegacy"] = "false" },
        });
        foreach (var svc in ServiceKinds.All)
        {
            Urls[svc] = _system.UrlOf(svc);
        }
    }

    public async Task DisposeAsync()
    {
        if (_system is not null)
        {
            await _system.DisposeAsync();
        }

        Http.Dispose();
    }

    /// <summary>The last lines the services wrote, for a failure message.</summary>
    public string RecentLog() => _system?.Tails(20) ?? "";

    public HttpRequestMessage Request(Svc svc, HttpMethod method, string path, object? json = null, bool auth = true)
    {
        var request = new HttpRequestMessage(method, new Uri(Urls[svc], path.TrimStart('/')));
        if (json is not null)
        {
            request.Content = new StringContent(JsonSerializer.Serialize(json, JsonSerializerOptions.Web), Encoding.UTF8, "application/json");
        }

        if (auth)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Secret);
        }

        return request;
    }

    public async Task<(HttpStatusCode Status, JsonNode? Body)> SendAsync(HttpRequestMessage request)
    {
        using (request)
        {
            using var response = await Http.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            return (response.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text));
        }
    }

    public async Task<JsonNode> GetAsync(Svc svc, string path)
    {
        var (status, body) = await SendAsync(Request(svc, HttpMethod.Get, path));
        Assert.True(status == HttpStatusCode.OK, $"GET {svc} {path} answered {(int)status}: {body?.ToJsonString()}");
        return body!;
    }

    /// <summary>Every page of a listing that pages by <c>after</c>, keyed by <paramref name="idField"/>.</summary>
    public async Task<JsonArray> GetAllAsync(Svc svc, string path, string idField)
    {
        var all = new JsonArray();
        string? after = null;
        while (true)
        {
            var page = (await GetAsync(svc, $"{path}?limit=1000{(after is null ? "" : $"&after={after}")}")).AsArray();
            foreach (var item in page)
            {
                all.Add(item!.DeepClone());
            }

            if (page.Count < 1000)
            {
                return all;
            }

            after = page[^1]![idField]!.GetValue<string>();
        }
    }
}

[CollectionDefinition(Name)]
public sealed class ServicesCollection : ICollectionFixture<Services>
{
    public const string Name = "services";
}
