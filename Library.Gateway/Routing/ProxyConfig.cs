using Microsoft.Extensions.Primitives;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.LoadBalancing;

namespace Library.Gateway.Routing;

/// <summary>
/// YARP's routes, from <see cref="ApiRoutes"/>, and one cluster per service whose one destination
/// is a service-discovery name (<c>http+https://{service}</c>). Microsoft.Extensions.ServiceDiscovery.Yarp
/// (<c>AddServiceDiscoveryDestinationResolver</c>) expands it into one destination per endpoint
/// in Aspire's keys <c>services:{service}:http:{i}</c> (the <c>https</c> ones when no http
/// endpoint is given), so N replicas are N destinations, balanced by power of two choices,
/// checked actively on <c>/health</c> and passively on failures, and resolved again when the
/// configuration changes.
/// </summary>
public static class ProxyConfig
{
    /// <summary>
    /// The catalog import (POST <see cref="Limits.ImportPath"/>) goes to the book service through a
    /// cluster of its own: the same replicas, but its own timeout (<c>Timeouts:import</c>, 300 s),
    /// as a whole catalog file takes longer than any other request to answer (bench/import.sh).
    /// </summary>
    public const string ImportCluster = "bookservice-import";

    /// <summary>How long a replica whose requests failed (passive health check) stays out of the rotation.</summary>
    public static readonly TimeSpan PassiveReactivation = TimeSpan.FromSeconds(10);

    public static IReverseProxyBuilder AddLibraryProxy(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<RetryMetrics>();
        var proxy = builder.Services.AddReverseProxy()
            .LoadFromMemory(Routes(), Clusters(builder.Configuration))
            .AddServiceDiscoveryDestinationResolver();
        // YARP keeps a destination its passive check marked down out of the rotation for the
        // longer of the cluster's ReactivationPeriod and the failure-rate window
        // (DetectionWindowSize, 60 s by default): with the default, a replica that was killed and
        // started again got no request for a minute, whatever its /health probe said (the fault
        // suite's F9 saw one still out when it was killed again). The window at the reactivation
        // period: out for 10 s, as the clusters say.
        builder.Services.Configure<TransportFailureRateHealthPolicyOptions>(o => o.DetectionWindowSize = PassiveReactivation);
        // Route timeouts (Timeouts:*) follow the configuration too, as the endpoints do.
        builder.Services.AddHostedService<ReloadOnConfigurationChange>();
        return proxy;
    }

    public static IReadOnlyList<RouteConfig> Routes()
    {
        var routes = ApiRoutes.Table.Select((entry, i) => new RouteConfig
        {
            RouteId = $"{entry.Service}-{i}",
            ClusterId = entry.Service,
            Match = new RouteMatch { Path = entry.Prefix + "/{**rest}" },
        }).ToList();
        routes.Add(new RouteConfig
        {
            RouteId = ImportCluster,
            ClusterId = ImportCluster,
            Match = new RouteMatch { Path = Limits.ImportPath, Methods = ["POST"] },
            Order = -1, // before /api/books/{**rest}
        });
        // Each service's OpenAPI document, for the docs page: /openapi/{service}.json.
        routes.AddRange(ApiRoutes.Services.Select(service => new RouteConfig
        {
            RouteId = $"{service}-openapi",
            ClusterId = service,
            Match = new RouteMatch { Path = $"/openapi/{service}.json", Methods = ["GET"] },
            // The service writes the document's `servers` from the request's Host: the gateway's
            // own (the client's), so the docs page's "Test Request" and curl examples go through
            // the gateway, not to a replica behind it.
            Transforms =
            [
                new Dictionary<string, string> { ["PathSet"] = "/openapi/v1.json" },
                new Dictionary<string, string> { ["RequestHeaderOriginalHost"] = "true" },
            ],
        }));
        return routes;
    }

