namespace TwoPhase.Simulation;

/// <summary>
/// The one clock of a history. Time moves only when the scheduler has nothing ready to run: it jumps to the
/// earliest timer. Timers due at the same moment fire in the order they were set, so nothing depends on a thread.
/// </summary>
public sealed class SimClock : TimeProvider
{
    private static readonly DateTimeOffset Epoch = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly PriorityQueue<SimTimer, (long Due, long Seq)> _timers = new();
    private long _now;
    private long _seq;

    /// <summary>Ticks since the start of the history.</summary>
    public long Now => _now;

    public TimeSpan Elapsed => TimeSpan.FromTicks(_now);

    public override DateTimeOffset GetUtcNow() => Epoch.AddTicks(_now);

    public override long GetTimestamp() => _now;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new SimTimer(this, callback, state);
        timer.Change(dueTime, period);
        return timer;
    }

    /// <summary>Run <paramref name="action"/> after <paramref name="delay"/> of simulated time.</summary>
    public void At(TimeSpan delay, Action action) => CreateTimer(_ => action(), null, delay, Timeout.InfiniteTimeSpan);

    /// <summary>Move to the earliest live timer and take it; false when none is left.</summary>
    internal bool TryTakeNext(out SimTimer timer)
    {
        while (_timers.TryDequeue(out timer!, out var key))
        {
            if (timer.Armed && timer.Due == key.Due && timer.Seq == key.Seq)
            {
                _now = Math.Max(_now, key.Due);
                timer.Fired();
                return true;
            }
        }

        return false;
    }

    internal void Arm(SimTimer timer, long due)
    {
        timer.Seq = ++_seq;
        _timers.Enqueue(timer, (due, timer.Seq));
    }

    /// <summary>A timer of the simulated clock; a stale queue entry is skipped by its sequence number.</summary>
    internal sealed class SimTimer(SimClock clock, TimerCallback callback, object? state) : ITimer
    {
        private long _period = -1;

        public long Due { get; private set; }

        public long Seq { get; set; }

        public bool Armed { get; private set; }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            Armed = false;
            _period = period == Timeout.InfiniteTimeSpan ? -1 : Math.Max(1, period.Ticks);
            if (dueTime == Timeout.InfiniteTimeSpan)
            {
                return true;
            }

            Due = clock._now + Math.Max(0, dueTime.Ticks);
            Armed = true;
            clock.Arm(this, Due);
            return true;
        }

        internal void Fired()
        {
            Armed = false;
            if (_period > 0)
            {
                Due = clock._now + _period;
                Armed = true;
                clock.Arm(this, Due);
            }
        }

        internal void Invoke() => callback(state);

        public void Dispose() => Armed = false;

        public ValueTask DisposeAsync()
        {
            Armed = false;
            return ValueTask.CompletedTask;
        }
    }
}

/// <summary>A node's own clock: the history's clock off by a fixed skew, as a replica's clock may be.</summary>
public sealed class SkewedClock(SimClock clock, TimeSpan skew) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => clock.GetUtcNow() + skew;

    public override long GetTimestamp() => clock.GetTimestamp();

    public override long TimestampFrequency => clock.TimestampFrequency;

    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
        clock.CreateTimer(callback, state, dueTime, period);
}
