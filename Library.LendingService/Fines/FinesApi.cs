using System.ComponentModel.DataAnnotations;
using System.Security.Claims;
using Library.LendingService.Data;
using Library.LendingService.Loans;
using Library.LendingService.Rules;
using Library.LendingService.Validation;
using Library.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Fines;

/// <summary>A payment in minor units; over the fine's balance is refused once the fine is locked (a 400 too). No fine is ever over <see cref="RuleSet.MaxMoney"/>.</summary>
public sealed record PaymentRequest(
    [property: Required(ErrorMessage = FinesApi.AmountRule), Range(1d, RuleSet.MaxMoney, ErrorMessage = FinesApi.AmountRule)] long? Amount);

public sealed record WaiveRequest(
    [property: Required(ErrorMessage = FinesApi.WaiveReasonRule), PrintableText(InputLimits.ReasonLength, ErrorMessage = FinesApi.WaiveReasonRule)] string? Reason);

/// <summary>
/// Fines: a reader reads their own, a librarian anyone's; librarians take payments (partial ones
/// too) and waive. Each change is one transaction with the <c>fine_transactions</c> row recording
/// who and when, and takes the fine's row lock, so two desks never pay one fine twice over.
/// </summary>
public static class FinesApi
{
    public const int MaxReasonLength = 500;
    public const string Payment = "payment";
    public const string Waiver = "waiver";
    public const string AmountRule = "amount must be a positive whole number of minor units (cents).";
    public const string WaiveReasonRule = "reason is required: 1 to 500 printable characters saying why the fine is waived.";
    public const string StatusRule = "status must be one of: open, paid, waived.";

    public static IEndpointRouteBuilder MapFines(this IEndpointRouteBuilder app)
    {
        var fines = app.MapGroup("/api/fines").WithTags("Fines").RequireAuthorization(Policies.Member);
        fines.MapGet("/", List).WithName("ListFines").ProducesValidationProblem()
            .WithSummary("List fines")
            .WithDescription("A member lists their own fines (naming another reader is a 403); a librarian anyone's, or every fine without userId. Filter: status.")
            .ProducesProblem(StatusCodes.Status403Forbidden);
        var desk = fines.MapGroup("/{id:guid}").RequireAuthorization(Policies.Librarian);
        desk.MapPost("/payments", Pay).WithName("PayFine")
            .WithSummary("Take a payment on a fine")
            .WithDescription("Librarians: a payment, partial or whole, recorded with who took it. Refuses: 400 not positive, over the balance or a closed fine, "
                + "404 unknown fine, 422 an Idempotency-Key used for another request.")
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        desk.MapPost("/waive", Waive).WithName("WaiveFine")
            .WithSummary("Waive a fine")
            .WithDescription("Librarians: what is still owed is waived, with the reason and who waived it. Refuses: 403 the librarian's own fine, 404 unknown fine, 409 a fine already paid or waived, "
                + "422 an Idempotency-Key used for another request.")
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        return app;
    }

    private static async Task<Results<Ok<PagedList<FineResponse>>, ProblemHttpResult>> List(ClaimsPrincipal caller, LendingDbContext db, Guid? userId,
        [StringLength(InputLimits.StatusLength, ErrorMessage = StatusRule), RegularExpression("^(open|paid|waived)$", ErrorMessage = StatusRule)] string? status,
        [Range(1, PageRequest.MaxPage, ErrorMessage = PageRequest.PageMessage)] int? page,
        [Range(1, PageRequest.MaxPageSize, ErrorMessage = PageRequest.PageSizeMessage)] int? pageSize, CancellationToken ct)
    {
        var paging = LoansApi.Paging(page, pageSize);
        // A member reads only their own fines: naming another reader is a 403.
        var (reader, forbidden) = LoansApi.ActingFor(caller, userId);
        if (forbidden is not null)
        {
            return forbidden;
        }
        var query = db.Fines.AsNoTracking();
        if (!caller.IsLibrarian() || userId is not null)
        {
            query = query.Where(f => f.UserId == reader);
        }
        if (status is not null)
        {
            query = query.Where(f => f.Status == status);
        }
        var total = await query.LongCountAsync(ct);
        var rows = await query.OrderByDescending(f => f.CreatedAt).ThenBy(f => f.Id).Skip(paging.Skip).Take(paging.PageSize).ToListAsync(ct);
        return TypedResults.Ok(new PagedList<FineResponse>(rows.Select(FineResponse.From).ToList(), paging.Page, paging.PageSize, total));
    }

