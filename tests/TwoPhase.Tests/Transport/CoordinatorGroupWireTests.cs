using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Dapper;
using TwoPhase.Persistence;

namespace TwoPhase.Tests.Transport;

/// <summary>
/// The coordinator group on the wire (docs/protocol.md, "Coordinator groups"): a participant checks the group and URL a
/// PREPARE names (headers, or the batch envelope), refuses a bad one with 400 and writes nothing, and keeps a good one in
/// its ledger row, also in a ledger created before the columns existed. Real HTTP to a real participant (storage), written
/// once and run on both stores.
/// </summary>
public abstract class CoordinatorGroupWireTests : IAsyncLifetime
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private Database? _db;
    private RunningHost? _participant;

    protected abstract Task<Database> CreateDatabaseAsync();

    private RunningHost Participant => _participant!;

    public async Task InitializeAsync()
    {
        _db = await CreateDatabaseAsync();
        // The ledger as it was before coordinator groups: the participant's start must add the columns.
        await _db.ExecuteScriptAsync(
            """
            CREATE TABLE IF NOT EXISTS tp_ledger (
                tx_id TEXT PRIMARY KEY, state TEXT NOT NULL, reason TEXT NULL, holding TEXT NULL, created_ms BIGINT NOT NULL,
                updated_ms BIGINT NOT NULL, checks INTEGER NOT NULL DEFAULT 0, next_check_ms BIGINT NULL);
            INSERT INTO tp_ledger (tx_id, state, reason, holding, created_ms, updated_ms) VALUES ('tx-old', 'aborted', 'abort arrived before prepare', NULL, 1, 1);
            """,
            CancellationToken.None);
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

    public static TheoryData<string?, string?, string> BadIdentities => new()
    {
        { "-starts-with-dash", null, "TwoPhase-Coordinator-Group" },
        { "has space", null, "TwoPhase-Coordinator-Group" },
        { new string('g', 65), null, "TwoPhase-Coordinator-Group" },
        { "b", "ftp://127.0.0.1:9000", "TwoPhase-Coordinator-Url" },
        { "b", "/relative/path", "TwoPhase-Coordinator-Url" },
        { "b", "http://user:pw@127.0.0.1:9000", "TwoPhase-Coordinator-Url" },
        { "b", "http://127.0.0.1:9000/" + new string('x', 2048), "TwoPhase-Coordinator-Url" },
        { null, "http://127.0.0.1:9000", "TwoPhase-Coordinator-Group" },
    };

    [Theory]
    [MemberData(nameof(BadIdentities))]
    public async Task SinglePrepare_BadCoordinatorIdentity_400NamingTheHeader_NothingWritten(string? group, string? url, string field)
    {
        using var http = Participant.Client();
        using var request = Prepare("tx-bad", group, url);

        using var response = await http.SendAsync(request).WaitAsync(Bound);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.StartsWith(field + ":", (string?)(await response.Content.ReadFromJsonAsync<JsonObject>())!["detail"], StringComparison.Ordinal);
        Assert.Equal(0, await ScalarAsync("SELECT COUNT(*) FROM tp_ledger WHERE tx_id = 'tx-bad'"));
        Assert.Equal(0, await ScalarAsync("SELECT reserved FROM products WHERE sku = 'widget'"));
    }

    [Fact]
    public async Task SinglePrepare_GroupHeaderTwice_400_NothingWritten()
    {
        using var http = Participant.Client();
        using var request = Prepare("tx-twice", "a", null);
        request.Headers.TryAddWithoutValidation("TwoPhase-Coordinator-Group", "b");

        using var response = await http.SendAsync(request).WaitAsync(Bound);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(0, await ScalarAsync("SELECT COUNT(*) FROM tp_ledger WHERE tx_id = 'tx-twice'"));
    }

    [Fact]
    public async Task SinglePrepare_NamedGroup_KeptInTheRow_ARepeatChangesNothing()
    {
        using var http = Participant.Client();
        using (var first = await http.SendAsync(Prepare("tx-1", "orders-b", "https://orders-b.example:8443/")).WaitAsync(Bound))
        {
            Assert.Equal("yes", (string?)(await first.Content.ReadFromJsonAsync<JsonObject>())!["vote"]);
        }

        // A repeat naming another group answers from the row and leaves it as the first PREPARE wrote it.
        using (var repeat = await http.SendAsync(Prepare("tx-1", "other", null)).WaitAsync(Bound))
        {
            Assert.Equal("yes", (string?)(await repeat.Content.ReadFromJsonAsync<JsonObject>())!["vote"]);
        }

        var row = await http.GetFromJsonAsync<JsonObject>("v1/transactions/tx-1").WaitAsync(Bound);
        Assert.Equal("orders-b", (string?)row!["coordinatorGroup"]);
        Assert.Equal("https://orders-b.example:8443/", (string?)row["coordinatorUrl"]);
        Assert.Equal(1, await ScalarAsync("SELECT reserved FROM products WHERE sku = 'widget'"));
    }

    [Fact]
    public async Task SinglePrepare_NoGroup_RowAsBefore_AndTheOldRowsStillRead()
    {
        using var http = Participant.Client();
        using (var response = await http.SendAsync(Prepare("tx-plain", null, null)).WaitAsync(Bound))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var row = await http.GetFromJsonAsync<JsonObject>("v1/transactions/tx-plain").WaitAsync(Bound);
        Assert.Null((string?)row!["coordinatorGroup"]);
        Assert.Null((string?)row["coordinatorUrl"]);
        var old = await http.GetFromJsonAsync<JsonObject>("v1/transactions/tx-old").WaitAsync(Bound);
        Assert.Equal("aborted", (string?)old!["state"]);
        Assert.Null((string?)old["coordinatorGroup"]);
    }

    [Theory]
    [InlineData("-bad", null, "coordinatorGroup")]
    [InlineData("b", "mailto:someone@example.org", "coordinatorUrl")]
    [InlineData(null, "http://127.0.0.1:9000", "coordinatorGroup")]
    public async Task Batch_BadCoordinatorIdentity_400_NothingApplied(string? group, string? url, string field)
    {
        using var http = Participant.Client();
        using var response = await http.PostAsync("v1/transactions/batch", Batch(group, url, "tx-b1", "tx-b2")).WaitAsync(Bound);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.StartsWith(field + ":", (string?)(await response.Content.ReadFromJsonAsync<JsonObject>())!["detail"], StringComparison.Ordinal);
        Assert.Equal(0, await ScalarAsync("SELECT COUNT(*) FROM tp_ledger WHERE tx_id IN ('tx-b1', 'tx-b2')"));
        Assert.Equal(0, await ScalarAsync("SELECT reserved FROM products WHERE sku = 'widget'"));
    }

    [Fact]
    public async Task Batch_EnvelopeGroup_KeptInEveryPreparedRow()
    {
        using var http = Participant.Client();
        using (var response = await http.PostAsync("v1/transactions/batch", Batch("b", "http://127.0.0.1:9000", "tx-b1", "tx-b2")).WaitAsync(Bound))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Equal(2, await ScalarAsync("SELECT COUNT(*) FROM tp_ledger WHERE coordinator_group = 'b' AND coordinator_url = 'http://127.0.0.1:9000' AND state = 'prepared'"));
    }

    private static HttpRequestMessage Prepare(string id, string? group, string? url)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"v1/transactions/{id}/prepare")
        {
            Content = new StringContent("""{"items":[{"sku":"widget","quantity":1}]}""", Encoding.UTF8, "application/json"),
        };
        if (group is not null)
        {
            request.Headers.TryAddWithoutValidation("TwoPhase-Coordinator-Group", group);
        }

        if (url is not null)
        {
            request.Headers.TryAddWithoutValidation("TwoPhase-Coordinator-Url", url);
        }

        return request;
    }

    private static StringContent Batch(string? group, string? url, params string[] ids)
    {
        var messages = new JsonArray();
        foreach (var id in ids)
        {
            messages.Add(new JsonObject
            {
                ["type"] = "prepare",
                ["transactionId"] = id,
                ["body"] = new JsonObject { ["items"] = new JsonArray(new JsonObject { ["sku"] = "widget", ["quantity"] = 1 }) },
            });
        }

        var envelope = new JsonObject { ["messages"] = messages };
        if (group is not null)
        {
            envelope["coordinatorGroup"] = group;
        }

        if (url is not null)
        {
            envelope["coordinatorUrl"] = url;
        }

        return new StringContent(envelope.ToJsonString(), Encoding.UTF8, "application/json");
    }

    private Task<long> ScalarAsync(string sql) =>
        _db!.ReadAsync(c => c.ExecuteScalarAsync<long>(new CommandDefinition(sql)), CancellationToken.None);
}

