using System.ComponentModel.DataAnnotations;
using System.Security.Claims;
using Library.LendingService.Data;
using Library.LendingService.Desk;
using Library.LendingService.Fines;
using Library.LendingService.Loans;
using Library.LendingService.Replicas;
using Library.LendingService.Rules;
using Library.LendingService.Validation;
using Library.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Blocks;

/// <summary>
/// A manual block: why (shown to the reader), until when (none: until deleted), and what it stops.
/// Whether <c>expiresAt</c> is in the future is the handler's to say: it needs the clock.
/// </summary>
public sealed record ManualBlockRequest(
    [property: Required(ErrorMessage = BlocksApi.ReasonRule), PrintableText(InputLimits.ReasonLength, ErrorMessage = BlocksApi.ReasonRule)] string? Reason,
    DateTimeOffset? ExpiresAt, bool? Borrowing, bool? Renewals, bool? Holds) : IValidatableObject
{
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Borrowing != true && Renewals != true && Holds != true)
        {
            yield return new ValidationResult("A block must stop something: set at least one of borrowing, renewals, holds to true.", [nameof(Borrowing)]);
        }
    }
}

/// <summary>A reader's account (balance, fines, blocks) and the librarians' manual blocks.</summary>
public static class BlocksApi
{
    public const string ReasonRule = "reason is required: 1 to 500 printable characters, shown to the reader.";

    public static IEndpointRouteBuilder MapBlocks(this IEndpointRouteBuilder app)
    {
        app.MapGroup("/api/users/{id:guid}/account").WithTags("Blocks").RequireAuthorization(Policies.Member)
            .MapGet("/", Account).WithName("GetReaderAccount")
            .WithSummary("Get a reader's account")
            .WithDescription("The reader themself or a librarian: the open balance, the open fines, the fines still growing on overdue loans, and every block "
                + "(fines, overdue, limit, manual). Refuses: 403 another reader's account (whether that reader exists or not), 404 unknown reader (librarian).")
            .ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound);
        var blocks = app.MapGroup("/api").WithTags("Blocks").RequireAuthorization(Policies.Librarian);
        blocks.MapPost("/users/{id:guid}/blocks", Add).WithName("BlockReader")
            .WithSummary("Block a reader")
            .WithDescription("Librarians: a manual block on borrowing, renewals or holds (at least one), with a reason shown to the reader and an optional expiry. "
                + "Refuses: 400 no reason, nothing blocked or an expiry not in the future, 404 unknown reader.")
            .ProducesProblem(StatusCodes.Status404NotFound);
        blocks.MapDelete("/blocks/{id:guid}", Delete).WithName("LiftBlock")
            .WithSummary("Lift a manual block")
            .WithDescription("Librarians: deletes a manual block (the others lift when their cause goes). 403 for a block on the librarian themself, 404 for an unknown block.")
            .ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    /// <summary>The librarian, or that reader; anyone else gets 403 whether the reader exists or not.</summary>
    private static async Task<Results<Ok<AccountResponse>, ProblemHttpResult>> Account(Guid id, ClaimsPrincipal caller, LendingDbContext db, ReplicaLookup replicas,
        ReaderAccounts accounts, CirculationSettings settings, CirculationDesk desk, TimeProvider time, CancellationToken ct)
    {
        // Decided from the token before anything is read (a member learns nothing of others' accounts).
        if (!caller.IsLibrarian() && caller.UserId() != id)
        {
            return Outcome.Forbidden("Members see only their own account.").ToProblem();
        }
        if (!await replicas.EnsureReaderAsync(id, ct))
        {
            return Outcome.NotFound("reader").ToProblem();
        }
        var reader = await db.Readers.AsNoTracking().SingleAsync(r => r.Id == id, ct);
        return TypedResults.Ok(await accounts.AccountAsync(reader, await settings.CurrentAsync(ct), desk, time.GetUtcNow(), ct));
    }

    private static async Task<Results<Created<ReaderBlock>, ValidationProblem, ProblemHttpResult>> Add(Guid id, ManualBlockRequest request, ClaimsPrincipal caller,
        LendingDbContext db, ReplicaLookup replicas, TimeProvider time, ILogger<ReaderAccounts> logger, CancellationToken ct)
    {
        var now = time.DatabaseNow();
        var reason = request.Reason!.Trim();
        if (request.ExpiresAt is { } expires && expires <= now)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["expiresAt"] = ["expiresAt must be in the future (leave it out for a block until deleted)."] });
        }
        if (!await replicas.EnsureReaderAsync(id, ct))
        {
            return Outcome.NotFound("reader").ToProblem();
        }
        var block = new Block
        {
            UserId = id, Reason = reason!, ExpiresAt = request.ExpiresAt?.ToUniversalTime(), Borrowing = request.Borrowing == true,
            Renewals = request.Renewals == true, Holds = request.Holds == true, CreatedBy = caller.UserId()!.Value, CreatedAt = now,
        };
        db.Blocks.Add(block);
        await db.SaveChangesAsync(ct);
        logger.LogInformation("Reader {UserId} blocked by {LibrarianId} (block {BlockId}, borrowing {Borrowing}, renewals {Renewals}, holds {Holds}, until {ExpiresAt})",
            id, block.CreatedBy, block.Id, block.Borrowing, block.Renewals, block.Holds, block.ExpiresAt);
        return TypedResults.Created($"/api/blocks/{block.Id}", BlockPolicy.FromManual(
            new ManualBlock(block.Id, block.Reason, block.ExpiresAt, block.Borrowing, block.Renewals, block.Holds, block.CreatedAt, block.CreatedBy)));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> Delete(Guid id, ClaimsPrincipal caller, LendingDbContext db, ILogger<ReaderAccounts> logger, CancellationToken ct)
    {
        var librarian = caller.UserId();
        // Separation of duties: a block placed on a member of staff is lifted by someone else.
        var deleted = await db.Blocks.Where(b => b.Id == id && b.UserId != librarian).ExecuteDeleteAsync(ct);
        if (deleted == 0)
        {
            return await db.Blocks.AnyAsync(b => b.Id == id, ct)
                ? Outcome.Forbidden("A librarian cannot lift a block on themselves: another librarian must.").ToProblem()
                : Outcome.NotFound("block").ToProblem();
        }
        logger.LogInformation("Block {BlockId} lifted by {LibrarianId}", id, caller.UserId());
        return TypedResults.NoContent();
    }
}
