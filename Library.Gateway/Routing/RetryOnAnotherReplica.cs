using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;

namespace Library.Gateway.Routing;

/// <summary>
/// A request that failed to reach a replica (connection refused or reset: the replica is dying;
/// or no answer within the route's timeout) is sent once more to another replica of the same
/// service before the client sees an error, when sending it twice is safe: a GET or HEAD, or a
/// write that carries an <c>Idempotency-Key</c> to an endpoint that answers a repeated key with
/// the first answer and does nothing again (<see cref="ApiRoutes.HonoursIdempotencyKey"/>: the
/// lending service's writes). Such a write's body (small: the gateway's body limit) is read into
/// memory first so it can be sent again. Never once a byte of the answer has gone to the client.
/// The failed replica is also reported to passive health checks by YARP, so it leaves the
/// rotation within seconds. A service the gateway reaches through one address (a proxy in front
/// of its replicas, as under the AppHost) is sent the request again through that address, on a
/// new connection: the cluster's pool may hold more connections to the same dying replica (YARP's
/// health probes share it), and the retry must not take one of them.
/// </summary>
public static class RetryOnAnotherReplica
{
    public const string IdempotencyKeyHeader = "Idempotency-Key";

    public static void UseRetryOnAnotherReplica(this IReverseProxyApplicationBuilder proxy, long maxBodyBytes)
    {
        var metrics = proxy.ApplicationServices.GetRequiredService<RetryMetrics>();
        proxy.Use((context, next) => RetryAsync(context, next, maxBodyBytes, metrics));
    }

    private static async Task RetryAsync(HttpContext context, Func<Task> next, long maxBodyBytes, RetryMetrics metrics)
    {
        var proxyFeature = context.GetReverseProxyFeature();
        var candidates = proxyFeature.AvailableDestinations;
        var request = context.Request;
        var safe = HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method);
        var keyed = !safe && candidates.Count > 0
            && !string.IsNullOrEmpty(request.Headers[IdempotencyKeyHeader].ToString())
            && ApiRoutes.HonoursIdempotencyKey(request.Method, request.Path);
        MemoryStream? body = null;
        if (keyed && context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody != false)
        {
            body = await BufferAsync(context, maxBodyBytes);
            if (body is null)
            {
                await Results.Problem(statusCode: StatusCodes.Status413PayloadTooLarge, title: "Request too large",
                    detail: $"Bodies are limited to {maxBodyBytes} bytes.").ExecuteAsync(context);
                return;
            }
        }

        await next();

        var error = context.GetForwarderErrorFeature();
        if (error is null || context.Response.HasStarted || !(safe || keyed)
            || error.Error is not (ForwarderError.Request or ForwarderError.RequestTimedOut or ForwarderError.NoAvailableDestinations or ForwarderError.RequestBodyDestination))
        {
            return;
        }

        var failed = proxyFeature.ProxiedDestination;
        var others = candidates.Where(d => !ReferenceEquals(d, failed)).ToList();
        if (others.Count == 0)
        {
            // One address for the service: a proxy in front of its replicas (Aspire's endpoint
            // proxy under the AppHost, an ingress in Azure). A connection it could not complete
            // was to a replica that is going; the retry's new connection goes to another one. Not
            // after a timeout: that may be the same slow replica again, and twice the wait.
            if (failed is null || candidates.Count != 1 || error.Error == ForwarderError.RequestTimedOut)
            {
                return;
            }
            others = [failed];
            UseNewConnections(context, proxyFeature);
        }

        context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Library.Gateway.Retry")
            .LogWarning("{Method} {Path} failed on {Destination} ({Error}); retrying on another replica{Keyed}",
                request.Method, request.Path, failed?.DestinationId, error.Error, keyed ? " (same Idempotency-Key)" : "");
        metrics.Retried(failed?.DestinationId, keyed);
        context.Features.Set<IForwarderErrorFeature>(null);
        context.Response.Clear();
        context.Response.StatusCode = StatusCodes.Status200OK;
        if (body is not null)
        {
            body.Position = 0;
        }
        proxyFeature.AvailableDestinations = others;
        await next();
    }

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<ClusterModel, ClusterModel> NewConnectionClusters = new();

    /// <summary>
    /// Replaces the request's proxy feature by one with its cluster's connections replaced by ones never reused
    /// (<see cref="NewConnectionsFactory"/>), for the retry through one address; the forwarder reads
    /// the cluster's <see cref="ClusterModel.HttpClient"/> from it.
    /// </summary>
    private static void UseNewConnections(HttpContext context, IReverseProxyFeature feature)
    {
        var cluster = NewConnectionClusters.GetValue(feature.Cluster, c => new ClusterModel(c.Config,
            new NewConnectionsFactory().CreateClient(new ForwarderHttpClientContext
            {
                ClusterId = c.Config.ClusterId,
                NewConfig = c.Config.HttpClient ?? HttpClientConfig.Empty,
                NewMetadata = c.Config.Metadata,
            })));
        context.Features.Set<IReverseProxyFeature>(new RetryFeature(feature, cluster));
    }

    /// <summary>YARP's own client settings, with every connection closed after its one request.</summary>
    private sealed class NewConnectionsFactory : ForwarderHttpClientFactory
    {
        protected override void ConfigureHandler(ForwarderHttpClientContext context, SocketsHttpHandler handler)
        {
            base.ConfigureHandler(context, handler);
            handler.PooledConnectionLifetime = TimeSpan.Zero;
        }
    }

    private sealed class RetryFeature(IReverseProxyFeature inner, ClusterModel cluster) : IReverseProxyFeature
    {
        public RouteModel Route => inner.Route;
        public ClusterModel Cluster => cluster;
        public IReadOnlyList<DestinationState> AllDestinations => inner.AllDestinations;
        public IReadOnlyList<DestinationState> AvailableDestinations { get => inner.AvailableDestinations; set => inner.AvailableDestinations = value; }
        public DestinationState? ProxiedDestination { get => inner.ProxiedDestination; set => inner.ProxiedDestination = value; }
    }

    /// <summary>
    /// The whole body in memory, in place of the request's stream, so it can be sent twice; null
    /// past <paramref name="maxBodyBytes"/> (a chunked body has no declared length to refuse first).
    /// </summary>
    private static async Task<MemoryStream?> BufferAsync(HttpContext context, long maxBodyBytes)
    {
        var buffer = new MemoryStream();
        context.Response.RegisterForDispose(buffer);
        var chunk = new byte[8192];
        try
        {
            int read;
            while ((read = await context.Request.Body.ReadAsync(chunk, context.RequestAborted)) > 0)
            {
                if (buffer.Length + read > maxBodyBytes)
                {
                    return null;
                }
                buffer.Write(chunk, 0, read);
            }
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return null;
        }
        buffer.Position = 0;
        context.Request.Body = buffer;
        return buffer;
    }
}

/// <summary>
/// The gateway's retry counter (<c>library.gateway.retries</c>, meter <c>Library.Gateway</c>), from
/// the host's <see cref="IMeterFactory"/>: one meter per host, so a listener can tell one gateway's
/// retries from another's in the same process (a static meter counted every gateway of a test run
/// in each test's listener).
/// </summary>
public sealed class RetryMetrics(IMeterFactory meters)
{
    private readonly Counter<long> _retries = meters.Create("Library.Gateway")
        .CreateCounter<long>("library.gateway.retries", description: "Safe or keyed requests sent again to another replica after a transport failure");

    public void Retried(string? destination, bool keyed) =>
        _retries.Add(1, new KeyValuePair<string, object?>("destination", destination), new KeyValuePair<string, object?>("keyed", keyed));
}
