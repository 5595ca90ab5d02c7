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
    /// Waits for this request's turn; the turn, disposed when its work is done, lets the next one
    /// in. Null when there is no limit. Until then it is also <see cref="GateTurn.Current"/> for
    /// the caller's code, so the database work that has to wait to retry (a failover) steps aside
    /// meanwhile (<see cref="FailoverAwareExecutionStrategy"/>).
    /// </summary>
    /// <remarks>
    /// Not an <c>async</c> method on purpose: an AsyncLocal set in an async method is undone when
    /// it returns, one set in a synchronous method stays set in its caller's context. So the turn
    /// is current in the rest of the method that awaits this, and in everything that method calls.
    /// </remarks>
    public ValueTask<GateTurn?> EnterAsync(CancellationToken ct)
    {
        if (limiter is null)
        {
            return ValueTask.FromResult<GateTurn?>(null);
        }
        var turn = new GateTurn(this);
        GateTurn.Ambient.Value = turn;
        return turn.TakeFirstAsync(ct);
    }

    /// <summary>A permit, or the busy 503 when the queue is full.</summary>
    internal async ValueTask<RateLimitLease> AcquireAsync(CancellationToken ct)
    {
        var lease = await limiter!.AcquireAsync(1, ct);
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

/// <summary>
/// A request's turn at a <see cref="ConcurrencyGate"/>. While its database work waits to be
/// retried (<see cref="FailoverAwareExecutionStrategy"/>'s delay between attempts, while a
/// database fails over or is unreachable), the turn <see cref="StepAside">steps aside</see> and
/// lets the requests behind it run, and the next attempt <see cref="ResumeAsync">takes a turn
/// again</see> first, at the back of the queue: a request asleep between its attempts holds none
/// of the replica's few turns.
/// </summary>
public sealed class GateTurn : IDisposable
{
    internal static readonly AsyncLocal<GateTurn?> Ambient = new();
    private readonly ConcurrencyGate gate;
    private readonly Lock sync = new();
    private RateLimitLease? lease;
    private bool over;

    internal GateTurn(ConcurrencyGate gate) => this.gate = gate;

    /// <summary>The turn of the work running here (set by <see cref="ConcurrencyGate.EnterAsync"/>), or null.</summary>
    public static GateTurn? Current => Ambient.Value;

    /// <summary>Whether this turn holds its permit now.</summary>
    public bool Holds
    {
        get
        {
            lock (sync)
            {
                return lease is not null;
            }
        }
    }

    internal async ValueTask<GateTurn?> TakeFirstAsync(CancellationToken ct)
    {
        try
        {
            await ResumeAsync(ct);
            return this;
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Gives the permit back until <see cref="ResumeAsync"/> (nothing when not held).</summary>
    public void StepAside()
    {
        lock (sync)
        {
            lease?.Dispose();
            lease = null;
        }
    }

    /// <summary>Takes a permit again if this turn stepped aside (and is not over); otherwise nothing.</summary>
    public async ValueTask ResumeAsync(CancellationToken ct)
    {
        lock (sync)
        {
            if (lease is not null || over)
            {
                return;
            }
        }
        var taken = await gate.AcquireAsync(ct);
        lock (sync)
        {
            if (lease is null && !over)
            {
                lease = taken;
                return;
            }
        }
        taken.Dispose();
    }

    /// <summary>Synchronous <see cref="ResumeAsync"/>, for EF's synchronous execution.</summary>
    public void Resume() => ResumeAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();

    public void Dispose()
    {
        lock (sync)
        {
            over = true;
            lease?.Dispose();
            lease = null;
        }
        if (Ambient.Value == this)
        {
            Ambient.Value = null;
        }
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
