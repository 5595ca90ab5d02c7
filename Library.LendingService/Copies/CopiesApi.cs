using System.ComponentModel.DataAnnotations;
using System.Security.Claims;
using Library.LendingService.Data;
using Library.LendingService.Desk;
using Library.LendingService.Holds;
using Library.LendingService.Loans;
using Library.LendingService.Replicas;
using Library.LendingService.Rules;
using Library.LendingService.Validation;
using Library.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Library.LendingService.Copies;

/// <summary>A new copy. <c>loanType</c>'s name is checked in the handler: it is matched whatever its case, which a pattern in the document cannot say.</summary>
public sealed record NewCopyRequest(
    [property: Required(ErrorMessage = CopiesApi.BarcodeRule), StringLength(InputLimits.BarcodeLength, ErrorMessage = CopiesApi.BarcodeRule),
        RegularExpression(InputLimits.BarcodePattern, ErrorMessage = CopiesApi.BarcodeRule)] string? Barcode,
    [property: PrintableText(InputLimits.CopyTextLength, ErrorMessage = CopiesApi.CallNumberRule)] string? CallNumber,
    [property: PrintableText(InputLimits.CopyTextLength, ErrorMessage = CopiesApi.LocationRule)] string? Location,
    [property: StringLength(InputLimits.LoanTypeLength, ErrorMessage = CopiesApi.LoanTypeRule)] string? LoanType);

/// <summary>A change to a copy: only what is sent changes. <c>status</c> only to one a librarian may set by hand.</summary>
public sealed record CopyChangeRequest(
    [property: StringLength(InputLimits.StatusLength, ErrorMessage = CopiesApi.StatusRule),
        RegularExpression("^(available|missing|in-repair|withdrawn|lost)$", ErrorMessage = CopiesApi.StatusRule)] string? Status,
    [property: PrintableText(InputLimits.CopyTextLength, ErrorMessage = CopiesApi.CallNumberRule)] string? CallNumber,
    [property: PrintableText(InputLimits.CopyTextLength, ErrorMessage = CopiesApi.LocationRule)] string? Location,
    [property: StringLength(InputLimits.LoanTypeLength, ErrorMessage = CopiesApi.LoanTypeRule)] string? LoanType);

/// <summary>A title's copies: listed by anyone (who has them: librarians), added, looked up by barcode and changed by librarians.</summary>
public static class CopiesApi
{
    public const string BarcodeRule = "barcode must be 1 to 32 letters, digits or hyphens.";
    public const string CallNumberRule = "callNumber must be at most 100 printable characters.";
    public const string LocationRule = "location must be at most 100 printable characters.";
    public const string LoanTypeRule = "loanType must be one of: standard, short-loan, reference.";
    public const string StatusRule = "status must be one of: available, missing, in-repair, withdrawn, lost (checking out and in is done at the desk).";

    public static IEndpointRouteBuilder MapCopies(this IEndpointRouteBuilder app)
    {
        app.MapGroup("/api/books/{id:guid}/copies").WithTags("Copies").AllowAnonymous()
            .MapGet("/", List).WithName("ListCopies")
            .WithSummary("List a title's copies")
            .WithDescription("Anyone: every copy of the title, its status and due date; the current loan's loanId and userId only to librarians. 404 for an unknown title.")
            .ProducesProblem(StatusCodes.Status404NotFound);
        var copies = app.MapGroup("/api").WithTags("Copies").RequireAuthorization(Policies.Librarian);
        copies.MapPost("/books/{id:guid}/copies", Add).WithName("AddCopy")
            .WithSummary("Add a copy to a title")
            .WithDescription("Librarians: a new copy with its barcode (unique whatever the case); it serves the title's hold queue first. "
                + "Refuses: 400 a bad barcode or unknown loan type, 404 unknown title, 409 barcode taken.")
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        copies.MapGet("/copies/by-barcode/{barcode}", ByBarcode).WithName("GetCopyByBarcode").ProducesValidationProblem()
            .WithSummary("Find a copy by its barcode")
            .WithDescription("Librarians: the copy with its current loan and hold, if any (what the desk shows on a scan). 404 for an unknown barcode.")
            .ProducesProblem(StatusCodes.Status404NotFound);
        copies.MapPatch("/copies/{id:guid}", Change).WithName("ChangeCopy")
            .WithSummary("Change a copy")
            .WithDescription("Librarians: its call number, location, loan type, or status (available, missing, in-repair, withdrawn, lost; lost while out ends the loan "
                + "and charges the reader). Refuses: 404 unknown copy, 409 a status change not allowed from the current one (e.g. withdrawn while checked out).")
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        return app;
    }

