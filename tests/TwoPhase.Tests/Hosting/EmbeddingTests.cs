using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TwoPhase.AspNetCore;
using TwoPhase.Persistence;

namespace TwoPhase.Tests.Hosting;

/// <summary>
/// A participant embedded in a host of its own, beside endpoints that are none of TwoPhase's business, on a real
/// Kestrel on 127.0.0.1: TwoPhase's limits, secret, problem details and JSON apply to its route groups and nowhere else.
/// </summary>
public sealed class EmbeddingTests : IAsyncLifetime
{
    private const string Secret = "embedding-test-secret";
    private const int MiB = 1024 * 1024;
    private readonly string _root = Path.Combine(Path.GetTempPath(), "twophase-embedding-" + Guid.NewGuid().ToString("N"));
    private WebApplication? _app;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_root);
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ContentRootPath = _root, EnvironmentName = "Production" });
        // Only this host's settings: not the test folder's appsettings.json, not the shell's variables.
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["TwoPhase:Secret"] = Secret,
            ["TwoPhase:Database:SqliteFile"] = "embedded.db",
            // Never asked in these tests (nothing stays prepared long enough), but a participant must be told.
            ["TwoPhase:Participant:CoordinatorUrl"] = "http://127.0.0.1:9",
        });
        builder.Logging.ClearProviders();
        // The host's own choices, which TwoPhase must leave alone: where it listens and its JSON shape.
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower);
        builder.AddTwoPhaseParticipant<Holdings, AnyObject>();

        var app = builder.Build();
        app.MapTwoPhaseParticipant();
        app.MapPost("/upload", async (HttpRequest request, CancellationToken ct) =>
        {
            var buffer = new byte[64 * 1024];
            long received = 0;
            for (int read; (read = await request.Body.ReadAsync(buffer, ct)) > 0;)
            {
                received += read;
            }

            return TypedResults.Ok(new UploadReceipt(received, "host"));
        });
        app.MapGet("/host/fails", IResult () => throw new InvalidOperationException("the host's own bug"));
        // No InitializeTwoPhaseAsync: the hosted service registered by AddTwoPhase creates the schema before the server listens.
        await app.StartAsync();
        _app = app;
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        _http = new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromSeconds(30) };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public async Task HostUploadOfOneMebibyte_IsNotCutAtTwoPhasesLimit_AndKeepsTheHostsJson()
    {
        using var response = await _http.PostAsync(new Uri("/upload", UriKind.Relative), new ByteArrayContent(new byte[MiB]));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("""{"bytes_received":1048576,"served_by":"host"}""", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task PrepareInTheHost_VotesYes_InTheLibrarysJson_AndNeedsTheSecret()
    {
        var id = "emb-" + Guid.NewGuid().ToString("N")[..8];

        using var anonymous = await PrepareAsync(id, """{"amount":5}""", secret: null);
        using var prepared = await PrepareAsync(id, """{"amount":5}""", Secret);

        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Equal("application/problem+json", anonymous.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.OK, prepared.StatusCode);
        // The wire shape is TwoPhase's (camelCase), whatever naming policy the host chose for its own endpoints.
        using var answer = JsonDocument.Parse(await prepared.Content.ReadAsStringAsync());
        Assert.Equal(id, answer.RootElement.GetProperty("transactionId").GetString());
        Assert.Equal("yes", answer.RootElement.GetProperty("vote").GetString());
    }

    [Fact]
    public async Task PrepareOverTwoPhasesLimit_Gets413ProblemDetails_AndChangesNothing()
    {
        var id = "emb-" + Guid.NewGuid().ToString("N")[..8];
        var body = $$"""{"amount":5,"note":"{{new string('x', 65 * 1024)}}"}""";

        using var response = await PrepareAsync(id, body, Secret);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(413, problem.RootElement.GetProperty("status").GetInt32());
        using var row = await SendAsync(HttpMethod.Get, $"/v1/transactions/{id}", null, Secret);
        Assert.Equal(HttpStatusCode.NotFound, row.StatusCode);
    }

    [Fact]
    public async Task ExceptionInTheHostsEndpoint_IsNotTurnedIntoTwoPhasesProblemDetails()
    {
        using var response = await _http.GetAsync(new Uri("/host/fails", UriKind.Relative));

        // The host has no exception handler of its own, so Kestrel's bare 500 is what it chose; TwoPhase adds none.
        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.NotEqual("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task RelativeSqliteFile_ResolvesAgainstTheContentRoot()
    {
        var database = _app!.Services.GetRequiredService<Database>();

        Assert.Equal($"sqlite {Path.Combine(_root, "embedded.db")}", database.Describe());
        Assert.True(File.Exists(Path.Combine(_root, "embedded.db")));
    }

    private Task<HttpResponseMessage> PrepareAsync(string id, string body, string? secret) =>
        SendAsync(HttpMethod.Post, $"/v1/transactions/{id}/prepare", body, secret);

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string? body, string? secret)
    {
        using var request = new HttpRequestMessage(method, new Uri(path, UriKind.Relative));
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        if (secret is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", secret);
        }

        return await _http.SendAsync(request);
    }

    private sealed record UploadReceipt(long BytesReceived, string ServedBy);

    /// <summary>A resource manager of the test's own: it holds whatever it is asked for, in no table.</summary>
    private sealed class Holdings : IResourceManager
    {
        public Task<Reservation> ReserveAsync(LocalTransaction tx, string transactionId, string payload, CancellationToken cancellationToken) =>
            Task.FromResult(Reservation.Held(payload));

        public Task CommitAsync(LocalTransaction tx, string transactionId, string? holding, CancellationToken cancellationToken) => Task.CompletedTask;

        public Task ReleaseAsync(LocalTransaction tx, string transactionId, string? holding, CancellationToken cancellationToken) => Task.CompletedTask;

        public string Schema(Dialect dialect) => "";
    }

    /// <summary>Any JSON object is a valid PREPARE body here.</summary>
    private sealed class AnyObject : IPrepareRules
    {
        public (string Field, string Message)? Validate(JsonElement body) => null;

        public string FromLegacy(string transactionId, JsonElement orderId) => "{}";
    }
}
