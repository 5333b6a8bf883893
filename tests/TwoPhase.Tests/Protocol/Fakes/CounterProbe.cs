using System.Diagnostics.Metrics;
using TwoPhase.Protocol;

namespace TwoPhase.Tests.Protocol.Fakes;

/// <summary>Sums what one counter of one <see cref="TwoPhaseMetrics"/> records while the probe lives.</summary>
public sealed class CounterProbe : IDisposable
{
    private readonly MeterListener _listener = new();
    private long _total;

    public CounterProbe(TwoPhaseMetrics metrics, string name)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter == metrics.Meter && instrument.Name == name)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref _total, value));
        _listener.Start();
    }

    public long Total => Interlocked.Read(ref _total);

    public void Dispose() => _listener.Dispose();
}
