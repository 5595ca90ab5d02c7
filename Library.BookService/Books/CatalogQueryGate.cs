using System.Diagnostics.Metrics;
using System.Threading.RateLimiting;
using Library.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace Library.BookService.Books;

/// <summary>
/// Admission of the catalog's uncached reads whose cost varies with the catalog (a search or a
/// list page, its facets, recommendations): at most <see cref="SearchOptions.QueryConcurrency"/>
/// of them run against PostgreSQL at once per replica, and the rest wait here in arrival order.
/// Cached answers, a book by ID and every write pass by it.
/// </summary>
/// <remarks>
/// Why: with every request in PostgreSQL at once, its backends share the cores, so each search
/// takes its own cost times the number running, and an expensive one (a misspelt word ranks
/// every match: 2x a plain search) comes last by that factor. Queued in arrival order, each runs
/// at nearly the cores' full speed after a wait that is about the same for all: the mean stays
/// (16 connections over the same throughput), the tail shrinks. At 100,000 titles, 16
/// connections, one replica on this 2-core machine, 4 at once against no limit: p99 91-165 ms
/// against 161-205 ms at 0.98-1.01x the throughput; 2 at once cost a quarter of the throughput (a
/// search's round trips leave the cores idle), 8 kept most of the tail (bench/README.md,
/// "Issue 15, session 36"). So the limit is for the database's cores, shared by every replica:
/// the launchers that run PostgreSQL on the same machine (the AppHost, eng/processes.sh) give
/// each replica its share of 2 per core, and a replica on its own takes 2 per core of its machine.
/// A request that finds <see cref="SearchOptions.QueryQueue"/> already waiting is answered 503
/// with Retry-After at once (<see cref="DependencyUnavailableException"/>), having read nothing.
/// </remarks>
public sealed class CatalogQueryGate : IDisposable
{
    private readonly ConcurrencyLimiter? limiter;

    public const string MeterName = "Library.Catalog";

    public CatalogQueryGate(IOptions<SearchOptions> options, IMeterFactory meters)
    {
        var permits = options.Value.QueryConcurrency ?? 2 * Environment.ProcessorCount;
        Permits = permits;
        limiter = permits > 0
            ? new ConcurrencyLimiter(new ConcurrencyLimiterOptions
            {
                PermitLimit = permits,
                QueueLimit = options.Value.QueryQueue,
                QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
            })
            : null;
        // An operator sees the searches waiting for their turn, next to their latency.
        var meter = meters.Create(MeterName);
        meter.CreateObservableGauge("library.catalog.queries.waiting", () => Statistics?.CurrentQueuedCount ?? 0, description: "Uncached catalog reads waiting for their turn (Catalog:QueryConcurrency)");
        meter.CreateObservableGauge("library.catalog.queries.running", () => Permits - (Statistics?.CurrentAvailablePermits ?? Permits), description: "Uncached catalog reads running against PostgreSQL");
    }

    /// <summary>The limiter's counts now (null: no limit).</summary>
    public RateLimiterStatistics? Statistics => limiter?.GetStatistics();

    /// <summary>How many run at once (0: no limit).</summary>
    public int Permits { get; }

    /// <summary>
    /// Waits for this request's turn (cancelled with the request); the lease, disposed when its
    /// reads are done, lets the next one in. Null when there is no limit.
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
            throw new DependencyUnavailableException("catalog", detail:
                $"The catalog has {Permits} searches running and as many waiting as it queues; nothing was read. Try again in {DependencyUnavailableException.RetryAfterSeconds} s.");
        }
        return lease;
    }

    public void Dispose() => limiter?.Dispose();
}
