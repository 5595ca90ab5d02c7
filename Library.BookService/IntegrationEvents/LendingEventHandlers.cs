using Library.BookService.Books;
using Library.BookService.Data;
using Library.Contracts.Events;
using Library.EventBus;
using Microsoft.EntityFrameworkCore;

namespace Library.BookService.IntegrationEvents;

/// <summary>
/// The lending service's word on a title's availability and on how many loanable copies it owns
/// (copies added or withdrawn at the desk change <c>totalCopies</c> too), kept as a read model.
/// One conditional update: an older version (late or re-delivered) changes nothing, whatever the
/// concurrency.
/// </summary>
public sealed class AvailabilityChangedHandler(CatalogDbContext db, CatalogCache cache, AfterCommit afterCommit) : IIntegrationEventHandler<BookAvailabilityChanged>
{
    public async Task HandleAsync(BookAvailabilityChanged e, CancellationToken cancellationToken)
    {
        var changed = await db.Database.ExecuteSqlAsync($"""
            UPDATE books SET available_copies = {e.AvailableCopies}, total_copies = {e.TotalCopies}, next_available_at = {e.NextAvailableAt}, availability_version = {e.Version}
            WHERE id = {e.BookId} AND availability_version < {e.Version}
            """, cancellationToken);
        if (changed > 0)
        {
            afterCommit.Add(cache.InvalidateAsync);
        }
    }
}

/// <summary>
/// Loan history, for recommendations and the "popular" sort; cached answers that used the old
/// history are dropped once it commits (the availability change usually comes with it, but the
/// two events are independent).
/// </summary>
public sealed class LoanCreatedHandler(CatalogDbContext db, CatalogCache cache, AfterCommit afterCommit) : IIntegrationEventHandler<LoanCreated>
{
    public async Task HandleAsync(LoanCreated e, CancellationToken cancellationToken)
    {
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO book_loans (loan_id, book_id, user_id, borrowed_at) VALUES ({e.LoanId}, {e.BookId}, {e.UserId}, {e.BorrowedAt})
            ON CONFLICT (loan_id) DO NOTHING
            """, cancellationToken);
        await db.Database.ExecuteSqlAsync($"UPDATE books SET recent_loans = recent_loans + 1 WHERE id = {e.BookId}", cancellationToken);
        afterCommit.Add(cache.InvalidateAsync);
    }
}

public sealed class LoanReturnedHandler(CatalogDbContext db) : IIntegrationEventHandler<LoanReturned>
{
    public Task HandleAsync(LoanReturned e, CancellationToken cancellationToken) =>
        db.Database.ExecuteSqlAsync($"""
            INSERT INTO book_loans (loan_id, book_id, user_id, borrowed_at, returned_at) VALUES ({e.LoanId}, {e.BookId}, {e.UserId}, {e.ReturnedAt}, {e.ReturnedAt})
            ON CONFLICT (loan_id) DO UPDATE SET returned_at = excluded.returned_at
            """, cancellationToken);
}

/// <summary>
/// Recomputes "loans in the last 90 days" every hour, so loans age out of the popular sort
/// (the loan handler only ever adds). One replica at a time, by an advisory lock.
/// </summary>
public sealed class PopularityRefresher(IServiceScopeFactory scopes, TimeProvider time, ILogger<PopularityRefresher> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromHours(1), time);
        do
        {
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<CatalogDbContext>();
                var since = time.GetUtcNow().AddDays(-90);
                var changed = await db.Database.ExecuteSqlAsync($"""
                    UPDATE books b SET recent_loans = coalesce(c.n, 0)
                    FROM books b2 LEFT JOIN (SELECT book_id, count(*)::int AS n FROM book_loans WHERE borrowed_at >= {since} GROUP BY book_id) c ON c.book_id = b2.id
                    WHERE b.id = b2.id AND b.recent_loans <> coalesce(c.n, 0) AND pg_try_advisory_xact_lock(7436298)
                    """, stoppingToken);
                if (changed > 0)
                {
                    await scope.ServiceProvider.GetRequiredService<CatalogCache>().InvalidateAsync();
                    logger.LogInformation("Popularity of {Count} titles recomputed", changed);
                }
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning(ex, "Recomputing popularity failed; next try in an hour");
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
