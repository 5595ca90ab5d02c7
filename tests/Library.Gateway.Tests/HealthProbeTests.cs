using Library.Gateway.Routing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Health;

namespace Library.Gateway.Tests;

/// <summary>
/// Gateway:HealthProbeSeconds sets every cluster's active /health probe (interval and timeout);
/// without it the production default, 2 s, that Shutdown:DrainSeconds (5 s) is sized against.
/// </summary>
public sealed class HealthProbeTests
{
    [Theory]
    [InlineData(null, 2.0)]
    [InlineData("1", 1.0)]
    [InlineData("0.5", 0.5)]
    [InlineData("0", 2.0)]
    [InlineData("-3", 2.0)]
    public void Every_cluster_probes_at_the_configured_interval_else_every_2_s(string? setting, double expected)
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Gateway:HealthProbeSeconds"] = setting })
            .Build();

        var clusters = ProxyConfig.Clusters(configuration);

        Assert.NotEmpty(clusters);
        Assert.All(clusters, cluster =>
        {
            var active = cluster.HealthCheck!.Active!;
            Assert.True(active.Enabled);
            Assert.Equal(TimeSpan.FromSeconds(expected), active.Interval);
            Assert.Equal(TimeSpan.FromSeconds(expected), active.Timeout);
        });
    }

    [Fact]
    public void A_replica_marked_down_by_failed_requests_is_out_for_the_clusters_reactivation_period_not_a_minute()
    {
        // YARP keeps such a destination out for max(ReactivationPeriod, DetectionWindowSize); the
        // window's default is 60 s.
        var builder = WebApplication.CreateBuilder();
        builder.AddLibraryProxy();
        using var services = builder.Services.BuildServiceProvider();
        var window = services.GetRequiredService<IOptions<TransportFailureRateHealthPolicyOptions>>().Value.DetectionWindowSize;

        Assert.All(ProxyConfig.Clusters(builder.Configuration), cluster =>
        {
            var passive = cluster.HealthCheck!.Passive!;
            Assert.True(passive.Enabled);
            Assert.Equal(TimeSpan.FromSeconds(10), passive.ReactivationPeriod);
            Assert.Equal(passive.ReactivationPeriod, window > passive.ReactivationPeriod ? window : passive.ReactivationPeriod);
        });
    }
}
