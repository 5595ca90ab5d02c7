using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;

namespace Library.Gateway.Routing;

/// <summary>
/// A GET or HEAD that failed to reach a replica (connection refused or reset: the replica is
/// dying) is sent once more to another replica of the same service before the client sees an
/// error. Only safe requests, and only when no byte of the answer has gone to the client yet.
/// The failed replica is also reported to passive health checks by YARP, so it leaves the
/// rotation within seconds.
/// </summary>
public static class RetryOnAnotherReplica
{
    public static readonly System.Diagnostics.Metrics.Meter Meter = new("Library.Gateway");
    private static readonly System.Diagnostics.Metrics.Counter<long> Retries =
        Meter.CreateCounter<long>("library.gateway.retries", description: "Safe requests sent again to another replica after a transport failure");

    public static void UseRetryOnAnotherReplica(this IReverseProxyApplicationBuilder proxy) => proxy.Use(async (context, next) =>
    {
        var proxyFeature = context.GetReverseProxyFeature();
        var candidates = proxyFeature.AvailableDestinations;
        await next();

        var error = context.GetForwarderErrorFeature();
        if (error is null || context.Response.HasStarted
            || !(HttpMethods.IsGet(context.Request.Method) || HttpMethods.IsHead(context.Request.Method))
            || error.Error is not (ForwarderError.Request or ForwarderError.RequestTimedOut or ForwarderError.NoAvailableDestinations))
        {
            return;
        }

        var failed = proxyFeature.ProxiedDestination;
        var others = candidates.Where(d => !ReferenceEquals(d, failed)).ToList();
        if (others.Count == 0)
        {
            return;
        }

        context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Library.Gateway.Retry")
            .LogWarning("{Method} {Path} failed on {Destination} ({Error}); retrying on another replica",
                context.Request.Method, context.Request.Path, failed?.DestinationId, error.Error);
        Retries.Add(1, new KeyValuePair<string, object?>("destination", failed?.DestinationId));
        context.Features.Set<IForwarderErrorFeature>(null);
        context.Response.Clear();
        context.Response.StatusCode = StatusCodes.Status200OK;
        proxyFeature.AvailableDestinations = others;
        await next();
    });
}
