using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Dapper;
using TwoPhase.Persistence;

namespace TwoPhase.Tests.Transport;

/// <summary>
/// One bad PREPARE fails alone (issue 12, item 4): a malformed or invalid body is that transaction's NO vote with its
/// own reason, batched or single, and the other messages of its batch are answered as if it were not there. Real HTTP
/// to a real participant (storage's stock), written once and run on both stores.
/// </summary>
public abstract class BadMessageTests : IAsyncLifetime
{
    private const int Count = 30;
    private const int Bad = 17;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private Database? _db;
    private RunningHost? _participant;

    protected abstract Task<Database> CreateDatabaseAsync();

    private RunningHost Participant => _participant!;

    public async Task InitializeAsync()
    {
        _db = await CreateDatabaseAsync();
        _participant = await TestHosts.StartStorageAsync(_db);
    }

    public virtual async Task DisposeAsync()
    {
        if (_participant is not null)
        {
            await _participant.DisposeAsync();
        }

        if (_db is not null)
        {
            await _db.DisposeAsync();
        }
    }

    private static JsonObject Lines(long quantity) => new() { ["items"] = new JsonArray(new JsonObject { ["sku"] = "widget", ["quantity"] = quantity }) };

    /// <summary>30 PREPAREs in one batch, the 18th with quantity 0 (storage's rules refuse it): 29 yes, one no with its reason.</summary>
    [Fact]
    public async Task BatchOf30_OneInvalidBody_29VoteYes_TheBadOneVotesNoWithItsReason_HoldsNothing()
    {
        var messages = new JsonArray();
        for (var i = 0; i < Count; i++)
        {
            messages.Add(new JsonObject { ["type"] = "prepare", ["transactionId"] = $"tx-{i}", ["body"] = Lines(i == Bad ? 0 : 1) });
        }

        using var http = Participant.Client();
        using var response = await http.PostAsync("v1/transactions/batch", Json(new JsonObject { ["messages"] = messages })).WaitAsync(Bound);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var results = (await response.Content.ReadFromJsonAsync<JsonObject>())!["results"]!.AsArray();
        Assert.Equal(Count, results.Count);
        for (var i = 0; i < Count; i++)
        {
            Assert.Equal($"tx-{i}", (string?)results[i]!["transactionId"]);
            Assert.Equal(i == Bad ? "no" : "yes", (string?)results[i]!["vote"]);
        }

        var reason = (string?)results[Bad]!["reason"];
        Assert.NotNull(reason);
        Assert.Contains("items[0].quantity", reason, StringComparison.Ordinal);
        // The 29 hold one unit each; the bad one holds nothing and left no ledger row behind (its ABORT tombstones it).
        Assert.Equal(Count - 1, await ScalarAsync("SELECT reserved FROM products WHERE sku = 'widget'"));
        Assert.Equal(Count - 1, await ScalarAsync("SELECT COUNT(*) FROM tp_ledger WHERE state = 'prepared'"));
        Assert.Equal(0, await ScalarAsync($"SELECT COUNT(*) FROM tp_ledger WHERE tx_id = 'tx-{Bad}'"));
    }

    /// <summary>A batch whose one PREPARE body is not an object at all (malformed for a PREPARE): the rest still go through.</summary>
    [Fact]
    public async Task Batch_OnePrepareBodyNotAnObject_OnlyThatOneVotesNo()
    {
        var messages = new JsonArray(
            new JsonObject { ["type"] = "prepare", ["transactionId"] = "tx-good", ["body"] = Lines(2) },
            new JsonObject { ["type"] = "prepare", ["transactionId"] = "tx-bad", ["body"] = "not an object" },
            new JsonObject { ["type"] = "abort", ["transactionId"] = "tx-other" });

        using var http = Participant.Client();
        using var response = await http.PostAsync("v1/transactions/batch", Json(new JsonObject { ["messages"] = messages })).WaitAsync(Bound);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var results = (await response.Content.ReadFromJsonAsync<JsonObject>())!["results"]!.AsArray();
        Assert.Equal("yes", (string?)results[0]!["vote"]);
        Assert.Equal("no", (string?)results[1]!["vote"]);
        Assert.Contains("body", (string?)results[1]!["reason"], StringComparison.Ordinal);
        Assert.Equal("aborted", (string?)results[2]!["state"]);
        Assert.Equal(2, await ScalarAsync("SELECT reserved FROM products WHERE sku = 'widget'"));
    }

