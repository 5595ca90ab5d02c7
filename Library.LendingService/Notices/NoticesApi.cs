using System.Security.Claims;
using System.ComponentModel.DataAnnotations;
using Library.LendingService.Data;
using Library.LendingService.Loans;
using Library.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Notices;

/// <summary>
/// A line of the reader's notice feed. <c>title</c> is the book's title (as on a loan);
/// <c>subject</c> is the notice's headline, as in its mail. <c>sentAt</c> is null while the mail
/// waits for the mail server; <c>channel</c> is <c>email</c>, or <c>feed</c> when no mail server is configured;
/// <c>failedAt</c> is when the sender gave the mail up (the server refused it for good).
/// </summary>
public sealed record NoticeResponse(Guid Id, string Kind, string Title, string Subject, Guid BookId, Guid? LoanId, Guid? HoldId, Guid? FineId,
    DateTimeOffset? SentAt, string Channel, DateTimeOffset CreatedAt, DateTimeOffset? FailedAt);

public static class NoticesApi
{
    public static IEndpointRouteBuilder MapNotices(this IEndpointRouteBuilder app)
    {
        app.MapGroup("/api/notices").WithTags("Notices").RequireAuthorization(Policies.Member)
            .MapGet("/", List).WithName("ListMyNotices").ProducesValidationProblem()
            .WithSummary("List my notices")
            .WithDescription("Any signed-in user: their own notices (due soon, overdue, hold ready, hold expired, fine charged), newest first, "
                + "with whether and when each was mailed. No one reads another's feed, librarians included.");
        return app;
    }

    /// <summary>The signed-in user's own notices, newest first (a librarian sees their own too: no one else's).</summary>
    private static async Task<Ok<PagedList<NoticeResponse>>> List(ClaimsPrincipal caller, LendingDbContext db,
        [Range(1, PageRequest.MaxPage, ErrorMessage = PageRequest.PageMessage)] int? page,
        [Range(1, PageRequest.MaxPageSize, ErrorMessage = PageRequest.PageSizeMessage)] int? pageSize, CancellationToken ct)
    {
        var paging = LoansApi.Paging(page, pageSize);
        var userId = caller.UserId()!.Value;
        var query = db.Set<Notice>().AsNoTracking().Where(n => n.UserId == userId);
        var total = await query.LongCountAsync(ct);
        var rows = await query.OrderByDescending(n => n.CreatedAt).ThenByDescending(n => n.Id).Skip(paging.Skip).Take(paging.PageSize).ToListAsync(ct);
        var bookIds = rows.Select(n => n.BookId).Distinct().ToList();
        var titles = await db.Titles.AsNoTracking().Where(t => bookIds.Contains(t.Id)).ToDictionaryAsync(t => t.Id, t => t.Name, ct);
        var items = rows.Select(n =>
        {
            var title = titles.GetValueOrDefault(n.BookId, "");
            return new NoticeResponse(n.Id, n.Kind, title, NoticeMail.Subject(n, title), n.BookId, n.LoanId, n.HoldId, n.FineId, n.SentAt, n.Channel, n.CreatedAt, n.FailedAt);
        }).ToList();
        return TypedResults.Ok(new PagedList<NoticeResponse>(items, paging.Page, paging.PageSize, total));
    }
}
