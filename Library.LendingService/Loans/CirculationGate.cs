using System.ComponentModel.DataAnnotations;
using System.Diagnostics.Metrics;
using Library.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace Library.LendingService.Loans;

/// <summary><c>Lending:RequestConcurrency</c> and <c>Lending:RequestQueue</c> (<see cref="CirculationGate"/>).</summary>
public sealed class CirculationGateOptions
{
    /// <summary>API requests one replica runs at once (unset: 2 per core of this machine; 0: no limit).</summary>
    [Range(0, 10_000, ErrorMessage = "Lending:RequestConcurrency must be between 0 (no limit) and 10000.")]
    public int? RequestConcurrency { get; set; }

    /// <summary>How many may wait for their turn; one more is answered 503 with Retry-After.</summary>
    [Range(0, 1_000_000, ErrorMessage = "Lending:RequestQueue must be between 0 and 1000000.")]
    public int RequestQueue { get; set; } = 1000;
}

/// <summary>
/// The lending service's <see cref="ConcurrencyGate"/>: its API requests (borrows, returns, holds,
/// the desk; not the reports, which read for seconds) take turns, <c>Lending:RequestConcurrency</c>
/// at once per replica. Queued here rather than in PostgreSQL, the borrow load leaves the
/// database's cores to the outbox relay and the catalog's event consumers sooner: under the
/// borrow load the relay's part of an event's trip fell to 0.31-0.44x at its median and every
/// availability change's lag p99 to 0.24-0.86x in six of six pairs, at 0.98-1.22x the requests;
/// the borrow's own p99 did not move (bench/README.md, "Issue 15, session 36").
/// </summary>
public sealed class CirculationGate(IOptions<CirculationGateOptions> options, IMeterFactory meters, ILogger<CirculationGate> logger)
    : ConcurrencyGate(options.Value.RequestConcurrency, options.Value.RequestQueue, meters, MeterName, "library.circulation.requests", "lending service", "requests", logger)
{
    public const string MeterName = "Library.Circulation";
}
