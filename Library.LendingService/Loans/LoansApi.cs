using System.ComponentModel.DataAnnotations;
using System.Security.Claims;
using Library.LendingService.Copies;
using Library.LendingService.Data;
using Library.LendingService.Desk;
using Library.LendingService.Replicas;
using Library.LendingService.Validation;
using Library.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Loans;

/// <summary>
/// A borrow by title. <c>days</c>' upper bound here is the longest any rule may lend; the
/// matching rule's <c>maxLoanDays</c> is checked with the copy (a 400 too).
/// </summary>
public sealed record BorrowRequest(
    [property: RequiredId(ErrorMessage = "bookId is required.")] Guid? BookId,
    [property: Required(ErrorMessage = LoansApi.DaysRule), Range(1, LoansApi.MaxDaysEver, ErrorMessage = LoansApi.DaysRule)] int? Days,
    Guid? UserId);

public sealed record BorrowerLoan(Guid LoanId, Guid BookId, string Title, DateTimeOffset BorrowedAt, DateTimeOffset DueAt, string Status);
public sealed record Borrower(Guid UserId, string Email, string FirstName, string LastName, IReadOnlyList<BorrowerLoan> Loans);
public sealed record UnavailableBook(Guid BookId, string Title, int TotalCopies, int OnLoan, DateTimeOffset? NextAvailableAt);

public static class LoansApi
{
    /// <summary>No rule lends for longer than a year (rules are validated to this bound).</summary>
    public const int MaxDaysEver = 366;

    public const string DaysRule = "days must be between 1 and the rule's maxLoanDays (at most 366).";
    public const string LoanStatusRule = "status must be one of: active, overdue, returned.";
    public const string IdempotencyKeyRule = "Idempotency-Key must be 1 to 100 printable characters.";

