using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace TwoPhase.Protocol;

/// <summary>
/// The protocol's spans: one per transaction, one per phase, one per participant call (the HTTP runtime adds
/// its own client and server spans beneath). <see cref="ActivitySource"/> is part of the BCL, so the core stays
/// free of any telemetry SDK; with no listener every call here returns null and costs next to nothing.
/// </summary>
public static class TwoPhaseDiagnostics
{
    /// <summary>The name of the <see cref="System.Diagnostics.ActivitySource"/> and of the <see cref="Meter"/>.</summary>
    public const string Name = "TwoPhase";

    /// <summary>The tag every protocol span carries, so a trace can be found by transaction id.</summary>
    public const string TransactionIdTag = "twophase.transaction_id";

    /// <summary>The source of every protocol span; subscribe to it by <see cref="Name"/> (OpenTelemetry's <c>AddSource</c>).</summary>
    public static readonly ActivitySource ActivitySource = new(Name);

    /// <summary>The coordinator's span for one transaction, from the first write to the answer.</summary>
    public static Activity? StartTransaction(string transactionId) =>
        ActivitySource.StartActivity("twophase transaction")?.SetTag(TransactionIdTag, transactionId);

    /// <summary>A phase at the coordinator: <c>prepare</c>, <c>decide</c> (the durable write), <c>commit</c> or <c>abort</c>.</summary>
    public static Activity? StartPhase(string phase, string transactionId) =>
        ActivitySource.StartActivity($"twophase {phase}")?.SetTag(TransactionIdTag, transactionId).SetTag("twophase.phase", phase);

    /// <summary>One message to one participant, as the coordinator sends it.</summary>
    public static Activity? StartCall(string message, string participant, string transactionId) =>
        ActivitySource.StartActivity($"twophase {message} {participant}", ActivityKind.Internal)?
            .SetTag(TransactionIdTag, transactionId).SetTag("twophase.message", message).SetTag("twophase.participant", participant);

    /// <summary>A participant handling one message against its ledger.</summary>
    public static Activity? StartParticipant(string message, string transactionId) =>
        ActivitySource.StartActivity($"twophase participant {message}")?.SetTag(TransactionIdTag, transactionId).SetTag("twophase.message", message);
}

/// <summary>A phase being timed: a span and, when disposed, one <c>twophase.phase.duration</c> sample.</summary>
public readonly struct PhaseScope : IDisposable
{
    private readonly TwoPhaseMetrics? _metrics;
    private readonly TimeProvider _time;
    private readonly Activity? _activity;
    private readonly string _phase;
    private readonly long _started;

    /// <summary>Starts the phase's span and its clock.</summary>
    /// <param name="metrics">Where the duration goes; null records no metric (the span is still started).</param>
    /// <param name="time">The clock the duration is read from.</param>
    /// <param name="phase">The phase's name, the metric's <c>phase</c> tag: <c>prepare</c>, <c>decide</c>, <c>commit</c> or <c>abort</c>.</param>
    /// <param name="transactionId">The transaction, tagged on the span.</param>
    public PhaseScope(TwoPhaseMetrics? metrics, TimeProvider time, string phase, string transactionId)
    {
        _metrics = metrics;
        _time = time;
        _phase = phase;
        _activity = TwoPhaseDiagnostics.StartPhase(phase, transactionId);
        _started = time.GetTimestamp();
    }

    /// <summary>Ends the phase: records its duration and stops its span.</summary>
    public void Dispose()
    {
        _metrics?.RecordPhase(_phase, _time.GetElapsedTime(_started));
        _activity?.Dispose();
    }
}

/// <summary>
/// Every TwoPhase instrument, on the meter named <see cref="TwoPhaseDiagnostics.Name"/>. Counters and histograms
/// are recorded on the protocol's path (no allocation: tags are passed as key-value pairs); gauges that need the
/// database read values cached by a background refresher, never the database at scrape time.
/// </summary>
public sealed class TwoPhaseMetrics : IDisposable
{
    // Seconds, from half a millisecond (a local SQLite write) to half a minute (a retried phase 2).
    private static readonly double[] LatencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    private readonly Meter _meter;
    private readonly Counter<long> _committed;
    private readonly Counter<long> _aborted;
    private readonly Histogram<double> _transactionDuration;
    private readonly Histogram<double> _phaseDuration;
    private readonly Histogram<double> _callDuration;
    private readonly UpDownCounter<long> _inFlight;
    private readonly Counter<long> _redrives;
    private readonly Counter<long> _conflicts;
    private readonly Counter<long> _votes;
    private readonly Counter<long> _participantDecisions;
    private Snapshot? _coordinator;
    private Snapshot? _participant;

