using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace TwoPhase.Harness;

/// <summary>The ways a network loses a message between the coordinator and a participant.</summary>
public enum MessageFault
{
    /// <summary>The request never reaches the participant: the caller sees its connection dropped, nothing was applied.</summary>
    DropRequest,

    /// <summary>The participant applies the request, and the answer is lost: the caller sees its connection dropped.</summary>
    DropResponse,

    /// <summary>The request reaches the participant twice, at once; the caller gets the first copy's answer.</summary>
    Duplicate,

    /// <summary>The request is held, then delivered late (after its sender gave up, when the delay passes the deadline).</summary>
    Delay,
}

/// <summary>How a proxy is run.</summary>
public sealed record FaultProxyOptions
{
    /// <summary>Port on 127.0.0.1; 0 lets the kernel pick one.</summary>
    public int Port { get; init; }

    /// <summary>
    /// How many requests and messages <see cref="FaultProxy.Requests"/> and <see cref="FaultProxy.Seen"/> keep; a test
    /// reads them, a long chaos run turns them off with 0.
    /// </summary>
    public int RecordLimit { get; init; } = 100_000;

    /// <summary>Bound of one forwarded request (a paused participant answers once it runs again).</summary>
    public TimeSpan ForwardTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Requests held by a <see cref="MessageFault.Delay"/> at once; beyond it requests pass unharmed.</summary>
    public int MaxHeld { get; init; } = 512;

    /// <summary>Clock of the delays and windows.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}

/// <summary>
/// One armed fault: it hits the matching requests that arrive while it is armed, up to <see cref="MaxRequests"/>
/// of them and within its window, and then it is over. <see cref="Healed"/> completes once it is over and every
/// request it held or copied has been delivered, which is when the network it stands for is healthy again.
/// </summary>
public sealed class ArmedFault
{
    private readonly Lock _gate = new();
    private readonly TaskCompletionSource<DateTimeOffset> _healed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TimeProvider _time;
    private ITimer? _window;
    private int _hits;
    private int _inFlight;
    private bool _over;

    internal ArmedFault(MessageFault kind, int maxRequests, TimeSpan window, TimeSpan delay, string? messageSuffix, TimeProvider time)
    {
        Kind = kind;
        MaxRequests = maxRequests;
        Window = window;
        Delay = delay;
        MessageSuffix = messageSuffix;
        _time = time;
    }

    public MessageFault Kind { get; }

    /// <summary>At most this many requests are hit.</summary>
    public int MaxRequests { get; }

    /// <summary>Armed for at most this long from <see cref="FaultProxy.Arm"/>.</summary>
    public TimeSpan Window { get; }

    /// <summary>How long a <see cref="MessageFault.Delay"/> holds each request it hits.</summary>
    public TimeSpan Delay { get; }

    /// <summary>Only requests carrying a message whose path ends with this are hit; null: every request.</summary>
    public string? MessageSuffix { get; }

    /// <summary>Requests hit so far.</summary>
    public int Hits => Volatile.Read(ref _hits);

    /// <summary>Whether no more requests will be hit.</summary>
    public bool IsOver
    {
        get
        {
            lock (_gate)
            {
                return _over;
            }
        }
    }

    /// <summary>Completes, with the time on the proxy's clock, once the fault is over and nothing it held is still held.</summary>
    public Task<DateTimeOffset> Healed => _healed.Task;

    /// <summary>Ends the fault now (requests it already holds are still delivered).</summary>
    public void Disarm()
    {
        lock (_gate)
        {
            _over = true;
            _window?.Dispose();
            HealIfDone();
        }
    }

    internal void StartWindow()
    {
        if (Window == Timeout.InfiniteTimeSpan)
        {
            return;
        }

        var timer = _time.CreateTimer(static s => ((ArmedFault)s!).Disarm(), this, Window, Timeout.InfiniteTimeSpan);
        lock (_gate)
        {
            if (_over)
            {
                timer.Dispose();
            }
            else
            {
                _window = timer;
            }
        }
    }

