using System.Net;
using CsCheck;
using TwoPhase.Fuzz.Tests.Harness;
using Xunit.Abstractions;

namespace TwoPhase.Fuzz.Tests;

/// <summary>The doors the issue names, one by one.</summary>
[Collection(ServicesCollection.Name)]
public sealed class RejectionTests(Services services, ITestOutputHelper output)
{
    [Fact]
    public async Task UnauthenticatedRollbackAfterCommit_Is401_StockAndCourierUnchanged()
    {
        var world = await WorldSetup.CreateAsync(services);
        var before = await State.SnapshotAsync(services);
        var widget = (await services.GetAsync(Svc.Storage, "/v1/products/widget")).ToJsonString();
        var message = new { transactionId = world.CommittedTx, orderId = 1 };

        foreach (var participant in new[] { Svc.Storage, Svc.Delivery })
        {
            var (rollback, problem) = await services.SendAsync(services.Request(participant, HttpMethod.Post, "/rollback", message, auth: false));
            Assert.Equal(HttpStatusCode.Unauthorized, rollback);
            Assert.Equal(401, problem!["status"]!.GetValue<int>());

            var (abort, _) = await services.SendAsync(services.Request(participant, HttpMethod.Post, $"/v1/transactions/{world.CommittedTx}/abort", new { }, auth: false));
            Assert.Equal(HttpStatusCode.Unauthorized, abort);

            var wrong = services.Request(participant, HttpMethod.Post, "/rollback", message, auth: false);
            wrong.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "not-the-secret");
            Assert.Equal(HttpStatusCode.Unauthorized, (await services.SendAsync(wrong)).Status);

            // Even with the secret, a committed transaction is final.
            Assert.Equal(HttpStatusCode.Conflict, (await services.SendAsync(services.Request(participant, HttpMethod.Post, "/rollback", message))).Status);
        }

        var (complete, _) = await services.SendAsync(services.Request(Svc.Delivery, HttpMethod.Post, $"/v1/deliveries/{world.CommittedTx}/complete", auth: false));
        Assert.Equal(HttpStatusCode.Unauthorized, complete);

        Assert.Equal(widget, (await services.GetAsync(Svc.Storage, "/v1/products/widget")).ToJsonString());
        Assert.Equal(before, await State.SnapshotAsync(services));
        Assert.Empty(await State.AuditAsync(services));
    }

    [Fact]
    public async Task EveryRefusedClass_AnswersItsStatusCode_AsProblemDetail_AndChangesNothing()
    {
        var world = await WorldSetup.CreateAsync(services);
        var before = await State.SnapshotAsync(services);
        var failures = new List<string>();
        foreach (var (cls, gen) in Cases.All(world))
        {
            // A few draws per class, so one lucky example does not hide a broken class.
            for (var i = 0; i < 5; i++)
            {
                var c = Check.Single(gen);
                if (await FuzzTests.CheckAsync(services, c) is { } failure)
                {
                    failures.Add(failure);
                }
                else if (i == 0)
                {
                    output.WriteLine($"{string.Join('|', c.Expected)}  {cls}");
                }
            }
        }

        Assert.True(failures.Count == 0, string.Join('\n', failures));
        Assert.Equal(before, await State.SnapshotAsync(services));
    }

    [Fact]
    public async Task UnknownField_IsNamedInTheProblem()
    {
        var request = services.Request(Svc.Order, HttpMethod.Post, "/v1/orders", auth: false);
        request.Content = new StringContent("""{"items":[{"sku":"widget","quantity":1}],"discount":50}""", System.Text.Encoding.UTF8, "application/json");
        var (status, problem) = await services.SendAsync(request);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("discount", problem!.ToJsonString());

        var unknownSku = services.Request(Svc.Order, HttpMethod.Post, "/v1/orders", new { items = new[] { new { sku = "widget", quantity = 1 }, new { sku = "nosuch", quantity = 1 } } }, auth: false);
        var (skuStatus, skuProblem) = await services.SendAsync(unknownSku);
        Assert.Equal(HttpStatusCode.BadRequest, skuStatus);
        Assert.NotNull(skuProblem!["errors"]!["items[1].sku"]);
    }
}
