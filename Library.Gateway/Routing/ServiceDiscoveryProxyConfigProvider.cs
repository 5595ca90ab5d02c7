using Microsoft.Extensions.Primitives;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.LoadBalancing;

namespace Library.Gateway.Routing;

/// <summary>
/// Builds YARP's routes from <see cref="ApiRoutes"/> and its clusters from Aspire's service
/// discovery keys: every <c>services:{name}:http:{i}</c> (or <c>https</c> when no http endpoint
/// is given) is one destination, so N replicas are N destinations, balanced by power of two
/// choices and checked actively on <c>/health</c> and passively on failures. Reloads when the
/// configuration changes. (Microsoft.Extensions.ServiceDiscovery.Yarp would do this, but it is not
/// in the feed.)
/// </summary>
public sealed class ServiceDiscoveryProxyConfigProvider : IProxyConfigProvider
{
    private readonly IConfiguration _configuration;
    private readonly ILogger<ServiceDiscoveryProxyConfigProvider> _logger;
    private volatile Snapshot _snapshot;

    public ServiceDiscoveryProxyConfigProvider(IConfiguration configuration, ILogger<ServiceDiscoveryProxyConfigProvider> logger)
    {
        _configuration = configuration;
        _logger = logger;
        _snapshot = Build();
        ChangeToken.OnChange(configuration.GetReloadToken, Reload);
    }

    public IProxyConfig GetConfig() => _snapshot;

    private void Reload()
    {
        var old = _snapshot;
        _snapshot = Build();
        old.SignalChange();
    }

    private Snapshot Build()
    {
        var routes = ApiRoutes.Table.Select((entry, i) => new RouteConfig
        {
            RouteId = $"{entry.Service}-{i}",
            ClusterId = entry.Service,
            Match = new RouteMatch { Path = entry.Prefix + "/{**rest}" },
            // Anonymous GETs of the catalog may be answered at the door (CatalogOutputCache).
            OutputCachePolicy = entry.Service == ApiRoutes.BookService ? CatalogOutputCache.PolicyName : null,
        }).ToList();
        // Each service's OpenAPI document, for the docs page: /openapi/{service}.json.
        routes.AddRange(ApiRoutes.Services.Select(service => new RouteConfig
        {
            RouteId = $"{service}-openapi",
            ClusterId = service,
            Match = new RouteMatch { Path = $"/openapi/{service}.json", Methods = ["GET"] },
            Transforms = [new Dictionary<string, string> { ["PathSet"] = "/openapi/v1.json" }],
        }));

        var clusters = new List<ClusterConfig>();
        foreach (var service in ApiRoutes.Services)
        {
            var destinations = ResolveDestinations(_configuration, service);
            if (destinations.Count == 0)
            {
                _logger.LogWarning("No destination configured for {Service}: set services:{Service}:http:0", service, service);
            }
            else
            {
                _logger.LogInformation("Routing {Service} to {Destinations}", service, destinations.Values.Select(d => d.Address));
            }

            clusters.Add(new ClusterConfig
            {
                ClusterId = service,
                LoadBalancingPolicy = LoadBalancingPolicies.PowerOfTwoChoices,
                // A replica that has not answered (headers) in time: 504 problem details (a GET
                // is first tried once more on another replica).
                HttpRequest = new Yarp.ReverseProxy.Forwarder.ForwarderRequestConfig { ActivityTimeout = RouteTimeout(_configuration, service) },
                Destinations = destinations,
                HealthCheck = new HealthCheckConfig
                {
                    Active = new ActiveHealthCheckConfig
                    {
                        Enabled = true,
                        Interval = TimeSpan.FromSeconds(5),
                        Timeout = TimeSpan.FromSeconds(2),
                        Policy = "ConsecutiveFailures",
                        Path = "/health",
                    },
                    Passive = new PassiveHealthCheckConfig
                    {
                        Enabled = true,
                        Policy = "TransportFailureRate",
                        ReactivationPeriod = TimeSpan.FromSeconds(10),
                    },
                },
            });
        }

        return new Snapshot(routes, clusters);
    }

    /// <summary><c>Timeouts:{service}</c> seconds, else <c>Timeouts:Default</c>, else 30 s.</summary>
    public static TimeSpan RouteTimeout(IConfiguration configuration, string service)
    {
        var seconds = configuration.GetValue<double?>($"Timeouts:{service}") ?? configuration.GetValue<double?>("Timeouts:Default") ?? 30;
        return TimeSpan.FromSeconds(seconds > 0 ? seconds : 30);
    }

    /// <summary>The replicas of one service, from <c>services:{name}:{scheme}:{index}</c>.</summary>
    public static Dictionary<string, DestinationConfig> ResolveDestinations(IConfiguration configuration, string service)
    {
        var section = configuration.GetSection($"services:{service}");
        var endpoints = section.GetSection("http").GetChildren().ToList();
        if (endpoints.Count == 0)
        {
            endpoints = section.GetSection("https").GetChildren().ToList();
        }

        return endpoints
            .Where(e => !string.IsNullOrWhiteSpace(e.Value))
            .OrderBy(e => e.Key, StringComparer.Ordinal)
            .ToDictionary(
                e => $"{service}-{e.Key}",
                e => new DestinationConfig { Address = e.Value!.TrimEnd('/') });
    }

    // A CancellationTokenSource without a timer holds nothing to release; the snapshot's token is
    // cancelled (never disposed) when it is replaced, because YARP may still be listening to it.
#pragma warning disable CA1001
    private sealed class Snapshot(IReadOnlyList<RouteConfig> routes, IReadOnlyList<ClusterConfig> clusters) : IProxyConfig
    {
        private readonly CancellationTokenSource _changed = new();

        public IReadOnlyList<RouteConfig> Routes => routes;
        public IReadOnlyList<ClusterConfig> Clusters => clusters;
        public IChangeToken ChangeToken => new CancellationChangeToken(_changed.Token);

        public void SignalChange() => _changed.Cancel();
    }
#pragma warning restore CA1001
}
