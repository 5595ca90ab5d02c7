using System.Security.Claims;
using Library.LendingService.Data;
using Library.LendingService.Loans;
using Library.ServiceDefaults;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Fines;

public sealed record PaymentRequest(long? Amount);
public sealed record WaiveRequest(string? Reason);

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

    public static IEndpointRouteBuilder MapFines(this IEndpointRouteBuilder app)
    {
        var fines = app.MapGroup("/api/fines").WithTags("Fines").RequireAuthorization(Policies.Member);
        fines.MapGet("/", List);
        fines.MapPost("/{id:guid}/payments", Pay).RequireAuthorization(Policies.Librarian);
        fines.MapPost("/{id:guid}/waive", Waive).RequireAuthorization(Policies.Librarian);
        return app;
    }

    private static async Task<IResult> List(ClaimsPrincipal caller, LendingDbContext db, Guid? userId, string? status, int? page, int? pageSize, CancellationToken ct)
    {
        if (!PageRequest.TryCreate(page, pageSize, out var paging, out var problem))
        {
            return problem!;
        }
        if (status is not null && !FineStatus.All.Contains(status))
        {
            return Results.ValidationProblem(new Dictionary<string, string[]> { ["status"] = [$"status must be one of: {string.Join(", ", FineStatus.All)}."] });
        }
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
        return Results.Ok(new PagedList<FineResponse>(rows.Select(FineResponse.From).ToList(), paging.Page, paging.PageSize, total));
    }

    private static async Task<IResult> Pay(Guid id, PaymentRequest request, ClaimsPrincipal caller, HttpRequest http, LendingDbContext db,
        Idempotency idempotency, TimeProvider time, ILogger<ReaderAccounts> logger, CancellationToken ct)
    {
        // Not positive: refused before anything is read; over the balance: once the fine is locked.
        if (FinePolicy.PaymentRefusal(request.Amount, long.MaxValue) is { } invalid)
        {
            return Outcome.Invalid("amount", invalid).ToResult();
        }
        var key = http.Headers[Idempotency.Header].FirstOrDefault();
        if (Idempotency.InvalidKey(key) is { } badKey)
        {
            return badKey;
        }
        var librarian = caller.UserId()!.Value;
        var amount = request.Amount!.Value;
        return (await idempotency.RunAsync(librarian, key, $"pay-fine:{id:N}", async token =>
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
        }, ct)).ToResult();
    }

    private static async Task<IResult> Waive(Guid id, WaiveRequest request, ClaimsPrincipal caller, HttpRequest http, LendingDbContext db,
        Idempotency idempotency, TimeProvider time, ILogger<ReaderAccounts> logger, CancellationToken ct)
    {
        var reason = request.Reason?.Trim();
        if (string.IsNullOrEmpty(reason) || reason.Length > MaxReasonLength || TextInput.HasControlCharacters(reason))
        {
            return Outcome.Invalid("reason", $"reason is required: 1 to {MaxReasonLength} printable characters saying why the fine is waived.").ToResult();
        }
        var key = http.Headers[Idempotency.Header].FirstOrDefault();
        if (Idempotency.InvalidKey(key) is { } badKey)
        {
            return badKey;
        }
        var librarian = caller.UserId()!.Value;
        return (await idempotency.RunAsync(librarian, key, $"waive-fine:{id:N}", async token =>
        {
            var now = time.DatabaseNow();
            var fine = await LockAsync(db, id, token);
            if (fine is null)
            {
                return Outcome.NotFound("fine");
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
        }, ct)).ToResult();
    }

    private static Task<Fine?> LockAsync(LendingDbContext db, Guid id, CancellationToken ct) =>
        db.Fines.FromSql($"SELECT * FROM fines WHERE id = {id} FOR UPDATE").SingleOrDefaultAsync(ct);
}
