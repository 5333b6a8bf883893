using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;
using TwoPhase.AspNetCore;
using TwoPhase.Protocol;

namespace TwoPhase.Tests.Transport;

/// <summary>
/// The coordinator's batching transport against a stub participant that answers every message yes/200 and records
/// each batch it receives; its first batch is held until the test lets it go, so the test decides what is queued
/// when the next batch is formed.
/// </summary>
public sealed class BatchingTransportTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private static readonly ParticipantRef Participant = new("storage", new Uri("http://participant.invalid/"), Legacy: false);

    /// <summary>
    /// Overload collapse (issue 10, defect 4): a PREPARE whose caller gave up while it waited in the queue must not be
    /// sent (it would reserve for an order that already aborted), and its ABORT need not be sent either: the
    /// participant never heard of the transaction. A message whose caller still waits is sent as before.
    /// </summary>
    [Fact]
    public async Task CallerCancelledBeforeBatchFormed_MessageNeverPosted()
    {
        var participant = new StubParticipant();
        await using var transport = Create(participant);

        // One request slot: the first PREPARE's batch holds it, so what follows waits in the queue.
        var first = transport.PrepareAsync(Participant, "tx-first", "{}", CancellationToken.None);
        await participant.FirstArrived.Task.WaitAsync(Bound);

        using var gone = new CancellationTokenSource();
        var abandoned = transport.PrepareAsync(Participant, "tx-gone", "{}", gone.Token);
        var decisionGone = transport.SendDecisionAsync(Participant, "tx-commit-gone", Decision.Commit, "{}", gone.Token);
        var live = transport.PrepareAsync(Participant, "tx-live", "{}", CancellationToken.None);
        await gone.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => abandoned);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => decisionGone);

        participant.ReleaseFirst.SetResult();
        Assert.Equal(VoteKind.Yes, (await first.WaitAsync(Bound)).Kind);
        // FIFO: the live PREPARE's answer means the loop has already passed the abandoned messages.
        Assert.Equal(VoteKind.Yes, (await live.WaitAsync(Bound)).Kind);

        // The abandoned PREPARE was never sent, so its ABORT has nothing to guard against: acknowledged, not posted.
        var abort = await transport.SendDecisionAsync(Participant, "tx-gone", Decision.Abort, "{}", CancellationToken.None).WaitAsync(Bound);
        Assert.Equal(AckKind.Acknowledged, abort.Kind);
        // An ABORT for a PREPARE that was sent still goes out (its tombstone or release matters).
        var abortSent = await transport.SendDecisionAsync(Participant, "tx-live", Decision.Abort, "{}", CancellationToken.None).WaitAsync(Bound);
        Assert.Equal(AckKind.Acknowledged, abortSent.Kind);

        var posted = participant.Messages.ToList();
        Assert.Equal(["prepare tx-first", "prepare tx-live", "abort tx-live"], posted);
        Assert.Equal(3, participant.Requests);
    }

    /// <summary>
    /// A PREPARE whose payload is not JSON must not spoil the batch it would have joined (issue 12: one bad message fails
    /// alone): it goes to its own endpoint, whose 400 makes it that transaction's NO with the problem's detail as reason,
    /// and the PREPARE queued beside it is batched and votes yes.
    /// </summary>
    [Fact]
    public async Task PayloadNotJson_GoesAlone_VotesNoWithTheParticipantsReason_NeighbourBatchedAndYes()
    {
        var participant = new StubParticipant();
        await using var transport = Create(participant);
        var first = transport.PrepareAsync(Participant, "tx-first", "{}", CancellationToken.None);
        await participant.FirstArrived.Task.WaitAsync(Bound);

        var bad = transport.PrepareAsync(Participant, "tx-bad", "{not json", CancellationToken.None);
        var neighbour = transport.PrepareAsync(Participant, "tx-ok", "{}", CancellationToken.None);
        participant.ReleaseFirst.SetResult();

        Assert.Equal(VoteKind.Yes, (await first.WaitAsync(Bound)).Kind);
        var badVote = await bad.WaitAsync(Bound);
        Assert.Equal(VoteKind.No, badVote.Kind);
        Assert.Equal("body: malformed JSON or a value of the wrong type", badVote.Reason);
        Assert.Equal(VoteKind.Yes, (await neighbour.WaitAsync(Bound)).Kind);
        Assert.Equal(["prepare tx-first", "prepare tx-ok"], participant.Messages.ToList());
        Assert.Equal(["tx-bad"], participant.Singles.ToList());
    }

    /// <summary>The old protocol's dialect builds its body from the payload; one that is not JSON carries no order id, never an exception.</summary>
    [Fact]
    public async Task LegacyParticipant_PayloadNotJson_SentWithNullOrderId_NoException()
    {
        var participant = new StubParticipant();
        var options = Options.Create(new TwoPhaseOptions());
        var transport = new HttpParticipantTransport(new HttpClient(participant), options);

        var vote = await transport.PrepareAsync(Participant with { Legacy = true }, "tx-old", "{not json", CancellationToken.None).WaitAsync(Bound);

        Assert.Equal(VoteKind.Yes, vote.Kind);
        Assert.Equal(["""{"transactionId":"tx-old","orderId":null}"""], participant.LegacyBodies.ToList());
    }

    private static BatchingParticipantTransport Create(StubParticipant participant)
    {
        var options = Options.Create(new TwoPhaseOptions());
        var http = new HttpClient(participant);
        return new BatchingParticipantTransport(http, new HttpParticipantTransport(http, options), options, maxMessages: 64, maxInFlight: 1, requestTimeout: Bound);
    }

    /// <summary>Answers <c>POST /v1/transactions/batch</c> as a participant would when every message succeeds.</summary>
    private sealed class StubParticipant : HttpMessageHandler
    {
        private int _requests;

        public TaskCompletionSource FirstArrived { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource ReleaseFirst { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ConcurrentQueue<string> Messages { get; } = new();

        public int Requests => Volatile.Read(ref _requests);

        /// <summary>Transactions whose PREPARE came alone, to its own endpoint (answered as a malformed body).</summary>
        public ConcurrentQueue<string> Singles { get; } = new();

        /// <summary>Bodies of old-protocol PREPAREs (answered yes).</summary>
        public ConcurrentQueue<string> LegacyBodies { get; } = new();

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var path = request.RequestUri!.AbsolutePath;
            if (path == "/prepare")
            {
                LegacyBodies.Enqueue(await request.Content!.ReadAsStringAsync(cancellationToken));
                return new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent("""{"vote":"yes"}""", Encoding.UTF8, "application/json") };
            }

            if (path.EndsWith("/prepare", StringComparison.Ordinal))
            {
                Singles.Enqueue(path.Split('/')[^2]);
                return new HttpResponseMessage(HttpStatusCode.BadRequest)
                {
                    Content = new StringContent("""{"status":400,"title":"The request is not valid.","detail":"body: malformed JSON or a value of the wrong type"}""", Encoding.UTF8, "application/problem+json"),
                };
            }

            Assert.EndsWith("/v1/transactions/batch", path, StringComparison.Ordinal);
            using var body = JsonDocument.Parse(await request.Content!.ReadAsStringAsync(cancellationToken));
            var results = new List<object>();
            foreach (var message in body.RootElement.GetProperty("messages").EnumerateArray())
            {
                var type = message.GetProperty("type").GetString()!;
                var id = message.GetProperty("transactionId").GetString()!;
                Messages.Enqueue($"{type} {id}");
                results.Add(type == "prepare" ? new { transactionId = id, status = 200, vote = "yes" } : new { transactionId = id, status = 200, vote = "" });
            }

            if (Interlocked.Increment(ref _requests) == 1)
            {
                FirstArrived.SetResult();
                await ReleaseFirst.Task.WaitAsync(cancellationToken);
            }

            return new HttpResponseMessage(HttpStatusCode.OK)
            {
                Content = new StringContent(JsonSerializer.Serialize(new { results }), Encoding.UTF8, "application/json"),
            };
        }
    }
}
