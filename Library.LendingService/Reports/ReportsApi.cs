using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Text;
using Library.LendingService.Data;
using Library.LendingService.Rules;
using Library.LendingService.Validation;
using Library.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Net.Http.Headers;
using NodaTime;

namespace Library.LendingService.Reports;

public sealed record CirculationDay(DateOnly Date, long Loans, long Returns, long Renewals, long HoldsPlaced, long HoldsFilled, long Overdue,
    long FinesCharged, long FinesPaid);

public sealed record CirculationTotals(long Loans, long Returns, long Renewals, long HoldsPlaced, long HoldsFilled, long Overdue, long FinesCharged, long FinesPaid);

/// <summary>Per day of the library's time zone; fines in minor units (the amounts charged and paid that day).</summary>
public sealed record CirculationReport(DateOnly From, DateOnly To, string TimeZone, IReadOnlyList<CirculationDay> Days, CirculationTotals Totals);

public sealed record PopularTitle(Guid BookId, string Title, long Loans);

public sealed record PopularReport(DateOnly From, DateOnly To, string TimeZone, IReadOnlyList<PopularTitle> Titles);

/// <summary>
/// Librarians' reports, each one SQL query over lendingdb. Days are the library's calendar days
/// (its time zone); both dates are included. They count loans, not readers, so anonymised loans
/// count the same. JSON, or CSV for <c>Accept: text/csv</c>.
/// </summary>
public static class ReportsApi
{
    /// <summary>Three years: a year-on-year comparison fits, and no request scans the whole history forever.</summary>
    public const int MaxDays = 3 * 366;
    public const int DefaultLimit = 10;
    public const int MaxLimit = 100;
    public const string FromRequired = "from is required (yyyy-MM-dd).";
    public const string FromFormat = "from must be a date as yyyy-MM-dd.";
    public const string ToRequired = "to is required (yyyy-MM-dd).";
    public const string ToFormat = "to must be a date as yyyy-MM-dd.";
    public const string LimitRule = "limit must be between 1 and 100.";
    private const string Csv = "text/csv";

    public static IEndpointRouteBuilder MapReports(this IEndpointRouteBuilder app)
    {
        // Not gated: a year's report reads for seconds, and would hold a turn of the desk's requests.
        var reports = app.MapGroup("/api/reports").WithTags("Reports").RequireAuthorization(Policies.Librarian).WithMetadata(NotGated.Instance);
        reports.MapGet("/circulation", Circulation).WithName("GetCirculationReport")
            .WithSummary("Circulation per day")
            .WithDescription("Librarians: per day of the library's time zone, from and to included (at most 1098 days): loans, returns, renewals, holds placed and filled, "
                + "loans fallen overdue, fines charged and paid (minor units), and the totals. JSON, or CSV with Accept: text/csv.")
            .Produces<string>(StatusCodes.Status200OK, Csv);
        reports.MapGet("/popular", Popular).WithName("GetPopularReport")
            .WithSummary("Most borrowed titles")
            .WithDescription("Librarians: the titles most borrowed between from and to (included), limit of them (1 to 100, default 10), ties in title ID order. "
                + "JSON, or CSV with Accept: text/csv.")
            .Produces<string>(StatusCodes.Status200OK, Csv);
        return app;
    }

    // Fines charged and paid per day, as money in minor units (sums, not counts): a charge counts on
    // the day it was made (fines.created_at), a payment on the day it was taken (a fine_transactions
    // row of kind 'payment'); waivers are not payments. Both by their created_at indexes.
    private const string FinesCtes = """
        fines_charged AS (SELECT (created_at AT TIME ZONE {2})::date AS day, sum(amount) AS n FROM fines
            WHERE created_at >= {3} AND created_at < {4} GROUP BY 1),
        fines_paid AS (SELECT (created_at AT TIME ZONE {2})::date AS day, sum(amount) AS n FROM fine_transactions
            WHERE kind = 'payment' AND created_at >= {3} AND created_at < {4} GROUP BY 1)
        """;