    public static IEndpointRouteBuilder MapLoans(this IEndpointRouteBuilder app)
    {
        var loans = app.MapGroup("/api/loans").WithTags("Loans").RequireAuthorization(Policies.Member);
        loans.MapPost("/", Borrow).WithName("BorrowTitle")
            .WithSummary("Borrow a copy of a title")
            .WithDescription("A member borrows for themself, a librarian for any reader (userId). Lends a copy on the shelf whose loan type the reader's rule allows, "
                + "for days (1 to the rule's maxLoanDays). Refuses: 403 a member naming another reader or a blocked reader (the blocks are listed), "
                + "404 unknown title or reader, 409 no copy left or the only one held for another reader, 422 an Idempotency-Key used for another request.")
            .ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        loans.MapGet("/", List).WithName("ListLoans").ProducesValidationProblem()
            .WithSummary("List loans")
            .WithDescription("A member lists their own loans (naming another reader is a 403); a librarian anyone's, or every loan without userId. Filters: bookId, status.")
            .ProducesProblem(StatusCodes.Status403Forbidden);
        loans.MapGet("/{id:guid}", Get).WithName("GetLoan")
            .WithSummary("Get a loan")
            .WithDescription("The borrower or a librarian; any other member gets 403 whether the loan exists or not, a librarian 404 for an unknown loan.")
            .ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound);
        loans.MapPost("/{id:guid}/return", Return).WithName("ReturnLoan")
            .WithSummary("Return a loan")
            .WithDescription("The borrower or a librarian checks the loan's copy in (it goes to the first waiting hold, or back on the shelf). Refuses: 403 another reader's loan, "
                + "404 unknown loan (librarian), 409 already returned, 422 an Idempotency-Key used for another request.")
            .ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        loans.MapPost("/{id:guid}/renew", Renew).WithName("RenewLoan")
            .WithSummary("Renew a loan")
            .WithDescription("The borrower or a librarian moves the due date by the rule's renewalDays. Refuses: 403 another reader's loan or a block on renewals, "
                + "404 unknown loan (librarian), 409 overdue, returned, at the renewal limit or held by another reader, 422 an Idempotency-Key used for another request.")
            .ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status422UnprocessableEntity);

        var desk = app.MapGroup("/api").WithTags("Loans").RequireAuthorization(Policies.Librarian);
        desk.MapGet("/borrowers", Borrowers).WithName("ListBorrowers").ProducesValidationProblem()
            .WithSummary("List readers with active loans")
            .WithDescription("Librarians: each reader with at least one active loan, and those loans (soonest due first).");
        desk.MapGet("/unavailable-books", UnavailableBooks).WithName("ListUnavailableBooks").ProducesValidationProblem()
            .WithSummary("List titles with no copy on the shelf")
            .WithDescription("Librarians: titles with no copy to lend now, their copies on loan and when one is expected back (after the waiting holds).");
        return app;
    }

    /// <summary>
    /// The reader the request acts for: a member only for themself, a librarian for anyone
    /// (themself by default). Null with a 403 when a member names someone else.
    /// </summary>
    internal static (Guid? UserId, ProblemHttpResult? Problem) ActingFor(ClaimsPrincipal caller, Guid? requested)
    {
        var self = caller.UserId()!.Value;
        if (requested is { } other && other != self && !caller.IsLibrarian())
        {
            return (null, TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden", detail: "Members act only for themselves."));
        }
        return (requested ?? self, null);
    }

    private static async Task<Results<Created<LoanResponse>, ValidationProblem, ProblemHttpResult>> Borrow(
        BorrowRequest request, [FromHeader(Name = Idempotency.Header), IdempotencyKey] string? idempotencyKey, ClaimsPrincipal caller, ReplicaLookup replicas,
        CirculationDesk desk, Idempotency idempotency, TimeProvider time, CancellationToken ct)
    {
        var (userId, forbidden) = ActingFor(caller, request.UserId);
        if (forbidden is not null)
        {
            return forbidden;
        }

        // One read outside the transaction: are the replicas here (else they are fetched, the one
        // call to another service, if any), and is there anything to lend at all?
        var glance = await desk.GlanceAsync(request.BookId!.Value, userId!.Value, ct);
        if (!glance.TitleKnown && !await replicas.EnsureTitleAsync(request.BookId.Value, ct))
        {
            return Outcome.NotFound("book").ToProblem();
        }
        if (!glance.ReaderKnown && !await replicas.EnsureReaderAsync(userId.Value, ct))
        {
            return Outcome.NotFound("reader").ToProblem();
        }
        if (glance.NothingToLend && idempotencyKey is null)
        {
            // Refused without a transaction or a lock (why that is the lock path's answer: the method's comment).
            return (await desk.RefuseNothingToLendAsync(glance, userId.Value, time.DatabaseNow(), ct)).ToCreated<LoanResponse>();
        }

        var outcome = await idempotency.RunAsync(caller.UserId()!.Value, idempotencyKey, "borrow",
            token => desk.BorrowTitleAsync(request.BookId.Value, userId.Value, request.Days, time.DatabaseNow(), token), ct);
        return outcome.ToCreated<LoanResponse>();
    }

    // Return and renew honour an Idempotency-Key too (a repeated key answers the first answer),
    // so the gateway may send a keyed one again to another replica when the first one died. The
    // loan is part of the operation: the same key on another loan is a 422, not that loan's answer.
    private static async Task<Results<Ok<LoanResponse>, ValidationProblem, ProblemHttpResult>> Return(
        Guid id, [FromHeader(Name = Idempotency.Header), IdempotencyKey] string? idempotencyKey, ClaimsPrincipal caller, LendingDbContext db,
        CirculationDesk desk, Idempotency idempotency, TimeProvider time, CancellationToken ct) =>
        (await idempotency.AnsweredAsync(caller.UserId()!.Value, idempotencyKey, $"return:{id:N}", ct)
            ?? await OnOwnLoan(id, caller, db,
                loan => idempotency.RunAsync(caller.UserId()!.Value, idempotencyKey, $"return:{id:N}", token => desk.ReturnAsync(loan, time.DatabaseNow(), token), ct), ct))
        .ToOk<LoanResponse>();

    private static async Task<Results<Ok<LoanResponse>, ValidationProblem, ProblemHttpResult>> Renew(
        Guid id, [FromHeader(Name = Idempotency.Header), IdempotencyKey] string? idempotencyKey, ClaimsPrincipal caller, LendingDbContext db,
        CirculationDesk desk, Idempotency idempotency, TimeProvider time, CancellationToken ct) =>
        (await idempotency.AnsweredAsync(caller.UserId()!.Value, idempotencyKey, $"renew:{id:N}", ct)
            ?? await OnOwnLoan(id, caller, db,
                loan => idempotency.RunAsync(caller.UserId()!.Value, idempotencyKey, $"renew:{id:N}", token => desk.RenewAsync(loan, time.DatabaseNow(), token), ct), ct))
        .ToOk<LoanResponse>();

    /// <summary>
    /// The borrower or a librarian; anyone else gets 403, known loan or not. The loan is read with
    /// the caller's ownership in the query (a member's query finds only their own loans); the
    /// second read, only on a miss, tells a librarian's 404 from a member's two kinds of 403.
    /// </summary>
    private static async Task<Outcome> OnOwnLoan(Guid id, ClaimsPrincipal caller, LendingDbContext db, Func<Loan, Task<Outcome>> action, CancellationToken ct)
    {
        var librarian = caller.IsLibrarian();
        var me = caller.UserId();
        var loan = await db.Loans.AsNoTracking().Where(l => l.Id == id && (librarian || l.UserId == me)).SingleOrDefaultAsync(ct);
        if (loan is not null)
        {
            return await action(loan);
        }
        if (librarian)
        {
            return Outcome.NotFound("loan");
        }
        return await db.Loans.AnyAsync(l => l.Id == id, ct)
            ? Outcome.Forbidden("This is another reader's loan.")
            : Outcome.Forbidden("This is not one of your loans.");
    }

    private static async Task<Results<Ok<LoanResponse>, ProblemHttpResult>> Get(
        Guid id, ClaimsPrincipal caller, LendingDbContext db, TimeProvider time, CancellationToken ct) =>
        (await OnOwnLoan(id, caller, db, async loan => Outcome.Ok(LoanResponse.From(loan,
            await db.Titles.Where(t => t.Id == loan.BookId).Select(t => t.Name).SingleAsync(ct),
            await db.Copies.Where(c => c.Id == loan.CopyId).Select(c => c.Barcode).SingleOrDefaultAsync(ct), time.GetUtcNow())), ct))
        .ToOkOrProblem<LoanResponse>();

    private static async Task<Results<Ok<PagedList<LoanResponse>>, ProblemHttpResult>> List(
        ClaimsPrincipal caller, LendingDbContext db, TimeProvider time, Guid? userId, Guid? bookId,
        [RegularExpression("^(active|overdue|returned)$", ErrorMessage = LoanStatusRule), StringLength(InputLimits.StatusLength, ErrorMessage = LoanStatusRule)] string? status,
        [Range(1, PageRequest.MaxPage, ErrorMessage = PageRequest.PageMessage)] int? page, [Range(1, PageRequest.MaxPageSize, ErrorMessage = PageRequest.PageSizeMessage)] int? pageSize, CancellationToken ct)
    {
        var paging = Paging(page, pageSize);
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
        return TypedResults.Ok(new PagedList<LoanResponse>(items, paging.Page, paging.PageSize, total));
    }

    /// <summary>The page asked for, its bounds already checked by the parameters' annotations (a 400 before the handler).</summary>
    internal static PageRequest Paging(int? page, int? pageSize) => new(page ?? 1, pageSize ?? PageRequest.DefaultPageSize);

    /// <summary>Readers with active loans, and those loans (librarians).</summary>
    private static async Task<Ok<PagedList<Borrower>>> Borrowers(LendingDbContext db, TimeProvider time,
        [Range(1, PageRequest.MaxPage, ErrorMessage = PageRequest.PageMessage)] int? page, [Range(1, PageRequest.MaxPageSize, ErrorMessage = PageRequest.PageSizeMessage)] int? pageSize, CancellationToken ct)
    {
        var paging = Paging(page, pageSize);
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
        return TypedResults.Ok(new PagedList<Borrower>(items, paging.Page, paging.PageSize, total));
    }

    /// <summary>Titles with no copy on the shelf, and when one is expected back (librarians).</summary>
    private static async Task<Ok<PagedList<UnavailableBook>>> UnavailableBooks(LendingDbContext db, Shelf shelf,
        [Range(1, PageRequest.MaxPage, ErrorMessage = PageRequest.PageMessage)] int? page, [Range(1, PageRequest.MaxPageSize, ErrorMessage = PageRequest.PageSizeMessage)] int? pageSize, CancellationToken ct)
    {
        var paging = Paging(page, pageSize);
        var none = shelf.TitlesWithNoneOnShelf().AsNoTracking();
        var total = await none.LongCountAsync(ct);
        var titles = await none.OrderBy(t => t.Name).ThenBy(t => t.Id).Skip(paging.Skip).Take(paging.PageSize).ToListAsync(ct);
        var items = new List<UnavailableBook>();
        foreach (var t in titles)
        {
            var waiting = await db.Holds.CountAsync(h => h.BookId == t.Id && h.Status == HoldStatus.Waiting, ct);
            var dues = await db.Loans.Where(l => l.BookId == t.Id && l.ReturnedAt == null).OrderBy(l => l.DueAt).Select(l => l.DueAt).ToListAsync(ct);
            items.Add(new UnavailableBook(t.Id, t.Name, t.LoanableCopies, dues.Count, Holds.WaitingList.NextAvailableAt(dues, waiting)));
        }
        return TypedResults.Ok(new PagedList<UnavailableBook>(items, paging.Page, paging.PageSize, total));
    }
}