    /// <summary>Takes one hit for a request if the fault is still armed; the caller must call <see cref="Release"/> once done with it.</summary>
    internal bool TryTake()
    {
        lock (_gate)
        {
            if (_over)
            {
                return false;
            }

            _hits++;
            _inFlight++;
            if (_hits >= MaxRequests)
            {
                _over = true;
                _window?.Dispose();
            }

            return true;
        }
    }

    internal void Release()
    {
        lock (_gate)
        {
            _inFlight--;
            HealIfDone();
        }
    }

    private void HealIfDone()
    {
        if (_over && _inFlight == 0)
        {
            _healed.TrySetResult(_time.GetUtcNow());
        }
    }
}

/// <summary>
/// A small HTTP proxy in front of a participant that misbehaves the way networks do. Armed faults
/// (<see cref="Arm"/>) drop a request, drop the answer after the participant applied it, duplicate a request, or
/// deliver it late, each for a bounded number of requests within a bounded window. <see cref="Partition"/> holds
/// every request until <see cref="Heal"/>. Batches (<c>POST /v1/transactions/batch</c>) are understood: a fault
/// filtered by message hits a batch that carries such a message, and <see cref="Seen"/> lists each message in it.
/// </summary>
public sealed class FaultProxy : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly FaultProxyOptions _options;
    private readonly HttpClient _forward;
    private readonly List<ArmedFault> _armed = [];
    private readonly ConcurrentQueue<string> _seen = new();
    private readonly ConcurrentQueue<string> _requests = new();
    private readonly int[] _injected = new int[Enum.GetValues<MessageFault>().Length];
    private readonly Lock _gate = new();
    private TaskCompletionSource? _heal;
    private int _held;
    private int _recorded;

    private FaultProxy(WebApplication app, Uri target, FaultProxyOptions options)
    {
        _app = app;
        Target = target;
        _options = options;
        _forward = new HttpClient(new SocketsHttpHandler { UseProxy = false, MaxConnectionsPerServer = 256 }) { Timeout = options.ForwardTimeout };
    }

    /// <summary>The participant behind the proxy.</summary>
    public Uri Target { get; }

    /// <summary>Where callers reach the participant through the proxy.</summary>
    public Uri Url { get; private set; } = null!;

    /// <summary>Answers dropped so far (<see cref="MessageFault.DropResponse"/> hits).</summary>
    public int Dropped => Injected(MessageFault.DropResponse);

    /// <summary>Requests hit by faults of <paramref name="kind"/> so far.</summary>
    public int Injected(MessageFault kind) => Volatile.Read(ref _injected[(int)kind]);

    /// <summary>
    /// Every protocol message seen, as "POST /v1/transactions/x/prepare": a batch (<c>POST /v1/transactions/batch</c>)
    /// counts as each message it carries, so a test reads the same whether the coordinator batches or not.
    /// </summary>
    public IReadOnlyCollection<string> Seen => _seen;

    /// <summary>Every HTTP request seen, as sent: "POST /v1/transactions/batch" for a batch.</summary>
    public IReadOnlyCollection<string> Requests => _requests;

    public static async Task<FaultProxy> StartAsync(Uri target, FaultProxyOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(target);
        options ??= new FaultProxyOptions();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{options.Port}");
        var app = builder.Build();
        var proxy = new FaultProxy(app, target, options);
        app.Run(proxy.HandleAsync);
        await app.StartAsync(cancellationToken);
        proxy.Url = new Uri(app.Urls.Single().TrimEnd('/') + "/");
        return proxy;
    }

