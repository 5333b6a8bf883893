using TwoPhase.Protocol;

namespace TwoPhase.Tests.Protocol;

public sealed class BackoffTests
{
    private static readonly TimeSpan Initial = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan Max = TimeSpan.FromSeconds(5);

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.5)]
    [InlineData(1.0)]
    public void SuccessiveAttempts_NeverShrink_AndDoubleUntilTheCap(double jitter)
    {
        var previous = TimeSpan.Zero;
        for (var attempt = 1; attempt <= 20; attempt++)
        {
            var delay = Backoff.Delay(attempt, Initial, Max, jitter);
            Assert.True(delay >= previous, $"attempt {attempt}: {delay} < {previous}");
            previous = delay;
        }

        Assert.Equal(Backoff.Delay(2, Initial, Max, jitter), Backoff.Delay(1, Initial, Max, jitter) * 2);
    }

    [Fact]
    public void FirstAttempt_LiesBetweenHalfAndAllOfTheInitialDelay()
    {
        Assert.Equal(TimeSpan.FromMilliseconds(25), Backoff.Delay(1, Initial, Max, 0));
        Assert.Equal(TimeSpan.FromMilliseconds(50), Backoff.Delay(1, Initial, Max, 1));
    }

    [Theory]
    [InlineData(8)]
    [InlineData(31)]
    [InlineData(1000)]
    [InlineData(int.MaxValue)]
    public void ManyAttempts_AreCappedAtTheMaximum_WithoutOverflow(int attempt)
    {
        Assert.Equal(Max, Backoff.Delay(attempt, Initial, Max, 1));
        Assert.Equal(Max / 2, Backoff.Delay(attempt, Initial, Max, 0));
    }

    [Fact]
    public void JitterOutOfRange_IsClamped_DelayNeverZeroOrAboveCap()
    {
        Assert.Equal(Backoff.Delay(3, Initial, Max, 0), Backoff.Delay(3, Initial, Max, -5));
        Assert.Equal(Backoff.Delay(3, Initial, Max, 1), Backoff.Delay(3, Initial, Max, 7));
        Assert.True(Backoff.Delay(0, Initial, Max, 0) > TimeSpan.Zero);
        Assert.True(Backoff.Delay(-3, Initial, Max, 0) > TimeSpan.Zero);
    }
}
