using System.Security.Claims;
using Library.LendingService.Copies;
using Library.LendingService.Data;
using Library.LendingService.Desk;
using Library.LendingService.Replicas;
using Library.ServiceDefaults;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Loans;

public sealed record BorrowRequest(Guid? BookId, int? Days, Guid? UserId);

public sealed record BorrowerLoan(Guid LoanId, Guid BookId, string Title, DateTimeOffset BorrowedAt, DateTimeOffset DueAt, string Status);
public sealed record Borrower(Guid UserId, string Email, string FirstName, string LastName, IReadOnlyList<BorrowerLoan> Loans);
public sealed record UnavailableBook(Guid BookId, string Title, int TotalCopies, int OnLoan, DateTimeOffset? NextAvailableAt);

public static class LoansApi
{
    /// <summary>No rule lends for longer than a year (rules are validated to this bound).</summary>
    public const int MaxDaysEver = 366;

    public static IEndpointRouteBuilder MapLoans(this IEndpointRouteBuilder app)
    {
        var loans = app.MapGroup("/api/loans").WithTags("Loans").RequireAuthorization(Policies.Member);
        loans.MapPost("/", Borrow);
        loans.MapGet("/", List);
        loans.MapGet("/{id:guid}", Get);
        loans.MapPost("/{id:guid}/return", Return);
        loans.MapPost("/{id:guid}/renew", Renew);
        app.MapGet("/api/borrowers", Borrowers).WithTags("Loans").RequireAuthorization(Policies.Librarian);
        app.MapGet("/api/unavailable-books", UnavailableBooks).WithTags("Loans").RequireAuthorization(Policies.Librarian);
        return app;
    }

