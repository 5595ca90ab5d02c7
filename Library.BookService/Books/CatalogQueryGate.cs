using Library.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace Library.BookService.Books;

/// <summary>
/// The catalog's <see cref="ConcurrencyGate"/>: the uncached reads whose cost varies with the
/// catalog (a search or a list page, its facets, recommendations) take turns,
/// <see cref="SearchOptions.QueryConcurrency"/> at once per replica and
/// <see cref="SearchOptions.QueryQueue"/> waiting. Cached answers, a book by ID and every write
/// pass by it.
/// </summary>
/// <remarks>
/// A misspelt word ranks every match (2x a plain search): all at once, those made the tail. At
/// 100,000 titles, 16 connections, one replica on this 2-core machine, 4 at once against no limit:
/// p99 91-165 ms against 161-205 ms at 0.98-1.01x the throughput; 2 at once cost a quarter of the
/// throughput (a search's round trips leave the cores idle), 8 kept most of the tail
/// (bench/README.md, "Issue 15, session 36").
/// </remarks>
public sealed class CatalogQueryGate(IOptions<SearchOptions> options, System.Diagnostics.Metrics.IMeterFactory meters, ILogger<CatalogQueryGate> logger)
    : ConcurrencyGate(options.Value.QueryConcurrency, options.Value.QueryQueue, meters, MeterName, "library.catalog.queries", "catalog", "searches", logger)
{
    public const string MeterName = "Library.Catalog";

    /// <summary>The gated operations' documented 503 (every operation documents one; this says when the gate answers it).</summary>
    public const string BusyAnswer = "503 with Retry-After when Catalog:QueryQueue searches already wait their turn (uncached searches run a few at a time per replica, Catalog:QueryConcurrency).";
}
