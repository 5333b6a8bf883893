using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Options;
using TwoPhase.Protocol;

namespace TwoPhase.AspNetCore;

/// <summary>One protocol message inside a batch (DESIGN §3 extension, docs/api.md).</summary>
/// <param name="Type"><c>prepare</c>, <c>commit</c> or <c>abort</c>.</param>
/// <param name="TransactionId">The transaction the message is about.</param>
/// <param name="Body">The PREPARE body (the order's lines); absent for COMMIT and ABORT.</param>
/// <param name="Traceparent">The W3C trace context of the coordinator's call, so the participant's spans join the order's trace.</param>
internal sealed record BatchMessage(string Type, string TransactionId, JsonElement? Body = null, string? Traceparent = null);

/// <summary>The body of <c>POST /v1/transactions/batch</c>.</summary>
/// <param name="Messages">The messages, answered in this order.</param>
/// <param name="CoordinatorGroup">The coordinator group of the replica that sent the batch, for every PREPARE in it (docs/protocol.md, "Coordinator groups").</param>
/// <param name="CoordinatorUrl">Where that group answers the decision query; null: the participant's configured coordinator URL.</param>
internal sealed record BatchRequest(IReadOnlyList<BatchMessage> Messages, string? CoordinatorGroup = null, string? CoordinatorUrl = null);

/// <summary>
/// One message's answer, in the order of the request: <paramref name="Status"/> is what the single-message
/// endpoint would have answered (200, or 409 for a message that contradicts the ledger).
/// </summary>
internal sealed record BatchResult(string TransactionId, int Status, string? Vote = null, string? Reason = null, string? State = null, string? Detail = null);

/// <summary>The answer to <c>POST /v1/transactions/batch</c>.</summary>
internal sealed record BatchAnswer(IReadOnlyList<BatchResult> Results);

/// <summary>Limits of message batching, on both sides.</summary>
internal static class BatchLimits
{
    /// <summary>Messages one batch may carry; a participant refuses more with 400.</summary>
    public const int MaxMessages = 128;

    /// <summary>Room left in the body limit for the envelope of a batch.</summary>
    public const int EnvelopeBytes = 1024;

    /// <summary>Roughly what a message costs on the wire besides its body and id.</summary>
    public const int MessageOverheadBytes = 160;
}

/// <summary>
/// The coordinator's transport with message batching: PREPAREs, COMMITs and ABORTs to one participant that are
/// waiting at the same moment travel in one <c>POST /v1/transactions/batch</c>. Nothing waits to fill a batch:
/// a message goes out at once when a request slot is free, and messages only gather while every slot is busy, so
/// a lone order pays nothing and a busy coordinator pays one HTTP exchange per batch instead of per message.
/// Old-protocol participants, and messages too large for a batch, take the single-message path.
/// Each caller still waits with its own deadline; a batch that fails (unreachable, timeout, HTTP error) fails
/// every message in it the way the single path would, and the protocol's retries do the rest.
/// <para>
/// A message whose caller has stopped waiting (its deadline passed, its token cancelled) before its batch is formed
/// is dropped, not sent: under overload the queue otherwise fills with PREPAREs for orders that have already aborted,
/// each answered by an ABORT, and the participant spends its time on dead work while new orders miss their deadline
/// in turn (docs/performance.md, "Overload"). Dropping is safe because nobody waits for the answer: a dropped PREPARE
/// is no vote (the coordinator aborts), a dropped COMMIT or ABORT is sent again by phase 2's retries.
/// </para>
/// </summary>
internal sealed class BatchingParticipantTransport : IParticipantTransport, IAsyncDisposable
{
    private readonly HttpClient _http;
    private readonly IParticipantTransport _single;
    private readonly IOptions<TwoPhaseOptions> _options;
    private readonly int _maxMessages;
    private readonly int _maxInFlight;
    private readonly TimeSpan _requestTimeout;
    private readonly int _queueCapacity;
    private readonly Dictionary<string, Outbox> _outboxes = [];
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stop = new();

    // The batch envelope's members before "messages": the coordinator group, the same for every batch of this replica.
    private readonly byte[] _envelopeStart;