    /// <summary>
    /// The reader the request acts for: a member only for themself, a librarian for anyone
    /// (themself by default). Null with a 403 when a member names someone else.
    /// </summary>
    internal static (Guid? UserId, IResult? Problem) ActingFor(ClaimsPrincipal caller, Guid? requested)
    {
        var self = caller.UserId()!.Value;
        if (requested is { } other && other != self && !caller.IsLibrarian())
        {
            return (null, Results.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden", detail: "Members act only for themselves."));
        }
        return (requested ?? self, null);
    }

    private static async Task<IResult> Borrow(
        BorrowRequest request, ClaimsPrincipal caller, HttpRequest http, LendingDbContext db, ReplicaLookup replicas,
        CirculationDesk desk, Idempotency idempotency, TimeProvider time, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        if (request.BookId is null || request.BookId == Guid.Empty)
        {
            errors["bookId"] = ["bookId is required."];
        }
        // The upper bound is the matching rule's maxLoanDays, checked with the copy (400 too).
        if (request.Days is null || request.Days < 1 || request.Days > MaxDaysEver)
        {
            errors["days"] = [$"days must be between 1 and the rule's maxLoanDays (at most {MaxDaysEver})."];
        }
        if (errors.Count > 0)
        {
            return Results.ValidationProblem(errors);
        }
        var key = http.Headers[Idempotency.Header].FirstOrDefault();
        if (Idempotency.InvalidKey(key) is { } badKey)
        {
            return badKey;
        }
        var (userId, forbidden) = ActingFor(caller, request.UserId);
        if (forbidden is not null)
        {
            return forbidden;
        }

        // Replicas first, outside the transaction (the one call to another service, if any).
        if (!await replicas.EnsureTitleAsync(request.BookId!.Value, ct))
        {
            return Outcome.NotFound("book").ToResult();
        }
        if (!await replicas.EnsureReaderAsync(userId!.Value, ct))
        {
            return Outcome.NotFound("reader").ToResult();
        }

        var outcome = await idempotency.RunAsync(caller.UserId()!.Value, key, "borrow",
            token => desk.BorrowTitleAsync(request.BookId.Value, userId.Value, request.Days, time.DatabaseNow(), token), ct);
        return outcome.ToResult();
    }

    // Return and renew honour an Idempotency-Key too (a repeated key answers the first answer),
    // so the gateway may send a keyed one again to another replica when the first one died. The
    // loan is part of the operation: the same key on another loan is a 422, not that loan's answer.
    private static async Task<IResult> Return(Guid id, ClaimsPrincipal caller, HttpRequest http, LendingDbContext db, CirculationDesk desk, Idempotency idempotency, TimeProvider time, CancellationToken ct)
    {
        var key = http.Headers[Idempotency.Header].FirstOrDefault();
        return Idempotency.InvalidKey(key)
            ?? (await idempotency.AnsweredAsync(caller.UserId()!.Value, key, $"return:{id:N}", ct))?.ToResult()
            ?? await OnOwnLoan(id, caller, db,
                loan => idempotency.RunAsync(caller.UserId()!.Value, key, $"return:{id:N}", token => desk.ReturnAsync(loan, time.DatabaseNow(), token), ct), ct);
    }

    private static async Task<IResult> Renew(Guid id, ClaimsPrincipal caller, HttpRequest http, LendingDbContext db, CirculationDesk desk, Idempotency idempotency, TimeProvider time, CancellationToken ct)
    {
        var key = http.Headers[Idempotency.Header].FirstOrDefault();
        return Idempotency.InvalidKey(key)
            ?? (await idempotency.AnsweredAsync(caller.UserId()!.Value, key, $"renew:{id:N}", ct))?.ToResult()
            ?? await OnOwnLoan(id, caller, db,
                loan => idempotency.RunAsync(caller.UserId()!.Value, key, $"renew:{id:N}", token => desk.RenewAsync(loan, time.DatabaseNow(), token), ct), ct);
    }

    /// <summary>The borrower or a librarian; anyone else gets 403, known loan or not.</summary>
    private static async Task<IResult> OnOwnLoan(Guid id, ClaimsPrincipal caller, LendingDbContext db, Func<Loan, Task<Outcome>> action, CancellationToken ct)
    {
        var loan = await db.Loans.AsNoTracking().SingleOrDefaultAsync(l => l.Id == id, ct);
        if (loan is not null && !caller.IsLibrarian() && loan.UserId != caller.UserId())
        {
            return Outcome.Forbidden("This is another reader's loan.").ToResult();
        }
        if (loan is null)
        {
            return caller.IsLibrarian() ? Outcome.NotFound("loan").ToResult() : Outcome.Forbidden("This is not one of your loans.").ToResult();
        }
        return (await action(loan)).ToResult();
    }

    private static async Task<IResult> Get(Guid id, ClaimsPrincipal caller, LendingDbContext db, TimeProvider time, CancellationToken ct) =>
        await OnOwnLoan(id, caller, db, async loan => Outcome.Ok(LoanResponse.From(loan,
            await db.Titles.Where(t => t.Id == loan.BookId).Select(t => t.Name).SingleAsync(ct),
            await db.Copies.Where(c => c.Id == loan.CopyId).Select(c => c.Barcode).SingleOrDefaultAsync(ct), time.GetUtcNow())), ct);

    private static async Task<IResult> List(
        ClaimsPrincipal caller, LendingDbContext db, TimeProvider time, Guid? userId, Guid? bookId, string? status, int? page, int? pageSize, CancellationToken ct)
    {
        if (!PageRequest.TryCreate(page, pageSize, out var paging, out var problem))
        {
            return problem!;
        }
        if (status is not null && !LoanPolicy.Statuses.Contains(status))
        {
            return Results.ValidationProblem(new Dictionary<string, string[]> { ["status"] = [$"status must be one of: {string.Join(", ", LoanPolicy.Statuses)}."] });
        }
        // A member sees only their own loans, whatever userId they ask for.
        var (reader, forbidden) = ActingFor(caller, userId);
        if (forbidden is not null)
        {
            return forbidden;
        }
        var query = db.Loans.AsNoTracking();
        if (!caller.IsLibrarian() || userId is not null)
        {
            query = query.Where(l => l.UserId == reader);
        }
        if (bookId is not null)
        {
            query = query.Where(l => l.BookId == bookId);
        }
        var now = time.GetUtcNow();
        query = status switch
        {
            LoanPolicy.Active => query.Where(LoanPolicy.ActiveAt(now)),
            LoanPolicy.Overdue => query.Where(LoanPolicy.OverdueAt(now)),
            LoanPolicy.Returned => query.Where(l => l.ReturnedAt != null),
            _ => query,
        };
        var total = await query.LongCountAsync(ct);
        var rows = await query.OrderByDescending(l => l.BorrowedAt).ThenBy(l => l.Id).Skip(paging.Skip).Take(paging.PageSize)
            .Join(db.Titles, l => l.BookId, t => t.Id, (l, t) => new { Loan = l, t.Name, Barcode = db.Copies.Where(c => c.Id == l.CopyId).Select(c => c.Barcode).FirstOrDefault() })
            .ToListAsync(ct);
        var items = rows.Select(r => LoanResponse.From(r.Loan, r.Name, r.Barcode, now)).ToList();
        return Results.Ok(new PagedList<LoanResponse>(items, paging.Page, paging.PageSize, total));
    }

    /// <summary>Readers with active loans, and those loans (librarians).</summary>
    private static async Task<IResult> Borrowers(LendingDbContext db, TimeProvider time, int? page, int? pageSize, CancellationToken ct)
    {
        if (!PageRequest.TryCreate(page, pageSize, out var paging, out var problem))
        {
            return problem!;
        }
        var borrowing = db.Readers.AsNoTracking().Where(r => db.Loans.Any(l => l.UserId == r.Id && l.ReturnedAt == null));
        var total = await borrowing.LongCountAsync(ct);
        var readers = await borrowing.OrderBy(r => r.LastName).ThenBy(r => r.FirstName).ThenBy(r => r.Id)
            .Skip(paging.Skip).Take(paging.PageSize).ToListAsync(ct);
        var ids = readers.Select(r => r.Id).ToList();
        var now = time.GetUtcNow();
        var loans = await db.Loans.AsNoTracking().Where(l => ids.Contains(l.UserId!.Value) && l.ReturnedAt == null)
            .Join(db.Titles, l => l.BookId, t => t.Id, (l, t) => new { l.UserId, l.Id, l.BookId, t.Name, l.BorrowedAt, l.DueAt })
            .OrderBy(l => l.DueAt).ToListAsync(ct);
        var items = readers.Select(r => new Borrower(r.Id, r.Email, r.FirstName, r.LastName,
            loans.Where(l => l.UserId == r.Id)
                .Select(l => new BorrowerLoan(l.Id, l.BookId, l.Name, l.BorrowedAt, l.DueAt, LoanPolicy.Status(l.DueAt, null, now))).ToList())).ToList();
        return Results.Ok(new PagedList<Borrower>(items, paging.Page, paging.PageSize, total));
    }

    /// <summary>Titles with no copy on the shelf, and when one is expected back (librarians).</summary>
    private static async Task<IResult> UnavailableBooks(LendingDbContext db, Shelf shelf, int? page, int? pageSize, CancellationToken ct)
    {
        if (!PageRequest.TryCreate(page, pageSize, out var paging, out var problem))
        {
            return problem!;
        }
        var none = shelf.TitlesWithNoneOnShelf().AsNoTracking();
        var total = await none.LongCountAsync(ct);
        var titles = await none.OrderBy(t => t.Name).ThenBy(t => t.Id).Skip(paging.Skip).Take(paging.PageSize).ToListAsync(ct);
        var items = new List<UnavailableBook>();
        foreach (var t in titles)
        {
            var counts = await shelf.CountAsync(t.Id, ct);
            var waiting = await db.Holds.CountAsync(h => h.BookId == t.Id && h.Status == HoldStatus.Waiting, ct);
            var dues = await db.Loans.Where(l => l.BookId == t.Id && l.ReturnedAt == null).OrderBy(l => l.DueAt).Select(l => l.DueAt).ToListAsync(ct);
            items.Add(new UnavailableBook(t.Id, t.Name, counts.Total, dues.Count, Holds.WaitingList.NextAvailableAt(dues, waiting)));
        }
        return Results.Ok(new PagedList<UnavailableBook>(items, paging.Page, paging.PageSize, total));
    }
}