    public static IReadOnlyList<ClusterConfig> Clusters(IConfiguration configuration) =>
        [
            .. ApiRoutes.Services.Select(service => Cluster(service, service, RouteTimeout(configuration, service), HealthProbeInterval(configuration))),
            Cluster(ImportCluster, ApiRoutes.BookService, ImportTimeout(configuration), HealthProbeInterval(configuration)),
        ];

    private static ClusterConfig Cluster(string id, string service, TimeSpan timeout, TimeSpan probe) =>
        new()
        {
            ClusterId = id,
            LoadBalancingPolicy = LoadBalancingPolicies.PowerOfTwoChoices,
            // A replica that has not answered (headers) in time: 504 problem details (a GET is
            // first tried once more on another replica).
            HttpRequest = new Yarp.ReverseProxy.Forwarder.ForwarderRequestConfig { ActivityTimeout = timeout },
            Destinations = new Dictionary<string, DestinationConfig>
            {
                [service] = new() { Address = $"http+https://{service}" },
            },
            HealthCheck = new HealthCheckConfig
            {
                // With no destination healthy, try them all rather than answer 503: under the
                // AppHost a service's one destination is Aspire's endpoint proxy in front of its
                // replicas, and a probe that reached a draining replica must not take the whole
                // service out.
                AvailableDestinationsPolicy = HealthyOrPanic,
                // Every 2 s (Gateway:HealthProbeSeconds), out after two failures in a row: a
                // replica shutting down answers 503 on /health while it still serves for
                // Shutdown:DrainSeconds (5 s, GracefulShutdown), so it leaves the rotation before
                // it stops accepting.
                Active = new ActiveHealthCheckConfig
                {
                    Enabled = true,
                    Interval = probe,
                    Timeout = probe,
                    Policy = "ConsecutiveFailures",
                    Path = "/health",
                },
                Passive = new PassiveHealthCheckConfig
                {
                    Enabled = true,
                    Policy = "TransportFailureRate",
                    ReactivationPeriod = PassiveReactivation,
                },
            },
        };

    /// <summary>YARP's policy name: the healthy destinations, or every destination when none is.</summary>
    private const string HealthyOrPanic = "HealthyOrPanic";

    /// <summary>
    /// <c>Gateway:HealthProbeSeconds</c>, else 2 s: how often each replica's /health is probed (and
    /// how long a probe may take). A drain (Shutdown:DrainSeconds) must outlast two of them; the
    /// fault suite's stack probes every 1 s and drains its services for 2.5 s, the same ratio.
    /// </summary>
    public static TimeSpan HealthProbeInterval(IConfiguration configuration)
    {
        var seconds = configuration.GetValue<double?>("Gateway:HealthProbeSeconds") ?? 2;
        return TimeSpan.FromSeconds(seconds > 0 ? seconds : 2);
    }

    /// <summary><c>Timeouts:{service}</c> seconds, else <c>Timeouts:Default</c>, else 30 s.</summary>
    public static TimeSpan RouteTimeout(IConfiguration configuration, string service)
    {
        var seconds = configuration.GetValue<double?>($"Timeouts:{service}") ?? configuration.GetValue<double?>("Timeouts:Default") ?? 30;
        return TimeSpan.FromSeconds(seconds > 0 ? seconds : 30);
    }

    /// <summary><c>Timeouts:import</c> seconds, else 300 s.</summary>
    public static TimeSpan ImportTimeout(IConfiguration configuration)
    {
        var seconds = configuration.GetValue<double?>("Timeouts:import") ?? 300;
        return TimeSpan.FromSeconds(seconds > 0 ? seconds : 300);
    }

    private sealed class ReloadOnConfigurationChange(IConfiguration configuration, InMemoryConfigProvider proxy) : IHostedService, IDisposable
    {
        private IDisposable? _subscription;

        public Task StartAsync(CancellationToken cancellationToken)
        {
            _subscription = ChangeToken.OnChange(configuration.GetReloadToken, () => proxy.Update(Routes(), Clusters(configuration)));
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public void Dispose() => _subscription?.Dispose();
    }
}