    private static async Task<Results<Ok<CirculationReport>, FileContentHttpResult, ValidationProblem>> Circulation(HttpContext http, LendingDbContext db,
        CirculationSettings settings, TimeProvider time,
        [Required(ErrorMessage = FromRequired), StringLength(10, ErrorMessage = FromFormat), RegularExpression(InputLimits.DatePattern, ErrorMessage = FromFormat)] string? from,
        [Required(ErrorMessage = ToRequired), StringLength(10, ErrorMessage = ToFormat), RegularExpression(InputLimits.DatePattern, ErrorMessage = ToFormat)] string? to,
        CancellationToken ct)
    {
        if (!TryRange(from, to, out var first, out var last, out var problem))
        {
            return problem!;
        }
        var zone = (await settings.CurrentAsync(ct)).Calendar.Zone;
        var (start, end) = Window(zone, first, last);
        var tz = zone.Id;
        var now = time.GetUtcNow();
        // Overdue: loans whose due moment fell on that day (and has passed) and that were not back by then.
        var sql = $$"""
            WITH days AS (SELECT g::date AS day FROM generate_series({0}::date, {1}::date, interval '1 day') g),
            loans_out AS (SELECT (borrowed_at AT TIME ZONE {2})::date AS day, count(*) AS n FROM loans
                WHERE borrowed_at >= {3} AND borrowed_at < {4} GROUP BY 1),
            loans_back AS (SELECT (returned_at AT TIME ZONE {2})::date AS day, count(*) AS n FROM loans
                WHERE returned_at >= {3} AND returned_at < {4} GROUP BY 1),
            renewals AS (SELECT (renewed_at AT TIME ZONE {2})::date AS day, count(*) AS n FROM loan_renewals
                WHERE renewed_at >= {3} AND renewed_at < {4} GROUP BY 1),
            holds_placed AS (SELECT (placed_at AT TIME ZONE {2})::date AS day, count(*) AS n FROM holds
                WHERE placed_at >= {3} AND placed_at < {4} GROUP BY 1),
            holds_filled AS (SELECT (closed_at AT TIME ZONE {2})::date AS day, count(*) AS n FROM holds
                WHERE status = 'fulfilled' AND closed_at >= {3} AND closed_at < {4} GROUP BY 1),
            overdue AS (SELECT (due_at AT TIME ZONE {2})::date AS day, count(*) AS n FROM loans
                WHERE due_at >= {3} AND due_at < {4} AND due_at < {5} AND (returned_at IS NULL OR returned_at > due_at) GROUP BY 1),
            {{FinesCtes}}
            SELECT d.day AS date,
                coalesce(lo.n, 0) AS loans, coalesce(lb.n, 0) AS returns, coalesce(rn.n, 0) AS renewals,
                coalesce(hp.n, 0) AS holds_placed, coalesce(hf.n, 0) AS holds_filled, coalesce(od.n, 0) AS overdue,
                coalesce(fc.n, 0)::bigint AS fines_charged, coalesce(fp.n, 0)::bigint AS fines_paid
            FROM days d
            LEFT JOIN loans_out lo ON lo.day = d.day
            LEFT JOIN loans_back lb ON lb.day = d.day
            LEFT JOIN renewals rn ON rn.day = d.day
            LEFT JOIN holds_placed hp ON hp.day = d.day
            LEFT JOIN holds_filled hf ON hf.day = d.day
            LEFT JOIN overdue od ON od.day = d.day
            LEFT JOIN fines_charged fc ON fc.day = d.day
            LEFT JOIN fines_paid fp ON fp.day = d.day
            ORDER BY d.day
            """;
        var days = await WithoutJitAsync(db, token => db.Database.SqlQueryRaw<CirculationDay>(sql, first, last, tz, start, end, now).ToListAsync(token), ct);
        var totals = new CirculationTotals(days.Sum(d => d.Loans), days.Sum(d => d.Returns), days.Sum(d => d.Renewals), days.Sum(d => d.HoldsPlaced),
            days.Sum(d => d.HoldsFilled), days.Sum(d => d.Overdue), days.Sum(d => d.FinesCharged), days.Sum(d => d.FinesPaid));
        if (WantsCsv(http))
        {
            return CsvFile($"circulation-{first:yyyy-MM-dd}-{last:yyyy-MM-dd}.csv",
                ["date", "loans", "returns", "renewals", "holdsPlaced", "holdsFilled", "overdue", "finesCharged", "finesPaid"],
                days.Select(d => new object[] { d.Date, d.Loans, d.Returns, d.Renewals, d.HoldsPlaced, d.HoldsFilled, d.Overdue, d.FinesCharged, d.FinesPaid }));
        }
        return TypedResults.Ok(new CirculationReport(first, last, tz, days, totals));
    }

    private static async Task<Results<Ok<PopularReport>, FileContentHttpResult, ValidationProblem>> Popular(HttpContext http, LendingDbContext db,
        CirculationSettings settings,
        [Required(ErrorMessage = FromRequired), StringLength(10, ErrorMessage = FromFormat), RegularExpression(InputLimits.DatePattern, ErrorMessage = FromFormat)] string? from,
        [Required(ErrorMessage = ToRequired), StringLength(10, ErrorMessage = ToFormat), RegularExpression(InputLimits.DatePattern, ErrorMessage = ToFormat)] string? to,
        [Range(1, MaxLimit, ErrorMessage = LimitRule)] int? limit, CancellationToken ct)
    {
        if (!TryRange(from, to, out var first, out var last, out var problem))
        {
            return problem!;
        }
        var zone = (await settings.CurrentAsync(ct)).Calendar.Zone;
        var (start, end) = Window(zone, first, last);
        var take = limit ?? DefaultLimit;
        // Counted per title first, the name joined to the few kept; ties in title id order.
        var titles = await WithoutJitAsync(db, token => db.Database.SqlQuery<PopularTitle>($"""
            SELECT p.book_id, t.name AS title, p.loans
            FROM (SELECT book_id, count(*) AS loans FROM loans WHERE borrowed_at >= {start} AND borrowed_at < {end}
                  GROUP BY book_id ORDER BY count(*) DESC, book_id LIMIT {take}) p
            JOIN titles t ON t.id = p.book_id
            ORDER BY p.loans DESC, p.book_id
            """).ToListAsync(token), ct);
        if (WantsCsv(http))
        {
            return CsvFile($"popular-{first:yyyy-MM-dd}-{last:yyyy-MM-dd}.csv", ["bookId", "title", "loans"],
                titles.Select(t => new object[] { t.BookId, t.Title, t.Loans }));
        }
        return TypedResults.Ok(new PopularReport(first, last, zone.Id, titles));
    }

