namespace TwoPhase.Protocol;

/// <summary>Capped exponential backoff with full jitter.</summary>
public static class Backoff
{
    /// <summary>The delay before retry number <paramref name="attempt"/> (1-based).</summary>
    public static TimeSpan Delay(int attempt, TimeSpan initial, TimeSpan max, double jitter01)
    {
        // 2^(attempt-1) overflows quickly; clamp the exponent before it matters.
        var exponent = Math.Clamp(attempt - 1, 0, 30);
        var raw = initial.TotalMilliseconds * Math.Pow(2, exponent);
        var capped = Math.Min(raw, max.TotalMilliseconds);
        // Half fixed, half jittered: spreads retries without ever dropping to zero.
        var ms = (capped / 2) + (capped / 2 * Math.Clamp(jitter01, 0, 1));
        return TimeSpan.FromMilliseconds(ms);
    }
}
