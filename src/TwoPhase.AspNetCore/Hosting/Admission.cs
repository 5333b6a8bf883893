using System.Diagnostics.Metrics;
using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using TwoPhase.Protocol;

namespace TwoPhase.AspNetCore;

/// <summary>
/// Admission of new transactions at the coordinator: at most <see cref="CoordinatorOptions.MaxInFlight"/> run at once,
/// up to <see cref="CoordinatorOptions.AdmissionQueueLimit"/> more wait (oldest first, each at most
/// <see cref="CoordinatorOptions.AdmissionQueueTimeout"/>), and the rest are shed at once with 503 and Retry-After.
/// </summary>
/// <remarks>
/// Why: past the peak, more transactions in flight only lengthen every queue behind them (the batcher's, the database
/// pools'), until PREPAREs wait longer than the prepare deadline and every order aborts (docs/performance.md,
/// "Overload"). Bounding what runs keeps each admitted order's queueing delay near what it is at the peak, so they
/// commit, and tells the others to come back instead of letting them turn into dead work. A shed request is refused
/// before anything is written, so an <c>Idempotency-Key</c> retry later runs normally.
/// The limiter is the framework's own <see cref="ConcurrencyLimiter"/> (the one ASP.NET Core's rate limiting
/// middleware uses), applied per endpoint with <see cref="AdmissionExtensions.RequireTransactionAdmission"/> rather than
/// through the middleware, which would need the host's pipeline (<c>UseRateLimiter</c>) and its global options.
/// </remarks>
public sealed class TransactionAdmission : IDisposable
{
    private readonly ConcurrencyLimiter _limiter;
    private readonly TimeSpan _queueTimeout;
    private readonly TimeProvider _time;
    private readonly Counter<long> _shed;
    private long _inFlight;

    /// <summary>Sized by <see cref="CoordinatorOptions"/>; <paramref name="meters"/>, when given, carries its gauges.</summary>
    public TransactionAdmission(IOptions<CoordinatorOptions> options, TimeProvider time, IMeterFactory? meters = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var o = options.Value;
        _limiter = new ConcurrencyLimiter(new ConcurrencyLimiterOptions
        {
            PermitLimit = o.MaxInFlight,
            QueueLimit = o.AdmissionQueueLimit,
            // Oldest first: the order that has waited longest is the closest to its client giving up.
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        });
        _queueTimeout = o.AdmissionQueueTimeout;
        _time = time;
        RetryAfterSeconds = o.RetryAfterSeconds;
        var meter = meters?.Create(TwoPhaseDiagnostics.Name) ?? new Meter(TwoPhaseDiagnostics.Name);
        _shed = meter.CreateCounter<long>("twophase.admission.shed", "{request}", "New transactions refused with 503 because the coordinator was at its admission limit.");
        meter.CreateObservableGauge("twophase.admission.in_flight", () => Volatile.Read(ref _inFlight), "{transaction}", "Transactions admitted and not yet answered.");
        meter.CreateObservableGauge("twophase.admission.queued", () => _limiter.GetStatistics()?.CurrentQueuedCount ?? 0, "{request}", "Requests waiting for admission.");
    }

    /// <summary>What a shed request is told to wait before retrying.</summary>
    public int RetryAfterSeconds { get; }

    /// <summary>Transactions admitted and not yet answered.</summary>
    public long InFlight => Volatile.Read(ref _inFlight);

    /// <summary>
    /// Waits for admission within the queue bound and timeout. Null: shed (the queue is full or the wait timed out).
    /// Dispose the ticket when the transaction's answer is ready.
    /// </summary>
    public async ValueTask<IDisposable?> TryEnterAsync(CancellationToken cancellationToken)
    {
        using var timer = new CancellationTokenSource(_queueTimeout, _time);
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token);
        RateLimitLease lease;
        try
        {
            lease = await _limiter.AcquireAsync(1, wait.Token);
        }
        catch (OperationCanceledException) when (timer.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            _shed.Add(1);
            return null;
        }

        if (!lease.IsAcquired)
        {
            lease.Dispose();
            _shed.Add(1);
            return null;
        }

        Interlocked.Increment(ref _inFlight);
        return new Ticket(this, lease);
    }

    /// <summary>Releases the limiter; transactions still admitted keep running.</summary>
    public void Dispose() => _limiter.Dispose();

    private sealed class Ticket(TransactionAdmission owner, RateLimitLease lease) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                Interlocked.Decrement(ref owner._inFlight);
                lease.Dispose();
            }
        }
    }
}

/// <summary>Puts endpoints that start transactions behind the coordinator's admission.</summary>
public static class AdmissionExtensions
{
    /// <summary>
    /// Each request to these endpoints runs only once admitted (<see cref="TransactionAdmission"/>), and holds its
    /// place until the handler returns; a request that is not admitted gets a 503 problem detail with Retry-After and
    /// the handler does not run, so nothing is written for it.
    /// </summary>
    public static TBuilder RequireTransactionAdmission<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder
    {
        builder.AddEndpointFilter(async (context, next) =>
        {
            var http = context.HttpContext;
            var admission = http.RequestServices.GetRequiredService<TransactionAdmission>();
            using var ticket = await admission.TryEnterAsync(http.RequestAborted);
            if (ticket is null)
            {
                http.Response.Headers.RetryAfter = admission.RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
                return Problems.Status(
                    StatusCodes.Status503ServiceUnavailable,
                    "Too many transactions in flight.",
                    $"The coordinator is at its admission limit; nothing was started. Retry after {admission.RetryAfterSeconds} s (the same Idempotency-Key is safe).");
            }

            return await next(context);
        });
        builder.WithMetadata(new ProducesResponseTypeMetadata(StatusCodes.Status503ServiceUnavailable, typeof(Microsoft.AspNetCore.Mvc.ProblemDetails), ["application/problem+json"]));
        return builder;
    }
}
