using Library.Gateway.Routing;
using Microsoft.Extensions.Configuration;

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
}
