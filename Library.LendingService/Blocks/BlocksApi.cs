using System.Security.Claims;
using Library.LendingService.Data;
using Library.LendingService.Desk;
using Library.LendingService.Fines;
using Library.LendingService.Loans;
using Library.LendingService.Replicas;
using Library.LendingService.Rules;
using Library.ServiceDefaults;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Blocks;

public sealed record ManualBlockRequest(string? Reason, DateTimeOffset? ExpiresAt, bool? Borrowing, bool? Renewals, bool? Holds);

/// <summary>A reader's account (balance, fines, blocks) and the librarians' manual blocks.</summary>
public static class BlocksApi
{
    public static IEndpointRouteBuilder MapBlocks(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/users/{id:guid}/account", Account).WithTags("Blocks").RequireAuthorization(Policies.Member);
        app.MapPost("/api/users/{id:guid}/blocks", Add).WithTags("Blocks").RequireAuthorization(Policies.Librarian);
        app.MapDelete("/api/blocks/{id:guid}", Delete).WithTags("Blocks").RequireAuthorization(Policies.Librarian);
        return app;
    }

    /// <summary>The librarian, or that reader; anyone else gets 403 whether the reader exists or not.</summary>
    private static async Task<IResult> Account(Guid id, ClaimsPrincipal caller, LendingDbContext db, ReplicaLookup replicas, ReaderAccounts accounts,
        CirculationSettings settings, CirculationDesk desk, TimeProvider time, CancellationToken ct)
    {
        if (!caller.IsLibrarian() && caller.UserId() != id)
        {
            return Outcome.Forbidden("Members see only their own account.").ToResult();
        }
        if (!await replicas.EnsureReaderAsync(id, ct))
        {
            return Outcome.NotFound("reader").ToResult();
        }
        var reader = await db.Readers.AsNoTracking().SingleAsync(r => r.Id == id, ct);
        return Results.Ok(await accounts.AccountAsync(reader, await settings.CurrentAsync(ct), desk, time.GetUtcNow(), ct));
    }

    private static async Task<IResult> Add(Guid id, ManualBlockRequest request, ClaimsPrincipal caller, LendingDbContext db, ReplicaLookup replicas,
        TimeProvider time, ILogger<ReaderAccounts> logger, CancellationToken ct)
    {
        var now = time.DatabaseNow();
        var errors = new Dictionary<string, string[]>();
        var reason = request.Reason?.Trim();
        if (string.IsNullOrEmpty(reason) || reason.Length > FinesApi.MaxReasonLength || TextInput.HasControlCharacters(reason))
        {
            errors["reason"] = [$"reason is required: 1 to {FinesApi.MaxReasonLength} printable characters, shown to the reader."];
        }
        if (request.ExpiresAt is { } expires && expires <= now)
        {
            errors["expiresAt"] = ["expiresAt must be in the future (leave it out for a block until deleted)."];
        }
        if (request.Borrowing != true && request.Renewals != true && request.Holds != true)
        {
            errors["borrowing"] = ["A block must stop something: set at least one of borrowing, renewals, holds to true."];
        }
        if (errors.Count > 0)
        {
            return Results.ValidationProblem(errors);
        }
        if (!await replicas.EnsureReaderAsync(id, ct))
        {
            return Outcome.NotFound("reader").ToResult();
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
        return Results.Created($"/api/blocks/{block.Id}", BlockPolicy.FromManual(
            new ManualBlock(block.Id, block.Reason, block.ExpiresAt, block.Borrowing, block.Renewals, block.Holds, block.CreatedAt, block.CreatedBy)));
    }

    private static async Task<IResult> Delete(Guid id, ClaimsPrincipal caller, LendingDbContext db, ILogger<ReaderAccounts> logger, CancellationToken ct)
    {
        var deleted = await db.Blocks.Where(b => b.Id == id).ExecuteDeleteAsync(ct);
        if (deleted == 0)
        {
            return Outcome.NotFound("block").ToResult();
        }
        logger.LogInformation("Block {BlockId} lifted by {LibrarianId}", id, caller.UserId());
        return Results.NoContent();
    }
}