public sealed class SqliteCoordinatorGroupWireTests : CoordinatorGroupWireTests
{
    private readonly SqliteTarget _target = new();

    protected override Task<Database> CreateDatabaseAsync() => _target.CreateDatabaseAsync();

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await _target.DisposeAsync();
    }
}

public sealed class PostgresCoordinatorGroupWireTests(PostgresServerFixture server) : CoordinatorGroupWireTests, IClassFixture<PostgresServerFixture>
{
    protected override Task<Database> CreateDatabaseAsync() => server.CreateDatabaseAsync();
}

/// <summary>
/// The decision query's group check on a real coordinator host (group <c>default</c>): an unknown id asked about as another
/// group's is a 404 not-this-group naming both, as its own group's (or without a group) presumed abort; a bad group is 400.
/// </summary>
public sealed class CoordinatorGroupQueryTests : IAsyncLifetime
{
    private readonly SqliteTarget _target = new();
    private Database? _db;
    private RunningHost? _coordinator;

    public async Task InitializeAsync()
    {
        _db = await _target.CreateDatabaseAsync();
        _coordinator = await TestHosts.StartCoordinatorAsync(_db, ("storage", new Uri("http://127.0.0.1:9/")));
    }

    public async Task DisposeAsync()
    {
        if (_coordinator is not null)
        {
            await _coordinator.DisposeAsync();
        }

        if (_db is not null)
        {
            await _db.DisposeAsync();
        }

        await _target.DisposeAsync();
    }

