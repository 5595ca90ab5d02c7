using System.Diagnostics.Metrics;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Library.ServiceDefaults;

/// <summary>
/// Admission of a service's database work: at most <see cref="Permits"/> requests run at once per
/// replica, the rest wait in arrival order (cancelled with their request), and one that finds
/// the queue full is answered 503 with Retry-After at once, before it starts
/// (<see cref="DependencyUnavailableException"/>).
/// </summary>
/// <remarks>
/// Why: with every request in PostgreSQL at once, its backends share the cores, so each takes its
/// own cost times the number running, and the work that is not a request (the outbox relay, the
/// event consumers) queues behind them too. Queued in arrival order in the service, each request
/// runs at about the cores' speed after a wait that is much the same for all: at the same
/// throughput the tail of the expensive requests and the background work's latency shrink
/// (bench/README.md, "Issue 15, session 36"). The limit is for the database's cores, shared by
/// every replica: the launchers that run PostgreSQL on the same machine (the AppHost,
/// eng/processes.sh) give each replica its share of 2 per core; a replica on its own takes 2 per
/// core of its machine (<see cref="DefaultPermits"/>).
/// </remarks>
public class ConcurrencyGate : IDisposable
{
    private readonly ConcurrencyLimiter? limiter;
    private readonly string service;
    private readonly string what;
    private readonly ILogger logger;

    /// <param name="permits">At once (null: <see cref="DefaultPermits"/>; 0: no limit).</param>
    /// <param name="queue">How many may wait.</param>
    /// <param name="meterName">The meter of the gauges <paramref name="instrument"/>.running and .waiting.</param>
    /// <param name="service">The service, as a 503's detail names it ("catalog").</param>
    /// <param name="what">What runs, plural ("searches").</param>
    protected ConcurrencyGate(int? permits, int queue, IMeterFactory meters, string meterName, string instrument, string service, string what, ILogger logger)
    {
        this.logger = logger;
        Permits = permits ?? DefaultPermits;
        Queue = queue;
        this.service = service;
        this.what = what;
        limiter = Permits > 0
            ? new ConcurrencyLimiter(new ConcurrencyLimiterOptions { PermitLimit = Permits, QueueLimit = queue, QueueProcessingOrder = QueueProcessingOrder.OldestFirst })
            : null;
        // An operator sees the requests waiting for their turn next to their latency.
        var meter = meters.Create(meterName);
        meter.CreateObservableGauge($"{instrument}.waiting", () => Statistics?.CurrentQueuedCount ?? 0, description: $"{what} waiting for their turn");
        meter.CreateObservableGauge($"{instrument}.running", () => Permits - (Statistics?.CurrentAvailablePermits ?? Permits), description: $"{what} running against the database");
    }

    /// <summary>2 per core of this machine.</summary>
    public static int DefaultPermits => 2 * Environment.ProcessorCount;

    /// <summary>How many run at once (0: no limit).</summary>
    public int Permits { get; }

    /// <summary>How many may wait.</summary>
    public int Queue { get; }

    /// <summary>The limiter's counts now (null: no limit).</summary>
    public RateLimiterStatistics? Statistics => limiter?.GetStatistics();

    /// <summary>
    /// Waits for this request's turn; the lease, disposed when its work is done, lets the next one
    /// in. Null when there is no limit.
    /// </summary>
    public async ValueTask<IDisposable?> EnterAsync(CancellationToken ct)
    {
        if (limiter is null)
        {
            return null;
        }
        var lease = await limiter.AcquireAsync(1, ct);
        if (!lease.IsAcquired)
        {
            lease.Dispose();
            // DependencyUnavailableException's thrower logs (the framework's error log is
            // suppressed for it); the request's scope carries its trace ID.
            logger.LogWarning("Turned a request away: {Permits} {What} running and {Queue} waiting", Permits, what, Queue);
            throw new DependencyUnavailableException(service, detail:
                $"The {service} has {Permits} {what} running and {Queue} waiting; this request was not started. Try again in {DependencyUnavailableException.RetryAfterSeconds} s.");
        }
        return lease;
    }

    public void Dispose()
    {
        limiter?.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>Endpoint metadata: a request to this endpoint does not wait for <see cref="ConcurrencyGate"/> (long reports, which would hold a turn for seconds).</summary>
public sealed class NotGated
{
    public static readonly NotGated Instance = new();
}

public static class ConcurrencyGateExtensions
{
    /// <summary>
    /// Every request to an endpoint under /api (after authentication and authorization: a refused
    /// request takes no turn) waits for its turn at <paramref name="gate"/>, unless the endpoint
    /// carries <see cref="NotGated"/>.
    /// </summary>
    public static IApplicationBuilder UseConcurrencyGate(this IApplicationBuilder app, ConcurrencyGate gate) =>
        app.Use(async (context, next) =>
        {
            if (gate.Permits == 0 || !context.Request.Path.StartsWithSegments("/api")
                || context.GetEndpoint() is not { } endpoint || endpoint.Metadata.GetMetadata<NotGated>() is not null)
            {
                await next(context);
                return;
            }
            using var turn = await gate.EnterAsync(context.RequestAborted);
            await next(context);
        });
}