    public BatchingParticipantTransport(
        HttpClient http, IParticipantTransport single, IOptions<TwoPhaseOptions> options, int maxMessages, int maxInFlight, TimeSpan requestTimeout, int queueCapacity = 8192, CoordinatorIdentity? identity = null)
    {
        _envelopeStart = EnvelopeStart(identity ?? CoordinatorIdentity.Unnamed);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxMessages, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxMessages, BatchLimits.MaxMessages);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxInFlight, 1);
        _http = http;
        _single = single;
        _options = options;
        _maxMessages = maxMessages;
        _maxInFlight = maxInFlight;
        _requestTimeout = requestTimeout;
        _queueCapacity = queueCapacity;
    }

    public async Task<Vote> PrepareAsync(ParticipantRef participant, string transactionId, string payload, CancellationToken cancellationToken)
    {
        // A payload that is not JSON cannot be a batch's member without spoiling the batch: it goes alone, and the
        // participant's 400 makes it this transaction's NO, as any refused body.
        if (participant.Legacy || !Fits(transactionId, payload) || Pending.Prepare(transactionId, payload, cancellationToken) is not { } pending)
        {
            return await _single.PrepareAsync(participant, transactionId, payload, cancellationToken);
        }

        var result = await OutboxOf(participant).SendAsync(pending, cancellationToken);
        return result switch
        {
            { Failure: { } failure } => new Vote(participant.Name, VoteKind.None, failure),
            { Answer: { Status: 200, Vote: "yes" } } => new Vote(participant.Name, VoteKind.Yes),
            { Answer: { Status: 200, Vote: "no" } answer } => new Vote(participant.Name, VoteKind.No, answer.Reason ?? "refused"),
            // Its body refused, this message alone (the rest of the batch went on): the transaction's NO, with the reason.
            { Answer: { } answer } when HttpParticipantTransport.IsRefusedBody(answer.Status) =>
                new Vote(participant.Name, VoteKind.No, HttpParticipantTransport.Bounded(answer.Reason ?? answer.Detail ?? $"prepare refused with HTTP {answer.Status}")),
            { Answer: { Status: 200 } } => new Vote(participant.Name, VoteKind.None, "prepare answer had no vote"),
            { Answer: { } answer } => new Vote(participant.Name, VoteKind.None, $"prepare answered HTTP {answer.Status}"),
            _ => new Vote(participant.Name, VoteKind.None, "prepare had no answer"),
        };
    }

    public async Task<Ack> SendDecisionAsync(ParticipantRef participant, string transactionId, Decision decision, string payload, CancellationToken cancellationToken)
    {
        if (participant.Legacy || !Fits(transactionId, null))
        {
            return await _single.SendDecisionAsync(participant, transactionId, decision, payload, cancellationToken);
        }

        var result = await OutboxOf(participant).SendAsync(Pending.Decide(decision == Decision.Commit ? "commit" : "abort", transactionId, cancellationToken), cancellationToken);
        return result switch
        {
            { Failure: { } failure } => new Ack(participant.Name, AckKind.Failed, failure),
            { Answer.Status: 200 } => new Ack(participant.Name, AckKind.Acknowledged),
            { Answer: { Status: 409 } answer } => new Ack(participant.Name, AckKind.Conflict, answer.Detail),
            { Answer: { } answer } => new Ack(participant.Name, AckKind.Failed, $"HTTP {answer.Status}"),
            _ => new Ack(participant.Name, AckKind.Failed, "no answer"),
        };
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        lock (_gate)
        {
            foreach (var outbox in _outboxes.Values)
            {
                outbox.Complete();
            }
        }

        _stop.Dispose();
    }

    /// <summary><c>{"coordinatorGroup":"g","coordinatorUrl":"u","messages":[</c>, escaped as JSON.</summary>
    private static byte[] EnvelopeStart(CoordinatorIdentity identity)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("coordinatorGroup", identity.Group);
            if (identity.Url is { } url)
            {
                json.WriteString("coordinatorUrl", url);
            }

            json.Flush();
        }

        // The writer has written "{...members"; the messages array follows the last member.
        buffer.Write(",\"messages\":["u8);
        return buffer.ToArray();
    }

    private bool Fits(string transactionId, string? payload) =>
        BatchLimits.EnvelopeBytes + _envelopeStart.Length + BatchLimits.MessageOverheadBytes + transactionId.Length + (payload?.Length ?? 0) <= _options.Value.MaxBodyBytes;

    private Outbox OutboxOf(ParticipantRef participant)
    {
        lock (_gate)
        {
            if (!_outboxes.TryGetValue(participant.Name, out var outbox))
            {
                outbox = new Outbox(this, participant);
                _outboxes.Add(participant.Name, outbox);
            }

            return outbox;
        }
    }

    /// <summary>
    /// A message waiting for its batch, already encoded as its member of the batch's <c>messages</c> array (so a payload
    /// that is not JSON is found by its own caller, never while its batch is being written); completed with the
    /// participant's answer or with why there is none.
    /// </summary>
    private sealed class Pending
    {
        private readonly CancellationToken _callerGone;

        private Pending(string type, string transactionId, byte[] encoded, CancellationToken callerGone)
        {
            Type = type;
            TransactionId = transactionId;
            Encoded = encoded;
            _callerGone = callerGone;
        }

        public string Type { get; }

        /// <summary>The caller's token is cancelled: nobody reads the answer.</summary>
        public bool CallerGone => _callerGone.IsCancellationRequested;

        public string TransactionId { get; }

        /// <summary>The message as UTF-8 JSON, one member of the batch's array.</summary>
        public byte[] Encoded { get; }

        public TaskCompletionSource<(BatchResult? Answer, string? Failure)> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Size => Encoded.Length;

        /// <summary>A PREPARE; null when <paramref name="payload"/> is not JSON.</summary>
        public static Pending? Prepare(string transactionId, string payload, CancellationToken callerGone)
        {
            try
            {
                return new("prepare", transactionId, Encode("prepare", transactionId, payload), callerGone);
            }
            catch (Exception e) when (e is JsonException or ArgumentException or InvalidOperationException)
            {
                return null;
            }
        }

        public static Pending Decide(string type, string transactionId, CancellationToken callerGone) =>
            new(type, transactionId, Encode(type, transactionId, null), callerGone);

        private static byte[] Encode(string type, string transactionId, string? payload)
        {
            using var buffer = new MemoryStream();
            using (var json = new Utf8JsonWriter(buffer))
            {
                json.WriteStartObject();
                json.WriteString("type", type);
                json.WriteString("transactionId", transactionId);
                if (payload is not null)
                {
                    json.WritePropertyName("body");
                    json.WriteRawValue(payload, skipInputValidation: false);
                }

                // Captured when the message is queued: the caller's span, not whatever runs the batch.
                if (Activity.Current?.Id is { } traceparent)
                {
                    json.WriteString("traceparent", traceparent);
                }

                json.WriteEndObject();
            }

            return buffer.ToArray();
        }
    }

    /// <summary>One participant's queue, and the loop that sends it in batches over at most N requests at once.</summary>
    private sealed class Outbox
    {
        private readonly BatchingParticipantTransport _owner;
        private readonly ParticipantRef _participant;
        private readonly Channel<Pending> _queue;
        private readonly SemaphoreSlim _slots;
        private readonly Task _loop;
        private readonly NeverSent _neverSent;

        public Outbox(BatchingParticipantTransport owner, ParticipantRef participant)
        {
            _owner = owner;
            _participant = participant;
            _slots = new SemaphoreSlim(owner._maxInFlight, owner._maxInFlight);
            _neverSent = new NeverSent(owner._queueCapacity);
            // Bounded: beyond it a caller waits (and its own deadline still applies), never an unbounded queue.
            _queue = Channel.CreateBounded<Pending>(new BoundedChannelOptions(owner._queueCapacity) { FullMode = BoundedChannelFullMode.Wait, SingleReader = true });
            // Not the first caller's context: the loop must not run, and send every batch, inside that order's
            // trace (Activity.Current) and logging scope.
            using (ExecutionContext.SuppressFlow())
            {
                _loop = Task.Run(RunAsync);
            }
        }

        public async Task<(BatchResult? Answer, string? Failure)> SendAsync(Pending message, CancellationToken cancellationToken)
        {
            if (message.Type == "abort" && _neverSent.Forget(message.TransactionId))
            {
                // Its PREPARE was dropped here, unsent, and no other PREPARE for this id ever goes to this
                // participant (a transaction prepares once, and only through this outbox): the participant has
                // never heard of it and never will, so there is nothing a tombstone would guard against.
                return (new BatchResult(message.TransactionId, 200, State: "aborted"), null);
            }

            await _queue.Writer.WriteAsync(message, cancellationToken);
            // The caller stops waiting at its own deadline; the batch goes on without it (every message is
            // idempotent at the participant, and the coordinator treats a missing answer as no answer).
            return await message.Done.Task.WaitAsync(cancellationToken);
        }

        public void Complete() => _queue.Writer.TryComplete();

        private async Task RunAsync()
        {
            var reader = _queue.Reader;
            var stop = _owner._stop.Token;
            try
            {
                while (await reader.WaitToReadAsync(stop))
                {
                    // Take a request slot first: while every slot is busy, messages gather into the next batch.
                    await _slots.WaitAsync(stop);
                    var batch = new List<Pending>();
                    var budget = _owner._options.Value.MaxBodyBytes - BatchLimits.EnvelopeBytes - _owner._envelopeStart.Length;
                    while (batch.Count < _owner._maxMessages && reader.TryPeek(out var next))
                    {
                        if (next.CallerGone)
                        {
                            // Checked at the last moment before the message would leave: after this it is sent.
                            reader.TryRead(out _);
                            Drop(next);
                            continue;
                        }

                        if (batch.Count > 0 && next.Size > budget)
                        {
                            break;
                        }

                        reader.TryRead(out _);
                        budget -= next.Size;
                        batch.Add(next);
                    }

                    if (batch.Count == 0)
                    {
                        _slots.Release();
                        continue;
                    }

                    _ = SendBatchAsync(batch);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                // Stopping: what is still queued ends with the process; callers' deadlines release them.
            }
        }

        /// <summary>Completes a message nobody waits for without sending it; the answer is what a lost message would get.</summary>
        private void Drop(Pending message)
        {
            if (message.Type == "prepare")
            {
                _neverSent.Remember(message.TransactionId);
            }

            message.Done.TrySetResult((null, "not sent: the caller stopped waiting before its batch was formed"));
        }

        private async Task SendBatchAsync(List<Pending> batch)
        {
            try
            {
                var results = await PostAsync(batch);
                for (var i = 0; i < batch.Count; i++)
                {
                    batch[i].Done.TrySetResult(results is { } r && i < r.Count && r[i].TransactionId == batch[i].TransactionId
                        ? (r[i], null)
                        : (null, "batch answer did not match the request"));
                }
            }
            catch (BatchFailedException e)
            {
                foreach (var message in batch)
                {
                    message.Done.TrySetResult((null, e.Message));
                }
            }
            catch (Exception e)
            {
                foreach (var message in batch)
                {
                    message.Done.TrySetResult((null, $"batch failed: {e.GetType().Name}"));
                }
            }
            finally
            {
                _slots.Release();
            }
        }

        private async Task<IReadOnlyList<BatchResult>?> PostAsync(List<Pending> batch)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_owner._stop.Token);
            timeout.CancelAfter(_owner._requestTimeout);
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_participant.Url, "v1/transactions/batch"))
            {
                Content = new ByteArrayContent(Serialize(_owner._envelopeStart, batch)) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" } } },
            };
            if (!string.IsNullOrEmpty(_owner._options.Value.Secret))
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _owner._options.Value.Secret);
            }

            try
            {
                using var response = await _owner._http.SendAsync(request, timeout.Token);
                if (!response.IsSuccessStatusCode)
                {
                    throw new BatchFailedException($"batch answered HTTP {(int)response.StatusCode}");
                }

                var answer = await response.Content.ReadFromJsonAsync<BatchAnswer>(JsonSerializerOptions.Web, timeout.Token);
                return answer?.Results;
            }
            catch (HttpRequestException e)
            {
                throw new BatchFailedException($"unreachable: {e.HttpRequestError}");
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested && !_owner._stop.IsCancellationRequested)
            {
                throw new BatchFailedException("batch timed out");
            }
            catch (JsonException)
            {
                throw new BatchFailedException("batch answer was not JSON");
            }
        }

        /// <summary><c>{"coordinatorGroup":...,"messages":[...]}</c> from the messages as each was encoded when queued.</summary>
        private static byte[] Serialize(byte[] envelopeStart, List<Pending> batch)
        {
            using var buffer = new MemoryStream(envelopeStart.Length + 2 + batch.Sum(m => m.Size + 1));
            buffer.Write(envelopeStart);
            for (var i = 0; i < batch.Count; i++)
            {
                if (i > 0)
                {
                    buffer.WriteByte((byte)',');
                }

                buffer.Write(batch[i].Encoded);
            }

            buffer.Write("]}"u8);
            return buffer.ToArray();
        }
    }

    private sealed class BatchFailedException(string message) : Exception(message);

    /// <summary>
    /// Transactions whose PREPARE this outbox dropped unsent, so that their ABORT need not travel either. Bounded: the
    /// oldest are forgotten first, and a forgotten one only costs the ABORT being sent after all (a tombstone, as for
    /// any PREPARE that might have been sent). In memory only: after a restart recovery's ABORTs are sent.
    /// </summary>
    private sealed class NeverSent(int capacity)
    {
        private readonly HashSet<string> _ids = new(StringComparer.Ordinal);
        private readonly Queue<string> _order = new();
        private readonly Lock _gate = new();

        public void Remember(string transactionId)
        {
            lock (_gate)
            {
                if (!_ids.Add(transactionId))
                {
                    return;
                }

                _order.Enqueue(transactionId);
                while (_order.Count > capacity && _order.TryDequeue(out var oldest))
                {
                    _ids.Remove(oldest);
                }
            }
        }

        /// <summary>True, once, if the PREPARE of <paramref name="transactionId"/> was dropped unsent.</summary>
        public bool Forget(string transactionId)
        {
            lock (_gate)
            {
                // The queue keeps the id until it ages out; a stale entry there only evicts nothing.
                return _ids.Remove(transactionId);
            }
        }
    }
}
