using Library.ServiceDefaults;

namespace Library.LendingService.Tests;

/// <summary>The services' retry schedule (<see cref="FailoverAwareExecutionStrategy"/>): quick at first, then every second, about 20 s in all.</summary>
public sealed class RetryScheduleTests
{
    [Fact]
    public void Retries_come_at_once_then_after_a_quarter_and_a_half_second_then_a_second_apart()
    {
        Assert.Equal(TimeSpan.Zero, FailoverAwareExecutionStrategy.DelayBefore(1, 0.5));
        Assert.Equal(TimeSpan.FromMilliseconds(250), FailoverAwareExecutionStrategy.DelayBefore(2, 0));
        Assert.Equal(TimeSpan.FromMilliseconds(500), FailoverAwareExecutionStrategy.DelayBefore(3, 0));
        Assert.Equal(TimeSpan.FromSeconds(1), FailoverAwareExecutionStrategy.DelayBefore(4, 0));
        Assert.Equal(TimeSpan.FromSeconds(1), FailoverAwareExecutionStrategy.DelayBefore(FailoverAwareExecutionStrategy.MaxRetries, 0));
        // Up to 10 % longer, so requests that failed together do not all retry together.
        Assert.Equal(TimeSpan.FromMilliseconds(1100), FailoverAwareExecutionStrategy.DelayBefore(9, 1));
        Assert.Null(FailoverAwareExecutionStrategy.DelayBefore(FailoverAwareExecutionStrategy.MaxRetries + 1, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => FailoverAwareExecutionStrategy.DelayBefore(0, 0));
    }

    /// <summary>Longer than a failover takes (the fault suite's promotes in about a second), short enough that a client gets its 503 in about 20 s.</summary>
    [Theory]
    [InlineData(0.0)]
    [InlineData(1.0)]
    public void The_retries_wait_about_20_s_in_all(double jitter)
    {
        var total = Enumerable.Range(1, FailoverAwareExecutionStrategy.MaxRetries)
            .Aggregate(TimeSpan.Zero, (sum, retry) => sum + FailoverAwareExecutionStrategy.DelayBefore(retry, jitter)!.Value);
        Assert.InRange(total.TotalSeconds, 18.5, 21.5);
    }
}
