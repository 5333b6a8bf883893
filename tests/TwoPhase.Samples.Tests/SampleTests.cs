using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using TwoPhase.Harness;

namespace TwoPhase.Samples.Tests;

/// <summary>
/// The samples as a user would run them, built from the packages: a checkout (coordinator) across payments (the sample
/// participant) and the reference storage service. After every scenario the invariants hold: funds and stock are
/// conserved, nothing is left held, and the coordinator and both participants agree on every checkout.
/// </summary>
public sealed class SampleTests(SampleSystem system) : IClassFixture<SampleSystem>
{
    private const string Sku = "widget";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Checkout_Commits_PaysAndTakesStock_BothSidesAgree()
    {
        var ledger = await OpenAccountAsync("alice", 10_000);

        var outcome = await CheckoutAsync("c-commit", "alice", 2_500, 2);

        Assert.Equal("committed", State(outcome));
        ledger.Add("c-commit", 2_500, 2);
        await AssertSettledAsync(ledger);
    }

    [Fact]
    public async Task InsufficientFunds_Aborts_WithTheReason_NothingHeldAnywhere()
    {
        var ledger = await OpenAccountAsync("bob", 1_000);

        var outcome = await CheckoutAsync("c-refused", "bob", 5_000, 1);

        Assert.Equal("aborted", State(outcome));
        Assert.Contains("insufficient funds", outcome.GetProperty("reason").GetString(), StringComparison.Ordinal);
        ledger.Refuse("c-refused");
        await AssertSettledAsync(ledger);
    }

    /// <summary>
    /// Payments dies (FailFast, as kill -9) when the COMMIT reaches it, after it voted yes and the checkout decided
    /// commit: it restarts prepared, and the coordinator's recovery sends the COMMIT again until it lands, once.
    /// </summary>
    [Fact]
    public async Task PaymentsKilledBetweenPrepareAndCommit_RestartsAndCommits_InvariantsHold()
    {
        var ledger = await OpenAccountAsync("carol", 10_000);
        await system.Payments.KillAsync();
        await system.StartAsync(system.Payments, new Dictionary<string, string> { ["TWOPHASE_CRASH_AT"] = "ParticipantBeforeCommitWritten" });

        var outcome = await CheckoutAsync("c-crash", "carol", 4_000, 3);
        await system.Payments.WaitForExitAsync(Bound);

        // The decision was durable before the COMMIT was sent: the client was told committed, payments has not acknowledged.
        Assert.Equal("committed", State(outcome));
        Assert.DoesNotContain("payments", outcome.GetProperty("acknowledged").EnumerateArray().Select(a => a.GetString()));
        await system.StartAsync(system.Payments);
        ledger.Add("c-crash", 4_000, 3);
        await AssertSettledAsync(ledger);
    }

    // ---- the invariants ----------------------------------------------------------------------------------------

    /// <summary>
    /// Waits (bounded) until both participants have settled every checkout of <paramref name="ledger"/>, then checks
    /// conservation and agreement: the account paid exactly the committed amounts and holds nothing, the product sold
    /// exactly the committed units and reserves nothing, and each checkout has the same outcome at the coordinator,
    /// at payments and at storage.
    /// </summary>
    private async Task AssertSettledAsync(Expected ledger)
    {
        foreach (var (id, committed) in ledger.Outcomes)
        {
            var coordinator = await system.GetAsync(system.Checkout, $"/v1/transactions/checkout-{id}");
            Assert.Equal(committed ? "committed" : "aborted", State(coordinator));
            foreach (var participant in new[] { system.Payments, system.Storage })
            {
                var state = await WaitSettledAsync(participant, $"checkout-{id}");
                // A refused or never-asked participant may hold a refusal, an abort or nothing: all mean "not committed".
                Assert.Equal(committed, state == "committed");
            }
        }

        var account = await system.GetAsync(system.Payments, $"/v1/accounts/{ledger.Account}");
        Assert.Equal(ledger.Deposited - ledger.Paid, account.GetProperty("balance").GetInt64());
        Assert.Equal(0, account.GetProperty("held").GetInt64());

        var product = await system.GetAsync(system.Storage, $"/v1/products/{Sku}");
        Assert.Equal(ledger.StockBefore.Sold + ledger.Units, product.GetProperty("sold").GetInt64());
        Assert.Equal(0, product.GetProperty("reserved").GetInt64());
        Assert.Equal(product.GetProperty("received").GetInt64(), product.GetProperty("onHand").GetInt64() + product.GetProperty("sold").GetInt64());
    }

    /// <summary>The participant's ledger state of <paramref name="id"/> once it is no longer prepared; "none" without a row.</summary>
    private async Task<string> WaitSettledAsync(ServiceProcess participant, string id)
    {
        using var bound = new CancellationTokenSource(Bound);
        while (true)
        {
            using var response = await system.Http.GetAsync(new Uri(participant.Url, $"/v1/transactions/{id}"), bound.Token);
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                return "none";
            }

            response.EnsureSuccessStatusCode();
            var state = State(await response.Content.ReadFromJsonAsync<JsonElement>(bound.Token));
            if (state != "prepared")
            {
                return state;
            }

            // Waiting on the participant's recovery (the in-doubt check, the coordinator's re-sent decision); bounded.
            await Task.Delay(TimeSpan.FromMilliseconds(100), bound.Token);
        }
    }

    private async Task<Expected> OpenAccountAsync(string account, long cents)
    {
        using var deposit = await system.PostAsync(system.Payments, $"/v1/accounts/{account}/deposits", new { amount = cents });
        Assert.Equal(HttpStatusCode.NoContent, deposit.StatusCode);
        var product = await system.GetAsync(system.Storage, $"/v1/products/{Sku}");
        return new Expected(account, cents, (product.GetProperty("sold").GetInt64(), product.GetProperty("onHand").GetInt64()));
    }

    private async Task<JsonElement> CheckoutAsync(string id, string account, long amount, int quantity)
    {
        using var response = await system.PostAsync(system.Checkout, "/v1/checkouts", new { id, account, amount, sku = Sku, quantity });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    private static string State(JsonElement element) => element.GetProperty("state").GetString()!.ToLowerInvariant();

    /// <summary>What one scenario did to one fresh account and to the product's stock, and what each checkout should end as.</summary>
    private sealed class Expected(string account, long deposited, (long Sold, long OnHand) stockBefore)
    {
        public string Account => account;

        public long Deposited => deposited;

        public (long Sold, long OnHand) StockBefore => stockBefore;

        public long Paid { get; private set; }

        public long Units { get; private set; }

        public Dictionary<string, bool> Outcomes { get; } = [];

        public void Add(string id, long amount, int units)
        {
            Outcomes[id] = true;
            Paid += amount;
            Units += units;
        }

        public void Refuse(string id) => Outcomes[id] = false;
    }
}
