using System.Security.Claims;
using Library.LendingService.Data;
using Library.LendingService.Loans;
using Library.LendingService.Replicas;
using Library.LendingService.Rules;
using Library.ServiceDefaults;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Holds;

public sealed record HoldRequest(Guid? BookId, Guid? UserId);

public static class HoldsApi
{
    public static IEndpointRouteBuilder MapHolds(this IEndpointRouteBuilder app)
    {
        var holds = app.MapGroup("/api/holds").WithTags("Holds").RequireAuthorization(Policies.Member);
        holds.MapPost("/", Place);
        holds.MapGet("/", List);
        holds.MapDelete("/{id:guid}", Cancel);
        return app;
    }

    private static async Task<IResult> Place(HoldRequest request, ClaimsPrincipal caller, HttpRequest http, ReplicaLookup replicas,
        WaitingList queue, Idempotency idempotency, TimeProvider time, CancellationToken ct)
    {
        if (request.BookId is null || request.BookId == Guid.Empty)
        {
            return Results.ValidationProblem(new Dictionary<string, string[]> { ["bookId"] = ["bookId is required."] });
        }
        var key = http.Headers[Idempotency.Header].FirstOrDefault();
        if (Idempotency.InvalidKey(key) is { } badKey)
        {
            return badKey;
        }
        var (userId, forbidden) = LoansApi.ActingFor(caller, request.UserId);
        if (forbidden is not null)
        {
            return forbidden;
        }
        if (!await replicas.EnsureTitleAsync(request.BookId.Value, ct))
        {
            return Outcome.NotFound("book").ToResult();
        }
        if (!await replicas.EnsureReaderAsync(userId!.Value, ct))
        {
            return Outcome.NotFound("reader").ToResult();
        }
        var outcome = await idempotency.RunAsync(caller.UserId()!.Value, key, "hold",
            token => queue.PlaceAsync(request.BookId.Value, userId.Value, time.DatabaseNow(), token), ct);
        return outcome.ToResult();
    }

    private static async Task<IResult> List(ClaimsPrincipal caller, LendingDbContext db, WaitingList queue, Guid? userId, int? page, int? pageSize, CancellationToken ct)
    {
        if (!PageRequest.TryCreate(page, pageSize, out var paging, out var problem))
        {
            return problem!;
        }
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
        return Results.Ok(new PagedList<HoldResponse>(items, paging.Page, paging.PageSize, total));
    }

    /// <summary>The holder or a librarian; a ready hold's copy passes to the next reader.</summary>
    private static async Task<IResult> Cancel(Guid id, ClaimsPrincipal caller, HttpRequest http, LendingDbContext db, WaitingList queue, CirculationSettings settings, Idempotency idempotency, TimeProvider time, CancellationToken ct)
    {
        var key = http.Headers[Idempotency.Header].FirstOrDefault();
        if (Idempotency.InvalidKey(key) is { } badKey)
        {
            return badKey;
        }
        var hold = await db.Holds.AsNoTracking().SingleOrDefaultAsync(h => h.Id == id, ct);
        if (hold is null)
        {
            return (caller.IsLibrarian() ? Outcome.NotFound("hold") : Outcome.Forbidden("This is not one of your holds.")).ToResult();
        }
        if (!caller.IsLibrarian() && hold.UserId != caller.UserId())
        {
            return Outcome.Forbidden("This is another reader's hold.").ToResult();
        }
        return (await idempotency.RunAsync(caller.UserId()!.Value, key, $"cancel-hold:{id:N}", async token => await queue.CancelAsync(hold, await settings.CurrentAsync(token), time.DatabaseNow(), token), ct)).ToResult();
    }
}