    /// <summary>The single endpoint answers an invalid body with a 400 problem whose detail names the field, and holds nothing.</summary>
    [Fact]
    public async Task SinglePrepare_InvalidBody_ProblemDetailNamesTheField_NothingWritten()
    {
        using var http = Participant.Client();
        using var response = await http.PostAsync("v1/transactions/tx-1/prepare", Json(Lines(0))).WaitAsync(Bound);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.Content.ReadFromJsonAsync<JsonObject>();
        Assert.Contains("items[0].quantity", (string?)problem!["detail"], StringComparison.Ordinal);
        Assert.Equal(0, await ScalarAsync("SELECT reserved FROM products WHERE sku = 'widget'"));
        Assert.Equal(0, await ScalarAsync("SELECT COUNT(*) FROM tp_ledger"));
    }

    /// <summary>
    /// Without rules any JSON object is a valid PREPARE (IPrepareRules is optional), and the resource manager judges the
    /// payload: one it cannot read (InvalidPayloadException) is a 422 alone, and that message's own NO in a batch, while
    /// the PREPARE beside it in the same group commit reserves. Nothing is written for the bad one.
    /// </summary>
    [Fact]
    public async Task NoRules_ResourceManagerRefusesPayload_422Alone_OwnNoInBatch_OthersReserve()
    {
        await using var bare = await TestHosts.StartStorageAsync(_db!, rules: false);
        using var http = bare.Client();

        using var single = await http.PostAsync("v1/transactions/tx-single/prepare", Json(new JsonObject { ["whatever"] = 1 })).WaitAsync(Bound);
        var messages = new JsonArray(
            new JsonObject { ["type"] = "prepare", ["transactionId"] = "tx-good", ["body"] = Lines(3) },
            new JsonObject { ["type"] = "prepare", ["transactionId"] = "tx-bad", ["body"] = new JsonObject { ["lines"] = 1 } });
        using var batch = await http.PostAsync("v1/transactions/batch", Json(new JsonObject { ["messages"] = messages })).WaitAsync(Bound);

        Assert.Equal(HttpStatusCode.UnprocessableEntity, single.StatusCode);
        Assert.Equal("items: an array of {sku, quantity} is required", (string?)(await single.Content.ReadFromJsonAsync<JsonObject>())!["detail"]);
        Assert.Equal(HttpStatusCode.OK, batch.StatusCode);
        var results = (await batch.Content.ReadFromJsonAsync<JsonObject>())!["results"]!.AsArray();
        Assert.Equal("yes", (string?)results[0]!["vote"]);
        Assert.Equal("no", (string?)results[1]!["vote"]);
        Assert.Equal(422, (int?)results[1]!["status"]);
        Assert.Equal(3, await ScalarAsync("SELECT reserved FROM products WHERE sku = 'widget'"));
        Assert.Equal(1, await ScalarAsync("SELECT COUNT(*) FROM tp_ledger"));
    }

    /// <summary>Storage gets only its own payload now, so it refuses unknown fields like every other body (docs/security.md).</summary>
    [Fact]
    public async Task StoragePrepare_UnknownField_RefusedNamingIt_OrderIdAccepted()
    {
        using var http = Participant.Client();
        var merged = Lines(1);
        merged["payment"] = new JsonObject { ["amount"] = 5 };
        var inLine = Lines(1);
        inLine["items"]![0]!["colour"] = "red";
        var own = Lines(1);
        own["orderId"] = "o-1";

        using var refused = await http.PostAsync("v1/transactions/tx-1/prepare", Json(merged)).WaitAsync(Bound);
        using var refusedInLine = await http.PostAsync("v1/transactions/tx-2/prepare", Json(inLine)).WaitAsync(Bound);
        using var accepted = await http.PostAsync("v1/transactions/tx-3/prepare", Json(own)).WaitAsync(Bound);

        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Equal("payment: unknown field", (string?)(await refused.Content.ReadFromJsonAsync<JsonObject>())!["detail"]);
        Assert.Equal("items[0].colour: unknown field", (string?)(await refusedInLine.Content.ReadFromJsonAsync<JsonObject>())!["detail"]);
        Assert.Equal("yes", (string?)(await accepted.Content.ReadFromJsonAsync<JsonObject>())!["vote"]);
        Assert.Equal(1, await ScalarAsync("SELECT reserved FROM products WHERE sku = 'widget'"));
    }

    private static StringContent Json(JsonNode node) => new(node.ToJsonString(), Encoding.UTF8, "application/json");

    private Task<long> ScalarAsync(string sql) =>
        _db!.ReadAsync(c => c.ExecuteScalarAsync<long>(new CommandDefinition(sql)), CancellationToken.None);
}

public sealed class SqliteBadMessageTests : BadMessageTests
{
    private readonly SqliteTarget _target = new();

    protected override Task<Database> CreateDatabaseAsync() => _target.CreateDatabaseAsync();

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await _target.DisposeAsync();
    }
}

public sealed class PostgresBadMessageTests(PostgresServerFixture server) : BadMessageTests, IClassFixture<PostgresServerFixture>
{
    protected override Task<Database> CreateDatabaseAsync() => server.CreateDatabaseAsync();
}