    [Fact]
    public async Task UnknownId_AskedAsAnotherGroups_404NotThisGroup_NamingBoth()
    {
        using var http = _coordinator!.Client();
        using var response = await http.GetAsync("v1/transactions/tx-elsewhere?group=orders-b");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var problem = await response.Content.ReadFromJsonAsync<JsonObject>();
        Assert.EndsWith("/not-this-group", (string?)problem!["type"], StringComparison.Ordinal);
        Assert.Contains("'orders-b'", (string?)problem["detail"], StringComparison.Ordinal);
        Assert.Contains("'default'", (string?)problem["detail"], StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("v1/transactions/tx-unknown")]
    [InlineData("v1/transactions/tx-unknown?group=default")]
    public async Task UnknownId_AskedAsThisGroupsOrWithoutGroup_PresumedAborted(string path)
    {
        using var http = _coordinator!.Client();
        var answer = await http.GetFromJsonAsync<JsonObject>(path);

        Assert.Equal("aborted", (string?)answer!["state"]);
    }

    [Theory]
    [InlineData("-bad")]
    [InlineData("a%20b")]
    public async Task BadGroupParameter_400(string group)
    {
        using var http = _coordinator!.Client();
        using var response = await http.GetAsync($"v1/transactions/tx-1?group={group}");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }
}
