using System.Text.Json;
using TwoPhase.EndToEnd.Tests.Harness;
using Xunit;
using Xunit.Abstractions;

namespace TwoPhase.EndToEnd.Tests;

/// <summary>
/// <c>POST /v1/transactions/batch</c>, the participants' endpoint for many protocol messages in one request (the
/// coordinator uses it by default): each message answered as its own endpoint would, bad batches refused whole.
/// </summary>
public sealed class BatchTests(ITestOutputHelper output)
{
    /// <summary>
    /// One batch carrying a new PREPARE, a repeated COMMIT, a contradicting ABORT, an ABORT that precedes its PREPARE
    /// and a COMMIT never prepared: the answers come back in order, each what the single-message endpoint gives.
    /// The stray PREPARE is then resolved by presumed abort.
    /// </summary>
    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.Postgres)]
    public async Task MixedBatch_EachMessageAnsweredAsAlone_InOrder(Store store)
    {
        await using var system = await TestSystem.StartAsync(store, output);
        await system.SeedAsync(new Dictionary<string, long> { ["widget"] = 5 }, couriers: 1);
        var committed = Expect.Order(await system.Api.PlaceOrderAsync("widget", 1), "committed");
        var id = committed.TransactionId;

        var (status, body) = await system.Api.SendBatchAsync(Service.Storage, $$$"""
            {"messages":[
              {"type":"prepare","transactionId":"stray-1","body":{"orderId":"stray-1","items":[{"sku":"widget","quantity":2}]}},
              {"type":"commit","transactionId":"{{{id}}}"},
              {"type":"abort","transactionId":"{{{id}}}"},
              {"type":"abort","transactionId":"early-1"},
              {"type":"commit","transactionId":"ghost-1"}
            ]}
            """);

        Assert.True(status == 200, body);
        var results = JsonDocument.Parse(body).RootElement.GetProperty("results").EnumerateArray()
            .Select(r => (Id: r.GetProperty("transactionId").GetString(), Status: r.GetProperty("status").GetInt32(), Vote: Text(r, "vote"), State: Text(r, "state")))
            .ToList();
        Assert.Equal(
            [("stray-1", 200, "yes", null), (id, 200, null, "committed"), (id, 409, null, null), ("early-1", 200, null, "aborted"), ("ghost-1", 409, null, null)],
            results);

        var after = await Invariants.AssertConvergedAsync(system);
        Assert.Equal("aborted", after.StorageLedger.Single(r => r.TransactionId == "stray-1").State);
        Assert.Equal("aborted", after.StorageLedger.Single(r => r.TransactionId == "early-1").State);
        Assert.DoesNotContain(after.StorageLedger, r => r.TransactionId == "ghost-1");
        Assert.Equal((4, 0, 1), (after.Products.Single().OnHand, after.Products.Single().Reserved, after.Products.Single().Sold));
    }

    private static readonly string[] BadBatches =
    [
        "{}",
        """{"messages":[]}""",
        """{"messages":null}""",
        """{"messages":[null]}""",
        """{"messages":[{"type":"commit","transactionId":"b-1","body":{"x":1}}]}""",
        """{"messages":[{"type":"vote","transactionId":"b-1"}]}""",
        """{"messages":[{"transactionId":"b-1"}]}""",
        """{"messages":[{"type":"abort","transactionId":"not an id!"}]}""",
        """{"messages":[{"type":"abort","transactionId":"b-1","traceparent":"nonsense"}]}""",
        """{"messages":[{"type":"abort","transactionId":"b-1","extra":true}]}""",
        """{"messages":[{"type":"abort","transactionId":"b-1"}],"more":1}""",
        """{"messages":[{"type":"abort","transactionId":"b-1"},""",
        // A good message first, then a bad one: the whole batch is refused, the good one not applied.
        """{"messages":[{"type":"abort","transactionId":"b-1"},{"type":"abort","transactionId":""}]}""",
        "{\"messages\":[" + string.Join(",", Enumerable.Range(0, 129).Select(i => $$"""{"type":"abort","transactionId":"b-{{i}}"}""")) + "]}",
    ];

    /// <summary>
    /// A well-formed batch whose PREPARE carries a body the participant refuses: that message alone is refused (its own
    /// 400 and NO with the reason), the batch answers 200, and nothing is written for it (docs/protocol.md).
    /// </summary>
    private static readonly string[] BadPrepareBodies =
    [
        """{"messages":[{"type":"prepare","transactionId":"b-1"}]}""",
        """{"messages":[{"type":"prepare","transactionId":"b-1","body":[1]}]}""",
        """{"messages":[{"type":"prepare","transactionId":"b-1","body":{"items":[{"sku":"widget","quantity":0}]}}]}""",
    ];

    /// <summary>Every malformed batch is a 400 problem detail, an unauthenticated one a 401, and none of them changes anything.</summary>
    [Fact]
    public async Task BadBatches_RefusedWhole_BadPrepareBodiesRefusedAlone_NothingApplied()
    {
        await using var system = await TestSystem.StartAsync(Store.Sqlite, output);
        await system.SeedAsync(new Dictionary<string, long> { ["widget"] = 5 }, couriers: 1);

        foreach (var json in BadBatches)
        {
            var (status, body) = await system.Api.SendBatchAsync(Service.Storage, json);
            Assert.True(status == 400, $"{json[..Math.Min(json.Length, 120)]} answered {status}: {body}");
            Assert.Equal(400, JsonDocument.Parse(body).RootElement.GetProperty("status").GetInt32());
        }

        foreach (var json in BadPrepareBodies)
        {
            var (status, body) = await system.Api.SendBatchAsync(Service.Storage, json);
            Assert.True(status == 200, $"{json} answered {status}: {body}");
            var result = Assert.Single(JsonDocument.Parse(body).RootElement.GetProperty("results").EnumerateArray());
            Assert.Equal(400, result.GetProperty("status").GetInt32());
            Assert.Equal("no", Text(result, "vote"));
            Assert.False(string.IsNullOrEmpty(Text(result, "reason")), body);
        }

        var (unauthenticated, _) = await system.Api.SendBatchAsync(Service.Storage, """{"messages":[{"type":"abort","transactionId":"b-9"}]}""", authenticated: false);
        Assert.Equal(401, unauthenticated);

        Assert.Empty(await system.Api.LedgerAsync(Service.Storage));
        var product = Assert.Single(await system.Api.ProductsAsync());
        Assert.Equal((5, 0, 0), (product.OnHand, product.Reserved, product.Sold));
    }

    private static string? Text(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
