using System.ComponentModel.DataAnnotations;
using System.Security.Claims;
using Library.LendingService.Data;
using Library.LendingService.Loans;
using Library.LendingService.Replicas;
using Library.LendingService.Rules;
using Library.LendingService.Validation;
using Library.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Holds;

public sealed record HoldRequest([property: RequiredId(ErrorMessage = "bookId is required.")] Guid? BookId, Guid? UserId);

public static class HoldsApi
{
    public static IEndpointRouteBuilder MapHolds(this IEndpointRouteBuilder app)
    {
        var holds = app.MapGroup("/api/holds").WithTags("Holds").RequireAuthorization(Policies.Member);
        holds.MapPost("/", Place).WithName("PlaceHold")
            .WithSummary("Place a hold on a title")
            .WithDescription("A member for themself, a librarian for any reader (userId): the reader joins the title's queue and is told when a copy is set aside. "
                + "Refuses: 403 a member naming another reader or a block on holds, 404 unknown title or reader, 409 a copy on the shelf (borrow it) or a hold already placed, "
                + "422 an Idempotency-Key used for another request.")
            .ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        holds.MapGet("/", List).WithName("ListHolds").ProducesValidationProblem()
            .WithSummary("List holds")
            .WithDescription("A member lists their own holds (naming another reader is a 403); a librarian anyone's, or every hold without userId. Newest first, with the queue position.")
            .ProducesProblem(StatusCodes.Status403Forbidden);
        holds.MapDelete("/{id:guid}", Cancel).WithName("CancelHold")
            .WithSummary("Cancel a hold")
            .WithDescription("The holder or a librarian; a ready hold's copy passes to the next reader, and a hold already closed stays as it is (204 too). "
                + "Refuses: 403 another reader's hold, 404 unknown hold (librarian), 422 an Idempotency-Key used for another request.")
            .ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        return app;
    }

    private static async Task<Results<Created<HoldResponse>, ValidationProblem, ProblemHttpResult>> Place(
        HoldRequest request, [FromHeader(Name = Idempotency.Header), IdempotencyKey] string? idempotencyKey, ClaimsPrincipal caller, ReplicaLookup replicas,
        WaitingList queue, Idempotency idempotency, TimeProvider time, CancellationToken ct)
    {
        var (userId, forbidden) = LoansApi.ActingFor(caller, request.UserId);
        if (forbidden is not null)
        {
            return forbidden;
        }
        if (!await replicas.EnsureTitleAsync(request.BookId!.Value, ct))
        {
            return Outcome.NotFound("book").ToProblem();
        }
        if (!await replicas.EnsureReaderAsync(userId!.Value, ct))
        {
            return Outcome.NotFound("reader").ToProblem();
        }
        var outcome = await idempotency.RunAsync(caller.UserId()!.Value, idempotencyKey, "hold",
            token => queue.PlaceAsync(request.BookId.Value, userId.Value, time.DatabaseNow(), token), ct);
        return outcome.ToCreated<HoldResponse>();
    }

    private static async Task<Results<Ok<PagedList<HoldResponse>>, ProblemHttpResult>> List(ClaimsPrincipal caller, LendingDbContext db, WaitingList queue, Guid? userId,
        [Range(1, PageRequest.MaxPage, ErrorMessage = PageRequest.PageMessage)] int? page,
        [Range(1, PageRequest.MaxPageSize, ErrorMessage = PageRequest.PageSizeMessage)] int? pageSize, CancellationToken ct)
    {
        var paging = LoansApi.Paging(page, pageSize);
        var (reader, forbidden) = LoansApi.ActingFor(caller, userId);
        if (forbidden is not null)
        {
            return forbidden;
        }
        var query = db.Holds.AsNoTracking();
        if (!caller.IsLibrarian() || userId is not null)
        {
            query = query.Where(h => h.UserId == reader);
        }
        var total = await query.LongCountAsync(ct);
        var rows = await query.OrderByDescending(h => h.PlacedAt).ThenBy(h => h.Id).Skip(paging.Skip).Take(paging.PageSize)
            .Join(db.Titles, h => h.BookId, t => t.Id, (h, t) => new { Hold = h, t.Name }).ToListAsync(ct);
        var items = new List<HoldResponse>();
        foreach (var row in rows)
        {
            items.Add(await queue.ToResponseAsync(row.Hold, row.Name, ct));
        }
        return TypedResults.Ok(new PagedList<HoldResponse>(items, paging.Page, paging.PageSize, total));
    }

    /// <summary>The holder or a librarian; a ready hold's copy passes to the next reader.</summary>
    private static async Task<Results<NoContent, ValidationProblem, ProblemHttpResult>> Cancel(
        Guid id, [FromHeader(Name = Idempotency.Header), IdempotencyKey] string? idempotencyKey, ClaimsPrincipal caller, LendingDbContext db,
        WaitingList queue, CirculationSettings settings, Idempotency idempotency, TimeProvider time, CancellationToken ct)
    {
        // The caller's own hold (any hold for a librarian): ownership is part of the query.
        var librarian = caller.IsLibrarian();
        var me = caller.UserId();
        var hold = await db.Holds.AsNoTracking().Where(h => h.Id == id && (librarian || h.UserId == me)).SingleOrDefaultAsync(ct);
        if (hold is null)
        {
            return (librarian ? Outcome.NotFound("hold")
                : await db.Holds.AnyAsync(h => h.Id == id, ct) ? Outcome.Forbidden("This is another reader's hold.")
                : Outcome.Forbidden("This is not one of your holds.")).ToProblem();
        }
        return (await idempotency.RunAsync(caller.UserId()!.Value, idempotencyKey, $"cancel-hold:{id:N}",
            async token => await queue.CancelAsync(hold, await settings.CurrentAsync(token), time.DatabaseNow(), token), ct)).ToNoContent();
    }
}