    /// <summary>
    /// Arms a fault for the next <paramref name="maxRequests"/> requests (carrying a message whose path ends with
    /// <paramref name="messageSuffix"/>, or any request) that arrive within <paramref name="window"/>. A request
    /// meets at most one fault: the earliest armed one that matches.
    /// </summary>
    /// <param name="kind">What happens to each request hit.</param>
    /// <param name="maxRequests">At most this many requests are hit (1 or more).</param>
    /// <param name="window">The fault ends after this long even if fewer requests came; <see cref="Timeout.InfiniteTimeSpan"/>: only the count ends it.</param>
    /// <param name="delay">For <see cref="MessageFault.Delay"/>: how long each request is held.</param>
    /// <param name="messageSuffix">Only requests carrying such a message, e.g. "/prepare"; null: all.</param>
    public ArmedFault Arm(MessageFault kind, int maxRequests, TimeSpan window, TimeSpan? delay = null, string? messageSuffix = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRequests, 1);
        if (window <= TimeSpan.Zero && window != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(window), window, "A window is positive, or Timeout.InfiniteTimeSpan for none.");
        }

        if ((kind == MessageFault.Delay && delay is null) || delay < TimeSpan.Zero)
        {
            throw new ArgumentException("A delay fault needs a non-negative delay.", nameof(delay));
        }

        var fault = new ArmedFault(kind, maxRequests, window, delay ?? TimeSpan.Zero, messageSuffix, _options.TimeProvider);
        lock (_gate)
        {
            _armed.RemoveAll(f => f.IsOver);
            _armed.Add(fault);
        }

        fault.StartWindow();
        return fault;
    }

    /// <summary>
    /// The next <paramref name="times"/> requests carrying a message whose path ends with <paramref name="pathSuffix"/>
    /// are forwarded, then their connection dropped (for a batch: the answers to every message in it are lost).
    /// </summary>
    public ArmedFault DropAnswers(string pathSuffix, int times = 1) =>
        Arm(MessageFault.DropResponse, times, Timeout.InfiniteTimeSpan, messageSuffix: pathSuffix);

    /// <summary>From now on, hold every request: the caller sees a participant that never answers.</summary>
    public void Partition()
    {
        lock (_gate)
        {
            _heal ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    /// <summary>Forward again, including the held requests, late, whether or not their callers still wait.</summary>
    public void Heal()
    {
        lock (_gate)
        {
            _heal?.TrySetResult();
            _heal = null;
        }
    }

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        var path = request.Path.Value ?? "/";
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, CancellationToken.None);
        var body = buffer.ToArray();
        var messages = MessagePaths(path, body);
        Record($"{request.Method} {path}", messages.Select(m => $"{request.Method} {m}"));

        Task? held;
        lock (_gate)
        {
            held = _heal?.Task;
        }

        if (held is not null)
        {
            // Not the caller's token: a request in flight is delivered even if its sender gave up on it.
            await held.WaitAsync(TimeSpan.FromSeconds(60));
        }

        var fault = TakeFault(messages);
        if (fault is null)
        {
            await ForwardAndAnswerAsync(context, body, dropAnswer: false);
            return;
        }

        try
        {
            Interlocked.Increment(ref _injected[(int)fault.Kind]);
            switch (fault.Kind)
            {
                case MessageFault.DropRequest:
                    context.Abort();
                    break;
                case MessageFault.DropResponse:
                    await ForwardAndAnswerAsync(context, body, dropAnswer: true);
                    break;
                case MessageFault.Duplicate:
                    // Both copies race at the participant, as a retransmission that overtakes its original would.
                    var copy = ForwardAsync(context.Request, body);
                    await ForwardAndAnswerAsync(context, body, dropAnswer: false);
                    (await copy)?.Dispose();
                    break;
                case MessageFault.Delay:
                    await Task.Delay(fault.Delay, _options.TimeProvider, CancellationToken.None);
                    await ForwardAndAnswerAsync(context, body, dropAnswer: false);
                    break;
            }
        }
        finally
        {
            if (fault.Kind == MessageFault.Delay)
            {
                Interlocked.Decrement(ref _held);
            }

            fault.Release();
        }
    }

    private ArmedFault? TakeFault(List<string> messages)
    {
        lock (_gate)
        {
            foreach (var fault in _armed)
            {
                if (fault.MessageSuffix is { } suffix && !messages.Any(m => m.EndsWith(suffix, StringComparison.Ordinal)))
                {
                    continue;
                }

                // Bounded: beyond MaxHeld held requests the rest pass unharmed rather than pile up.
                if (fault.Kind == MessageFault.Delay && _held >= _options.MaxHeld)
                {
                    continue;
                }

                if (fault.TryTake())
                {
                    if (fault.Kind == MessageFault.Delay)
                    {
                        _held++;
                    }

                    return fault;
                }
            }

            return null;
        }
    }

    private async Task ForwardAndAnswerAsync(HttpContext context, byte[] body, bool dropAnswer)
    {
        using var answer = await ForwardAsync(context.Request, body);
        if (answer is null)
        {
            // The participant itself is down: the caller sees the connection die, as it would without us.
            context.Abort();
            return;
        }

        var payload = await answer.Content.ReadAsByteArrayAsync(CancellationToken.None);
        if (dropAnswer || context.RequestAborted.IsCancellationRequested)
        {
            // Applied by the participant, the answer lost on the way back (or nobody waits for it any more).
            context.Abort();
            return;
        }

        try
        {
            context.Response.StatusCode = (int)answer.StatusCode;
            if (answer.Content.Headers.ContentType is { } type)
            {
                context.Response.ContentType = type.ToString();
            }

            await context.Response.Body.WriteAsync(payload, CancellationToken.None);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or InvalidOperationException)
        {
            // The caller hung up while we wrote (a late answer to a request it gave up on).
        }
    }

    /// <summary>Sends the request on to the participant; null if it could not be reached or did not answer in time.</summary>
    private async Task<HttpResponseMessage?> ForwardAsync(HttpRequest request, byte[] body)
    {
        using var forward = new HttpRequestMessage(new HttpMethod(request.Method), new Uri(Target, (request.Path.Value ?? "/").TrimStart('/') + request.QueryString.Value))
        {
            Content = new ByteArrayContent(body),
        };
        if (request.ContentType is { } contentType)
        {
            forward.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        }

        foreach (var header in request.Headers.Where(h => h.Key is "Authorization" or "traceparent" or "Idempotency-Key" or "TwoPhase-Coordinator-Group" or "TwoPhase-Coordinator-Url"))
        {
            forward.Headers.TryAddWithoutValidation(header.Key, header.Value.ToArray());
        }

        try
        {
            // Not the caller's token: what reached the proxy reaches the participant, whether or not its sender still waits.
            var answer = await _forward.SendAsync(forward, HttpCompletionOption.ResponseContentRead, CancellationToken.None);
            return answer;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return null;
        }
    }

    private void Record(string request, IEnumerable<string> messages)
    {
        if (Interlocked.Increment(ref _recorded) > _options.RecordLimit)
        {
            return;
        }

        _requests.Enqueue(request);
        foreach (var message in messages)
        {
            _seen.Enqueue(message);
        }
    }

    /// <summary>The protocol messages a request carries: itself, or for a batch each message as if sent alone.</summary>
    private static List<string> MessagePaths(string path, byte[] body)
    {
        if (!path.EndsWith("/v1/transactions/batch", StringComparison.Ordinal))
        {
            return [path];
        }

        try
        {
            using var json = JsonDocument.Parse(body);
            return json.RootElement.GetProperty("messages").EnumerateArray()
                .Select(m => $"/v1/transactions/{m.GetProperty("transactionId").GetString()}/{m.GetProperty("type").GetString()}")
                .ToList();
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            // Not a batch we can read: forward it as it is; the participant will refuse it.
            return [path];
        }
    }

    public async ValueTask DisposeAsync()
    {
        Heal();
        lock (_gate)
        {
            foreach (var fault in _armed)
            {
                fault.Disarm();
            }
        }

        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await _app.StopAsync(stop.Token);
        await _app.DisposeAsync();
        _forward.Dispose();
    }
}