    /// <summary>
    /// Runs a report with PostgreSQL's JIT off: a year's report costs enough to be compiled, and the
    /// compilation took longer than the query (bench/README.md: 300 -> 100 ms a year, 230 -> 21 ms a month).
    /// </summary>
    private static Task<T> WithoutJitAsync<T>(LendingDbContext db, Func<CancellationToken, Task<T>> query, CancellationToken ct) =>
        db.Database.CreateExecutionStrategy().ExecuteAsync(async token =>
        {
            await using var transaction = await db.Database.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, token);
            await db.Database.ExecuteSqlAsync($"SET LOCAL jit = off", token);
            var result = await query(token);
            await transaction.CommitFinishedAsync();
            return result;
        }, ct);

    /// <summary>
    /// from and to: ISO dates, both required, to not before from, at most <see cref="MaxDays"/> days.
    /// The annotations on the parameters refuse a missing or misshapen date first; this says what a
    /// pattern cannot: a real calendar date, within the years a report can mean, and the range's order and length.
    /// </summary>
    private static readonly DateOnly EarliestDay = new(1900, 1, 1);
    private static readonly DateOnly LatestDay = new(9998, 12, 31);

    public static bool TryRange(string? from, string? to, out DateOnly first, out DateOnly last, out ValidationProblem? problem)
    {
        var errors = new Dictionary<string, string[]>();
        first = last = default;
        if (string.IsNullOrWhiteSpace(from))
        {
            errors["from"] = ["from is required (yyyy-MM-dd)."];
        }
        else if (!DateOnly.TryParseExact(from, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out first))
        {
            errors["from"] = ["from must be a date as yyyy-MM-dd."];
        }
        if (string.IsNullOrWhiteSpace(to))
        {
            errors["to"] = ["to is required (yyyy-MM-dd)."];
        }
        else if (!DateOnly.TryParseExact(to, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out last))
        {
            errors["to"] = ["to must be a date as yyyy-MM-dd."];
        }
        // Dates a report can mean (and the time zones' arithmetic can reach without overflowing).
        foreach (var (name, day) in new[] { ("from", first), ("to", last) })
        {
            if (!errors.ContainsKey(name) && (day < EarliestDay || day > LatestDay))
            {
                errors[name] = [$"{name} must be between {EarliestDay:yyyy-MM-dd} and {LatestDay:yyyy-MM-dd}."];
            }
        }
        if (errors.Count == 0 && last < first)
        {
            errors["to"] = ["to must not be before from."];
        }
        else if (errors.Count == 0 && last.DayNumber - first.DayNumber + 1 > MaxDays)
        {
            errors["to"] = [$"The range must be at most {MaxDays} days."];
        }
        problem = errors.Count == 0 ? null : TypedResults.ValidationProblem(errors);
        return problem is null;
    }

    /// <summary>The instants the library's days begin: from the start of the first day to the start of the day after the last.</summary>
    private static (DateTimeOffset Start, DateTimeOffset End) Window(DateTimeZone zone, DateOnly first, DateOnly last) =>
        (zone.AtStartOfDay(LocalDate.FromDateOnly(first)).ToDateTimeOffset().ToUniversalTime(),
         zone.AtStartOfDay(LocalDate.FromDateOnly(last).PlusDays(1)).ToDateTimeOffset().ToUniversalTime());

    private static bool WantsCsv(HttpContext http) =>
        http.Request.GetTypedHeaders().Accept.Any(a => a.MediaType.Equals("text/csv", StringComparison.OrdinalIgnoreCase));

    /// <summary>RFC 4180: a header row, CRLF, fields quoted when they hold a comma, quote or line break.</summary>
    private static FileContentHttpResult CsvFile(string fileName, IReadOnlyList<string> header, IEnumerable<object[]> rows)
    {
        var text = new StringBuilder();
        text.Append(string.Join(',', header)).Append("\r\n");
        foreach (var row in rows)
        {
            text.Append(string.Join(',', row.Select(Field))).Append("\r\n");
        }
        return TypedResults.File(Encoding.UTF8.GetBytes(text.ToString()), "text/csv; charset=utf-8", fileName);
    }

    private static string Field(object value)
    {
        var s = value switch
        {
            DateOnly d => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            // A title is text anyone cataloguing wrote: safe for spreadsheets (SpreadsheetText).
            _ => Library.ServiceDefaults.SpreadsheetText.ToCell(value.ToString() ?? ""),
        };
        return s.IndexOfAny([',', '"', '\r', '\n']) >= 0 ? $"\"{s.Replace("\"", "\"\"", StringComparison.Ordinal)}\"" : s;
    }
}
