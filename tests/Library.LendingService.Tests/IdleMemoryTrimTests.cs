using Library.ServiceDefaults;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using static Library.ServiceDefaults.IdleMemoryTrim;

namespace Library.LendingService.Tests;

/// <summary>
/// The idle trim's decision (<see cref="IdleMemoryTrim.TrimPolicy"/>): a full collection only when
/// the process is quiet and the GC holds a burst's worth more than its least, never under load,
/// at most once per interval; and that every service gets it unless configured off.
/// </summary>
public sealed class IdleMemoryTrimTests
{
    private const long MiB = 1L << 20;
    private static readonly DateTimeOffset T0 = new(2026, 12, 1, 21, 0, 0, TimeSpan.Zero);

    // Checks every 5 s; quiet below 256 KiB/s; a trim when 8 MiB above the least; 30 s apart.
    private static TrimPolicy Policy() => new(new TrimOptions());

    [Fact]
    public void A_quiet_process_that_holds_a_burst_s_garbage_is_trimmed_once()
    {
        var policy = Policy();
        Assert.False(policy.ShouldTrim(new MemorySample(100 * MiB, 21 * MiB), T0)); // first check: nothing to compare
        // The burst: 400 MiB allocated in 5 s, committed 21 -> 39 MiB: not quiet, no trim.
        Assert.False(policy.ShouldTrim(new MemorySample(500 * MiB, 39 * MiB), T0.AddSeconds(5)));
        // Quiet (80 KiB in 5 s) and 18 MiB above the least: trim.
        Assert.True(policy.ShouldTrim(new MemorySample(500 * MiB + 80 * 1024, 39 * MiB), T0.AddSeconds(10)));
        policy.Trimmed(new MemorySample(500 * MiB + 90 * 1024, 16 * MiB), T0.AddSeconds(10));
        // Still quiet, nothing grew since: no second trim, however long it stays so.
        Assert.False(policy.ShouldTrim(new MemorySample(500 * MiB + 170 * 1024, 16 * MiB), T0.AddSeconds(15)));
        Assert.False(policy.ShouldTrim(new MemorySample(500 * MiB + 250 * 1024, 17 * MiB), T0.AddSeconds(300)));
    }

    [Fact]
    public void Under_load_it_waits_for_quiet_however_much_is_committed()
    {
        var policy = Policy();
        Assert.False(policy.ShouldTrim(new MemorySample(0, 20 * MiB), T0));
        var allocated = 0L;
        for (var i = 1; i <= 10; i++)
        {
            allocated += 2 * MiB; // 0.4 MiB/s: a few requests a second, above the quiet rate
            Assert.False(policy.ShouldTrim(new MemorySample(allocated, (20 + 5 * i) * MiB), T0.AddSeconds(5 * i)));
        }
        Assert.True(policy.ShouldTrim(new MemorySample(allocated + MiB, 70 * MiB), T0.AddSeconds(55)));
    }

    [Fact]
    public void Growth_below_the_threshold_is_left_to_the_GC()
    {
        var policy = Policy();
        Assert.False(policy.ShouldTrim(new MemorySample(0, 30 * MiB), T0));
        // The least is 22 MiB from here on; 29.9 MiB is 7.9 above it: no trim.
        Assert.False(policy.ShouldTrim(new MemorySample(1024, 22 * MiB), T0.AddSeconds(5)));
        Assert.False(policy.ShouldTrim(new MemorySample(2048, 30 * MiB - 100 * 1024), T0.AddSeconds(10)));
        Assert.True(policy.ShouldTrim(new MemorySample(3072, 30 * MiB), T0.AddSeconds(15)));
    }

    [Fact]
    public void Two_trims_are_at_least_the_interval_apart()
    {
        var policy = Policy();
        Assert.False(policy.ShouldTrim(new MemorySample(0, 20 * MiB), T0));
        Assert.True(policy.ShouldTrim(new MemorySample(1024, 40 * MiB), T0.AddSeconds(5)));
        policy.Trimmed(new MemorySample(1024, 18 * MiB), T0.AddSeconds(5));
        // Another burst right after (a load of 4 MiB/s, then quiet): 12 MiB above the new least,
        // but only 20 s since the trim.
        Assert.False(policy.ShouldTrim(new MemorySample(20 * MiB, 30 * MiB), T0.AddSeconds(10)));
        Assert.False(policy.ShouldTrim(new MemorySample(20 * MiB + 1024, 30 * MiB), T0.AddSeconds(25)));
        Assert.True(policy.ShouldTrim(new MemorySample(20 * MiB + 2048, 30 * MiB), T0.AddSeconds(35)));
    }

    [Theory]
    [InlineData("Production", null, true)]
    [InlineData("Production", "true", true)]
    [InlineData("Production", "false", false)]
    [InlineData("Testing", null, false)]
    [InlineData("Testing", "true", true)]
    public void Every_service_gets_it_unless_configured_off(string environment, string? setting, bool expected)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = environment });
        if (setting is not null)
        {
            builder.Configuration.AddInMemoryCollection([new("Memory:IdleTrim", setting)]);
        }
        builder.AddServiceDefaults();
        using var host = builder.Build();
        var trimmers = host.Services.GetServices<IHostedService>().Count(s => s.GetType().DeclaringType == typeof(IdleMemoryTrim));
        Assert.Equal(expected ? 1 : 0, trimmers);
    }
}