    private static async Task<Results<Ok<List<CopyResponse>>, ProblemHttpResult>> List(Guid id, ClaimsPrincipal caller, LendingDbContext db, ReplicaLookup replicas, CancellationToken ct)
    {
        if (!await replicas.EnsureTitleAsync(id, ct))
        {
            return Outcome.NotFound("book").ToProblem();
        }
        var rows = await db.Copies.AsNoTracking().Where(c => c.BookId == id).OrderBy(c => c.Barcode)
            .Select(c => new { Copy = c, Loan = db.Loans.FirstOrDefault(l => l.CopyId == c.Id && l.ReturnedAt == null) })
            .ToListAsync(ct);
        var librarian = caller.IsLibrarian();
        return TypedResults.Ok(rows.Select(r => CopyResponse.From(r.Copy, r.Loan, librarian)).ToList());
    }

    private static async Task<Results<Created<CopyResponse>, ValidationProblem, ProblemHttpResult>> Add(Guid id, NewCopyRequest request, ClaimsPrincipal caller,
        LendingDbContext db, ReplicaLookup replicas, CirculationDesk desk, Shelf shelf, WaitingList queue, CirculationSettings settings, Idempotency idempotency,
        TimeProvider time, CancellationToken ct)
    {
        if (UnknownLoanType(request.LoanType) is { } unknown)
        {
            return unknown;
        }
        if (!await replicas.EnsureTitleAsync(id, ct))
        {
            return Outcome.NotFound("book").ToProblem();
        }
        try
        {
            var outcome = await idempotency.RunAsync(caller.UserId()!.Value, null, "add-copy", async token =>
            {
                var now = time.DatabaseNow();
                var title = await queue.LockTitleAsync(id, token);
                if (title is null || title.Deleted)
                {
                    return Outcome.NotFound("book");
                }
                if (await desk.FindByBarcodeAsync(request.Barcode!, token) is not null)
                {
                    return BarcodeTaken(request.Barcode!);
                }
                var copy = new Copy
                {
                    BookId = id, Barcode = request.Barcode!, CallNumber = request.CallNumber, Location = request.Location,
                    LoanType = request.LoanType?.ToLowerInvariant() ?? LoanTypes.Standard, CreatedAt = now, UpdatedAt = now,
                };
                db.Copies.Add(copy);
                await db.SaveChangesAsync(token);
                // A new copy serves the hold queue first.
                await queue.ServeAsync(id, await settings.CurrentAsync(token), now, token);
                await shelf.PublishAvailabilityAsync(id, token);
                var saved = await db.Copies.AsNoTracking().SingleAsync(c => c.Id == copy.Id, token);
                return Outcome.Created($"/api/copies/{copy.Id}", CopyResponse.From(saved, null, includeBorrower: true));
            }, ct);
            return outcome.ToCreated<CopyResponse>();
        }
        catch (DbUpdateException ex) when (ex.InnerException is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation })
        {
            // Two desks adding the same barcode at once: the unique index decides.
            return BarcodeTaken(request.Barcode!).ToProblem();
        }
    }

    private static async Task<Results<Ok<CopyResponse>, ProblemHttpResult>> ByBarcode(
        [StringLength(InputLimits.BarcodeLength, ErrorMessage = BarcodeRule), RegularExpression(InputLimits.BarcodePattern, ErrorMessage = BarcodeRule)] string barcode,
        LendingDbContext db, CirculationDesk desk, WaitingList queue, TimeProvider time, CancellationToken ct)
    {
        var copy = await desk.FindByBarcodeAsync(barcode, ct);
        if (copy is null)
        {
            return Outcome.NotFound("copy with this barcode").ToProblem();
        }
        return TypedResults.Ok(await DetailAsync(db, queue, copy, time.GetUtcNow(), ct));
    }

    private static async Task<Results<Ok<CopyResponse>, ValidationProblem, ProblemHttpResult>> Change(Guid id, CopyChangeRequest request, ClaimsPrincipal caller,
        LendingDbContext db, Shelf shelf, WaitingList queue, CirculationDesk desk, CirculationSettings settings, Idempotency idempotency, TimeProvider time, CancellationToken ct)
    {
        if (UnknownLoanType(request.LoanType) is { } unknown)
        {
            return unknown;
        }
        var found = await db.Copies.AsNoTracking().SingleOrDefaultAsync(c => c.Id == id, ct);
        if (found is null)
        {
            return Outcome.NotFound("copy").ToProblem();
        }
        var outcome = await idempotency.RunAsync(caller.UserId()!.Value, null, "change-copy", async token =>
        {
            var now = time.DatabaseNow();
            await queue.LockTitleAsync(found.BookId, token);
            var ready = await db.Holds.FromSql($"SELECT * FROM holds WHERE copy_id = {id} AND status = 'ready' FOR UPDATE").AsNoTracking().SingleOrDefaultAsync(token);
            var copy = await queue.LockCopyAsync(id, token);
            if (request.Status is { } status && status != copy.Status && CopyStatus.ManualChangeRefusal(copy.Status, status) is { } refusal)
            {
                return Outcome.Conflict("Status change not allowed", refusal);
            }
            await db.Copies.Where(c => c.Id == id).ExecuteUpdateAsync(s => s
                .SetProperty(c => c.CallNumber, c => request.CallNumber ?? c.CallNumber)
                .SetProperty(c => c.Location, c => request.Location ?? c.Location)
                .SetProperty(c => c.LoanType, c => request.LoanType == null ? c.LoanType : request.LoanType.ToLowerInvariant())
                .SetProperty(c => c.UpdatedAt, now), token);
            if (request.Status is { } target && target != copy.Status)
            {
                if (ready is not null)
                {
                    // The copy set aside for a reader is gone (missing, lost...): the reader waits
                    // again, first in the queue, for another copy.
                    await db.Holds.Where(h => h.Id == ready.Id).ExecuteUpdateAsync(s => s
                        .SetProperty(h => h.Status, HoldStatus.Waiting).SetProperty(h => h.ReadyUntil, (DateTimeOffset?)null).SetProperty(h => h.CopyId, (Guid?)null), token);
                }
                if (copy.Status == CopyStatus.CheckedOut && target == CopyStatus.Lost)
                {
                    // Declared lost while out: the loan ends and the reader is charged (the desk decides what).
                    await desk.DeclareLostAsync(copy, now, token);
                }
                if (target is CopyStatus.Withdrawn or CopyStatus.Available)
                {
                    await db.Copies.Where(c => c.Id == id).ExecuteUpdateAsync(s => s.SetProperty(c => c.WithdrawOnCheckIn, false), token);
                }
                await queue.SetStatusAsync(copy, target, now, token);
            }
            await queue.ServeAsync(found.BookId, await settings.CurrentAsync(token), now, token);
            await shelf.PublishAvailabilityAsync(found.BookId, token);
            var saved = await db.Copies.AsNoTracking().SingleAsync(c => c.Id == id, token);
            return Outcome.Ok(await DetailAsync(db, queue, saved, now, token));
        }, ct);
        return outcome.ToOk<CopyResponse>();
    }

    /// <summary>A copy with its open loan and its hold, if any (librarians).</summary>
    public static async Task<CopyResponse> DetailAsync(LendingDbContext db, WaitingList queue, Copy copy, DateTimeOffset now, CancellationToken ct)
    {
        var loan = await db.Loans.AsNoTracking().SingleOrDefaultAsync(l => l.CopyId == copy.Id && l.ReturnedAt == null, ct);
        var hold = await db.Holds.AsNoTracking().SingleOrDefaultAsync(h => h.CopyId == copy.Id && h.Status == HoldStatus.Ready, ct);
        var name = await db.Titles.Where(t => t.Id == copy.BookId).Select(t => t.Name).SingleAsync(ct);
        return CopyResponse.From(copy, loan, includeBorrower: true) with
        {
            Loan = loan is null ? null : LoanResponse.From(loan, name, copy.Barcode, now),
            Hold = hold is null ? null : await queue.ToResponseAsync(hold, name, ct),
        };
    }

    private static Outcome BarcodeTaken(string barcode) =>
        Outcome.Conflict("Barcode taken", $"Another copy already has the barcode {barcode} (barcodes are unique whatever the case).");

    /// <summary>
    /// The one check of a copy's input left to the handler: a loan type's name, matched whatever its
    /// case (a pattern in the document would have to spell every casing). Its length is annotated.
    /// </summary>
    private static ValidationProblem? UnknownLoanType(string? loanType) =>
        loanType is not null && !LoanTypes.IsKnown(loanType)
            ? TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["loanType"] = [LoanTypeRule] })
            : null;
}
