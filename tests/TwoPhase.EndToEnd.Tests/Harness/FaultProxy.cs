using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace TwoPhase.EndToEnd.Tests.Harness;

/// <summary>
/// A tiny HTTP proxy in front of a participant, inside the test process, that can misbehave the way networks do:
/// forward a request and then drop the connection instead of answering (the request was applied, the answer lost),
/// or hold every request (the participant unreachable) and deliver the held ones late when healed.
/// </summary>
public sealed class FaultProxy : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly HttpClient _forward = new(new SocketsHttpHandler { UseProxy = false, MaxConnectionsPerServer = 256 }) { Timeout = TimeSpan.FromSeconds(30) };
    private readonly ConcurrentDictionary<string, int> _dropBudget = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _seen = new();
    private readonly ConcurrentQueue<string> _requests = new();
    private readonly Lock _gate = new();
    private TaskCompletionSource? _heal;
    private int _dropped;

    private FaultProxy(WebApplication app, Uri target)
    {
        _app = app;
        Target = target;
    }

    public Uri Target { get; }

    public Uri Url { get; private set; } = null!;

    /// <summary>Answers dropped so far.</summary>
    public int Dropped => Volatile.Read(ref _dropped);

    /// <summary>
    /// Every protocol message seen, as "POST /v1/transactions/x/prepare": a batch (<c>POST /v1/transactions/batch</c>)
    /// counts as each message it carries, so a test reads the same whether the coordinator batches or not.
    /// </summary>
    public IReadOnlyCollection<string> Seen => _seen;

    /// <summary>Every HTTP request seen, as sent: "POST /v1/transactions/batch" for a batch.</summary>
    public IReadOnlyCollection<string> Requests => _requests;

    public static async Task<FaultProxy> StartAsync(Uri target)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var proxy = new FaultProxy(app, target);
        app.Run(proxy.HandleAsync);
        await app.StartAsync();
        proxy.Url = new Uri(app.Urls.Single().TrimEnd('/') + "/");
        return proxy;
    }

    /// <summary>
    /// The next <paramref name="times"/> requests carrying a message whose path ends with <paramref name="pathSuffix"/>
    /// are forwarded, then their connection dropped (for a batch: the answers to every message in it are lost).
    /// </summary>
    public void DropAnswers(string pathSuffix, int times = 1) => _dropBudget[pathSuffix] = times;

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
        using var body = new MemoryStream();
        await request.Body.CopyToAsync(body, CancellationToken.None);
        _requests.Enqueue($"{request.Method} {path}");
        var messages = MessagePaths(path, body.ToArray());
        foreach (var message in messages)
        {
            _seen.Enqueue($"{request.Method} {message}");
        }

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

        using var forward = new HttpRequestMessage(new HttpMethod(request.Method), new Uri(Target, path.TrimStart('/') + request.QueryString.Value))
        {
            Content = new ByteArrayContent(body.ToArray()),
        };
        if (request.ContentType is { } contentType)
        {
            forward.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        }

        foreach (var header in request.Headers.Where(h => h.Key is "Authorization" or "traceparent" or "Idempotency-Key"))
        {
            forward.Headers.TryAddWithoutValidation(header.Key, header.Value.ToArray());
        }

        HttpResponseMessage answer;
        try
        {
            answer = await _forward.SendAsync(forward, CancellationToken.None);
        }
        catch (HttpRequestException)
        {
            // The participant itself is down: the caller sees the connection die, as it would without us.
            context.Abort();
            return;
        }

        using (answer)
        {
            var payload = await answer.Content.ReadAsByteArrayAsync(CancellationToken.None);
            if (messages.Any(TakeDrop))
            {
                Interlocked.Increment(ref _dropped);
                // Applied by the participant, the answer lost on the way back.
                context.Abort();
                return;
            }

            context.Response.StatusCode = (int)answer.StatusCode;
            if (answer.Content.Headers.ContentType is { } type)
            {
                context.Response.ContentType = type.ToString();
            }

            await context.Response.Body.WriteAsync(payload, CancellationToken.None);
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

    private bool TakeDrop(string path)
    {
        foreach (var (suffix, _) in _dropBudget)
        {
            if (path.EndsWith(suffix, StringComparison.Ordinal))
            {
                while (_dropBudget.TryGetValue(suffix, out var left) && left > 0)
                {
                    if (_dropBudget.TryUpdate(suffix, left - 1, left))
                    {
                        return true;
                    }
                }
            }
        }

        return false;
    }

    public async ValueTask DisposeAsync()
    {
        Heal();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await _app.StopAsync(stop.Token);
        await _app.DisposeAsync();
        _forward.Dispose();
    }
}
