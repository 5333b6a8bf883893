using System.Runtime.CompilerServices;

namespace TwoPhase.Simulation;

/// <summary>
/// An interpolated trace line that is formatted only when the history keeps a trace: a run of thousands of seeds
/// keeps none (a failing seed is run again with it), and formatting every event would cost most of the run.
/// </summary>
[InterpolatedStringHandler]
public ref struct TraceText
{
    private DefaultInterpolatedStringHandler _inner;

    public TraceText(int literalLength, int formattedCount, World world, out bool enabled)
    {
        enabled = world.Tracing;
        _inner = enabled ? new DefaultInterpolatedStringHandler(literalLength, formattedCount) : default;
    }

    public void AppendLiteral(string value) => _inner.AppendLiteral(value);

    public void AppendFormatted<T>(T value) => _inner.AppendFormatted(value);

    public void AppendFormatted<T>(T value, string? format) => _inner.AppendFormatted(value, format);

    public void AppendFormatted(string? value) => _inner.AppendFormatted(value);

    public string ToStringAndClear() => _inner.ToStringAndClear();
}
