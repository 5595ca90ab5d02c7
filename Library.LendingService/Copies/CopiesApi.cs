using System.Security.Claims;
using System.Text.RegularExpressions;
using Library.LendingService.Data;
using Library.LendingService.Desk;
using Library.LendingService.Holds;
using Library.LendingService.Loans;
using Library.LendingService.Replicas;
using Library.LendingService.Rules;
using Library.ServiceDefaults;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Library.LendingService.Copies;

public sealed record NewCopyRequest(string? Barcode, string? CallNumber, string? Location, string? LoanType);
public sealed record CopyChangeRequest(string? Status, string? CallNumber, string? Location, string? LoanType);

/// <summary>A title's copies: listed by anyone (who has them: librarians), added, looked up by barcode and changed by librarians.</summary>
public static partial class CopiesApi
{
    public const int MaxTextLength = 100;

    [GeneratedRegex("^[A-Za-z0-9-]{1,32}$")]
    private static partial Regex BarcodePattern();

    public const string BarcodeRule = "barcode must be 1 to 32 letters, digits or hyphens.";

    public static bool IsBarcode(string? barcode) => barcode is not null && BarcodePattern().IsMatch(barcode);

    public static IEndpointRouteBuilder MapCopies(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/books/{id:guid}/copies", List).WithTags("Copies").AllowAnonymous();
        app.MapPost("/api/books/{id:guid}/copies", Add).WithTags("Copies").RequireAuthorization(Policies.Librarian);
        app.MapGet("/api/copies/by-barcode/{barcode}", ByBarcode).WithTags("Copies").RequireAuthorization(Policies.Librarian);
        app.MapPatch("/api/copies/{id:guid}", Change).WithTags("Copies").RequireAuthorization(Policies.Librarian);
        return app;
    }

    private static async Task<IResult> List(Guid id, ClaimsPrincipal caller, LendingDbContext db, ReplicaLookup replicas, CancellationToken ct)
    {
        if (!await replicas.EnsureTitleAsync(id, ct))
        {
            return Outcome.NotFound("book").ToResult();
        }
        var rows = await db.Copies.AsNoTracking().Where(c => c.BookId == id).OrderBy(c => c.Barcode)
            .Select(c => new { Copy = c, Loan = db.Loans.FirstOrDefault(l => l.CopyId == c.Id && l.ReturnedAt == null) })
            .ToListAsync(ct);
        var librarian = caller.IsLibrarian();
        return Results.Ok(rows.Select(r => CopyResponse.From(r.Copy, r.Loan, librarian)).ToList());
    }

    private static async Task<IResult> Add(Guid id, NewCopyRequest request, ClaimsPrincipal caller, LendingDbContext db, ReplicaLookup replicas,
        CirculationDesk desk, Shelf shelf, WaitingList queue, CirculationSettings settings, Idempotency idempotency, TimeProvider time, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        if (!IsBarcode(request.Barcode))
        {
            errors["barcode"] = [BarcodeRule];
        }
        CheckText(errors, "callNumber", request.CallNumber);
        CheckText(errors, "location", request.Location);
        if (request.LoanType is not null && !LoanTypes.IsKnown(request.LoanType))
        {
            errors["loanType"] = [$"loanType must be one of: {string.Join(", ", LoanTypes.All.Select(t => t.Name))}."];
        }
        if (errors.Count > 0)
        {
            return Results.ValidationProblem(errors);
        }
        if (!await replicas.EnsureTitleAsync(id, ct))
        {
            return Outcome.NotFound("book").ToResult();
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
            return outcome.ToResult();
        }
        catch (DbUpdateException ex) when (ex.InnerException is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation })
        {
            // Two desks adding the same barcode at once: the unique index decides.
            return BarcodeTaken(request.Barcode!).ToResult();
        }
    }

    private static async Task<IResult> ByBarcode(string barcode, LendingDbContext db, CirculationDesk desk, WaitingList queue, TimeProvider time, CancellationToken ct)
    {
        if (!IsBarcode(barcode))
        {
            return Results.ValidationProblem(new Dictionary<string, string[]> { ["barcode"] = [BarcodeRule] });
        }
        var copy = await desk.FindByBarcodeAsync(barcode, ct);
        if (copy is null)
        {
            return Outcome.NotFound("copy with this barcode").ToResult();
        }
        return Results.Ok(await DetailAsync(db, queue, copy, time.GetUtcNow(), ct));
    }

    private static async Task<IResult> Change(Guid id, CopyChangeRequest request, ClaimsPrincipal caller, LendingDbContext db, Shelf shelf,
        WaitingList queue, CirculationDesk desk, CirculationSettings settings, Idempotency idempotency, TimeProvider time, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        if (request.Status is not null && !CopyStatus.ManualTargets.Contains(request.Status))
        {
            errors["status"] = [$"status must be one of: {string.Join(", ", CopyStatus.ManualTargets)} (checking out and in is done at the desk)."];
        }
        CheckText(errors, "callNumber", request.CallNumber);
        CheckText(errors, "location", request.Location);
        if (request.LoanType is not null && !LoanTypes.IsKnown(request.LoanType))
        {
            errors["loanType"] = [$"loanType must be one of: {string.Join(", ", LoanTypes.All.Select(t => t.Name))}."];
        }
        if (errors.Count > 0)
        {
            return Results.ValidationProblem(errors);
        }
        var found = await db.Copies.AsNoTracking().SingleOrDefaultAsync(c => c.Id == id, ct);
        if (found is null)
        {
            return Outcome.NotFound("copy").ToResult();
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
        return outcome.ToResult();
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

    private static void CheckText(Dictionary<string, string[]> errors, string field, string? value)
    {
        if (value is not null && (value.Length > MaxTextLength || TextInput.HasControlCharacters(value)))
        {
            errors[field] = [$"{field} must be at most {MaxTextLength} printable characters."];
        }
    }
}