    /// <summary>Creates every instrument on a meter named <see cref="TwoPhaseDiagnostics.Name"/>.</summary>
    /// <param name="meterFactory">The host's meter factory (so its listeners see the meter); null creates a meter of its own.</param>
    public TwoPhaseMetrics(IMeterFactory? meterFactory = null)
    {
        _meter = meterFactory?.Create(TwoPhaseDiagnostics.Name) ?? new Meter(TwoPhaseDiagnostics.Name);
        var latency = new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets };
        _committed = _meter.CreateCounter<long>("twophase.transactions.committed", "{transaction}", "Transactions decided commit.");
        _aborted = _meter.CreateCounter<long>("twophase.transactions.aborted", "{transaction}", "Transactions decided abort, by reason (refused, no_answer, deadline, abandoned) and the participant at fault.");
        _transactionDuration = _meter.CreateHistogram("twophase.transaction.duration", "s", "From the first write to the answer: decision durable and one phase-2 round.", advice: latency);
        _phaseDuration = _meter.CreateHistogram("twophase.phase.duration", "s", "One phase at the coordinator: prepare, decide (the durable write), commit or abort (one phase-2 round).", advice: latency);
        _callDuration = _meter.CreateHistogram("twophase.participant.call.duration", "s", "One message to one participant, by participant, message and result.", advice: latency);
        _inFlight = _meter.CreateUpDownCounter<long>("twophase.transactions.in_flight", "{transaction}", "Transactions this coordinator is running now.");
        _redrives = _meter.CreateCounter<long>("twophase.recovery.redrives", "{transaction}", "Phase-2 rounds run by recovery for decided transactions not yet completed.");
        _conflicts = _meter.CreateCounter<long>("twophase.coordinator.conflicts", "{refusal}", "COMMITs or ABORTs a participant refused (409): its ledger contradicts a durable decision. Each needs a person; the transaction stays unfinished and is not re-sent to that participant.");
        _votes = _meter.CreateCounter<long>("twophase.participant.votes", "{vote}", "Votes this participant gave, by vote.");
        _participantDecisions = _meter.CreateCounter<long>("twophase.participant.decisions", "{message}", "COMMIT and ABORT messages this participant handled, by message and result.");
        _meter.CreateObservableGauge("twophase.transactions.unfinished", () => Observe(_coordinator, s => s.Count), "{transaction}", "Transactions in the decision log not yet completed (preparing, or decided and not acknowledged by all).");
        _meter.CreateObservableGauge("twophase.transactions.oldest_unfinished_age", () => Observe(_coordinator, s => s.OldestAgeSeconds), "s", "Age of the oldest transaction not yet completed; 0 when there is none.");
        _meter.CreateObservableGauge("twophase.participant.prepared", () => Observe(_participant, s => s.Count), "{row}", "Ledger rows still prepared (resources held, awaiting the decision).");
        _meter.CreateObservableGauge("twophase.participant.in_doubt", () => Observe(_participant, s => s.InDoubt), "{row}", "Prepared rows older than the in-doubt timeout.");
        _meter.CreateObservableGauge("twophase.participant.prepared.oldest_age", () => Observe(_participant, s => s.OldestAgeSeconds), "s", "Age of the oldest prepared row; 0 when there is none.");
    }

    /// <summary>The meter every instrument is on.</summary>
    public Meter Meter => _meter;

    /// <summary>Counts one transaction in flight until the returned scope is disposed; a no-op without metrics.</summary>
    public static InFlightScope InFlight(TwoPhaseMetrics? metrics)
    {
        metrics?._inFlight.Add(1);
        return new InFlightScope(metrics);
    }

    /// <summary>One <c>twophase.phase.duration</c> sample.</summary>
    /// <param name="phase">The phase: <c>prepare</c>, <c>decide</c>, <c>commit</c> or <c>abort</c>.</param>
    /// <param name="elapsed">How long it took.</param>
    public void RecordPhase(string phase, TimeSpan elapsed) =>
        _phaseDuration.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("phase", phase));

    /// <summary>One <c>twophase.transaction.duration</c> sample, from the first write to the answer.</summary>
    /// <param name="outcome">The transaction's state when the client was answered.</param>
    /// <param name="elapsed">How long it took.</param>
    public void RecordTransaction(TransactionState outcome, TimeSpan elapsed) =>
        _transactionDuration.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("outcome", outcome.ToWire()));

    /// <summary>One <c>twophase.participant.call.duration</c> sample: one message to one participant.</summary>
    /// <param name="participant">The participant's name.</param>
    /// <param name="message">The message: <c>prepare</c>, <c>commit</c> or <c>abort</c>.</param>
    /// <param name="result">The answer in a word: a vote (<c>yes</c>, <c>no</c>, <c>none</c>) or an acknowledgement's kind.</param>
    /// <param name="elapsed">From sending to the answer.</param>
    public void RecordCall(string participant, string message, string result, TimeSpan elapsed) =>
        _callDuration.Record(
            elapsed.TotalSeconds,
            new KeyValuePair<string, object?>("participant", participant),
            new KeyValuePair<string, object?>("message", message),
            new KeyValuePair<string, object?>("result", result));

    /// <summary>
    /// Count a decision once, by whoever wrote it: <paramref name="written"/> is the record as it stands after our
    /// conditional write; if another writer decided first, its state or reason differs from ours and we count nothing.
    /// </summary>
    /// <param name="written">The record after our write.</param>
    /// <param name="ours">What we tried to write.</param>
    /// <param name="ourReason">Our reason, to tell our write from another's.</param>
    /// <param name="abandoned">An abort because nobody decided in time (recovery, or a commit the log refused as too late).</param>
    public void RecordDecision(TransactionRecord written, Decision ours, string? ourReason, bool abandoned = false)
    {
        var expected = ours == Decision.Commit ? TransactionState.Committed : TransactionState.Aborted;
        if (written.State != expected || written.Reason != ourReason)
        {
            return;
        }

        if (expected == TransactionState.Committed)
        {
            _committed.Add(1);
            return;
        }

        var (reason, participant) = abandoned ? ("abandoned", "") : AbortCause(written.Votes);
        _aborted.Add(1, new KeyValuePair<string, object?>("reason", reason), new KeyValuePair<string, object?>("participant", participant));
    }

    /// <summary>Count phase-2 rounds that recovery ran for decided transactions not yet completed.</summary>
    public void RecordRedrives(int count)
    {
        if (count > 0)
        {
            _redrives.Add(count);
        }
    }

    /// <summary>Count participants newly found refusing a decision (409).</summary>
    public void RecordConflicts(int count)
    {
        if (count > 0)
        {
            _conflicts.Add(count);
        }
    }

    /// <summary>Count one vote this participant gave.</summary>
    public void RecordVote(VoteKind vote) => _votes.Add(1, new KeyValuePair<string, object?>("vote", vote.ToWire()));

    /// <summary>Count one COMMIT or ABORT this participant handled.</summary>
    /// <param name="decision">The message.</param>
    /// <param name="conflict">It was refused (409): the ledger contradicts it.</param>
    public void RecordParticipantDecision(Decision decision, bool conflict) =>
        _participantDecisions.Add(
            1,
            new KeyValuePair<string, object?>("message", decision == Decision.Commit ? "commit" : "abort"),
            new KeyValuePair<string, object?>("result", conflict ? "conflict" : "ok"));

    /// <summary>The coordinator's cached view of its decision log, refreshed in the background.</summary>
    public void ReportUnfinished(long count, double oldestAgeSeconds) =>
        Volatile.Write(ref _coordinator, new Snapshot(count, 0, oldestAgeSeconds));

    /// <summary>A participant's cached view of its ledger, refreshed in the background.</summary>
    public void ReportPrepared(long count, long inDoubt, double oldestAgeSeconds) =>
        Volatile.Write(ref _participant, new Snapshot(count, inDoubt, oldestAgeSeconds));

    /// <summary>
    /// Why an abort happened, in few enough words to be a metric label: the first participant that voted no
    /// (<c>refused</c>), else the first that gave no usable answer (<c>deadline</c> or <c>no_answer</c>).
    /// </summary>
    public static (string Reason, string Participant) AbortCause(IReadOnlyList<Vote> votes)
    {
        foreach (var vote in votes)
        {
            if (vote.Kind == VoteKind.No)
            {
                return ("refused", vote.Participant);
            }
        }

        foreach (var vote in votes)
        {
            if (vote.Kind == VoteKind.None)
            {
                var deadline = vote.Reason?.Contains("deadline", StringComparison.Ordinal) == true;
                return (deadline ? "deadline" : "no_answer", vote.Participant);
            }
        }

        return ("unknown", "");
    }

    /// <summary>Disposes the meter, which ends every instrument.</summary>
    public void Dispose() => _meter.Dispose();

    private static IEnumerable<Measurement<T>> Observe<T>(Snapshot? snapshot, Func<Snapshot, T> read)
        where T : struct =>
        snapshot is null ? [] : [new Measurement<T>(read(snapshot))];

    private sealed record Snapshot(long Count, long InDoubt, double OldestAgeSeconds);

    /// <summary>Ends one in-flight count.</summary>
    public readonly struct InFlightScope(TwoPhaseMetrics? metrics) : IDisposable
    {
        /// <summary>The transaction is no longer in flight.</summary>
        public void Dispose() => metrics?._inFlight.Add(-1);
    }
}