    private static async Task<Results<Ok<FineResponse>, ValidationProblem, ProblemHttpResult>> Pay(Guid id, PaymentRequest request,
        [FromHeader(Name = Idempotency.Header), IdempotencyKey] string? idempotencyKey, ClaimsPrincipal caller, LendingDbContext db,
        Idempotency idempotency, TimeProvider time, ILogger<ReaderAccounts> logger, CancellationToken ct)
    {
        // Not positive: refused by the annotations before anything is read; over the balance: once the fine is locked.
        var librarian = caller.UserId()!.Value;
        var amount = request.Amount!.Value;
        return (await idempotency.RunAsync(librarian, idempotencyKey, $"pay-fine:{id:N}", async token =>
        {
            var now = time.DatabaseNow();
            var fine = await LockAsync(db, id, token);
            if (fine is null)
            {
                return Outcome.NotFound("fine");
            }
            // A paid or waived fine owes nothing: any payment is over its balance.
            var outstanding = fine.Status == FineStatus.Open ? FinePolicy.Outstanding(fine.Amount, fine.PaidAmount) : 0;
            if (FinePolicy.PaymentRefusal(amount, outstanding) is { } over)
            {
                return Outcome.Invalid("amount", fine.Status == FineStatus.Open ? over : $"This fine is {fine.Status}: nothing is owed on it.");
            }
            fine.PaidAmount += amount;
            if (fine.PaidAmount == fine.Amount)
            {
                fine.Status = FineStatus.Paid;
                fine.ClosedAt = now;
            }
            db.FineTransactions.Add(new FineTransaction { FineId = fine.Id, Kind = Payment, Amount = amount, CreatedBy = librarian, CreatedAt = now });
            await db.SaveChangesAsync(token);
            logger.LogInformation("Fine {FineId} of reader {UserId}: {Amount} paid, taken by {LibrarianId}; {Outstanding} still owed",
                fine.Id, fine.UserId, amount, librarian, fine.Amount - fine.PaidAmount);
            return Outcome.Ok(FineResponse.From(fine));
        }, ct)).ToOk<FineResponse>();
    }

    private static async Task<Results<Ok<FineResponse>, ValidationProblem, ProblemHttpResult>> Waive(Guid id, WaiveRequest request,
        [FromHeader(Name = Idempotency.Header), IdempotencyKey] string? idempotencyKey, ClaimsPrincipal caller, LendingDbContext db,
        Idempotency idempotency, TimeProvider time, ILogger<ReaderAccounts> logger, CancellationToken ct)
    {
        var reason = request.Reason!.Trim();
        var librarian = caller.UserId()!.Value;
        return (await idempotency.RunAsync(librarian, idempotencyKey, $"waive-fine:{id:N}", async token =>
        {
            var now = time.DatabaseNow();
            var fine = await LockAsync(db, id, token);
            if (fine is null)
            {
                return Outcome.NotFound("fine");
            }
            if (fine.UserId == librarian)
            {
                // Separation of duties: staff may pay their own fines at the desk, not waive them.
                return Outcome.Forbidden("A librarian cannot waive their own fine: another librarian must.");
            }
            if (fine.Status != FineStatus.Open)
            {
                return Outcome.Conflict("Fine closed", $"This fine is {fine.Status}: there is nothing left to waive.");
            }
            // What is still owed is waived; what was paid stays paid (its transactions say so).
            var waived = FinePolicy.Outstanding(fine.Amount, fine.PaidAmount);
            fine.Status = FineStatus.Waived;
            fine.ClosedAt = now;
            db.FineTransactions.Add(new FineTransaction { FineId = fine.Id, Kind = Waiver, Amount = waived, CreatedBy = librarian, Reason = reason, CreatedAt = now });
            await db.SaveChangesAsync(token);
            logger.LogInformation("Fine {FineId} of reader {UserId}: {Amount} waived by {LibrarianId}", fine.Id, fine.UserId, waived, librarian);
            return Outcome.Ok(FineResponse.From(fine));
        }, ct)).ToOk<FineResponse>();
    }

    private static Task<Fine?> LockAsync(LendingDbContext db, Guid id, CancellationToken ct) =>
        db.Fines.FromSql($"SELECT * FROM fines WHERE id = {id} FOR UPDATE").SingleOrDefaultAsync(ct);
}
