using Library.BookService.Books;
using Library.BookService.Data;
using Library.Contracts.Events;
using Library.EventBus;
using Library.ServiceDefaults;
using Microsoft.EntityFrameworkCore;

namespace Library.BookService.IntegrationEvents;

/// <summary>
/// The lending service's word on a title's availability and on how many loanable copies it owns
/// (copies added or withdrawn at the desk change <c>totalCopies</c> too), kept as a read model.
/// One conditional update: an older version (late or re-delivered) changes nothing, whatever the
/// concurrency. Sent with the inbox row in one round trip (<see cref="IIntegrationEventStatements{TEvent}"/>).
/// </summary>
public sealed class AvailabilityChangedHandler(CatalogCache cache) : IIntegrationEventStatements<BookAvailabilityChanged>
{
    public IReadOnlyList<FormattableString> Statements(BookAvailabilityChanged e) =>
    [
        $"""
        UPDATE books SET available_copies = {e.AvailableCopies}, total_copies = {e.TotalCopies}, next_available_at = {e.NextAvailableAt}, availability_version = {e.Version}
        WHERE id = {e.BookId} AND availability_version < {e.Version}
        """,
    ];

    /// <summary>The title's row.</summary>
    public string? LockOrder(BookAvailabilityChanged e) => LoanHistoryLock.TitleRow(e.BookId);

    /// <summary>A title whose availability changed (or may have: counts unknown) drops its cached answers.</summary>
    public Task AppliedAsync(BookAvailabilityChanged e, IReadOnlyList<int>? rowsAffected) =>
        rowsAffected is [0] ? Task.CompletedTask : cache.InvalidateAsync([CatalogDependency.Book(e.BookId), CatalogDependency.Availability]);
}

/// <summary>
/// The loan-history writers and the anonymiser serialise on one advisory lock: the writers share
/// it, the anonymiser takes it alone. Without it, a LoanCreated committing while a
/// LoansAnonymised of the same loan commits (each unable to see the other's uncommitted row)
/// would keep the reader. One lock rather than one per loan: an anonymisation batch may name
/// thousands of loans, and it is rare and short.
/// </summary>
internal static class LoanHistoryLock
{
    /// <summary>Distinct from the popularity refresher's key (7436298).</summary>
    private const long Key = 7436299;

    /// <summary>
    /// The writers' statement, taken before the write in a statement of its own, so the write's
    /// snapshot (taken when it starts) sees what the anonymiser committed.
    /// </summary>
    public static FormattableString Shared => $"SELECT pg_advisory_xact_lock_shared({Key})";

    /// <summary>
    /// A title's row in the one order of the catalog consumer's row locks
    /// (<see cref="IIntegrationEventStatements{TEvent}.LockOrder"/>); its loans' history rows come
    /// after it, so events sharing a transaction take a title's row before any of its loans'.
    /// </summary>
    public static string TitleRow(Guid bookId) => $"{bookId:N}/0";

    /// <summary>A title's row, then a loan's history row (a new loan): after the title's other writers, in the order of the loans.</summary>
    public static string TitleThenLoanRow(Guid bookId, Guid loanId) => $"{bookId:N}/0/{loanId:N}";

    /// <summary>A loan's history row alone: after every writer of its title's row, in the order of the loans.</summary>
    public static string LoanRow(Guid bookId, Guid loanId) => $"{bookId:N}/1/{loanId:N}";

    public static Task ExclusiveAsync(CatalogDbContext db, CancellationToken ct) =>
        db.Database.ExecuteSqlAsync($"SELECT pg_advisory_xact_lock({Key})", ct);
}

/// <summary>
/// Loan history, for recommendations and the "popular" sort; cached answers that used the old
/// history are dropped once it commits (the availability change usually comes with it, but the
/// two events are independent). A loan already anonymised (its LoansAnonymised came first) is
/// recorded without its reader. The lock and the write go with the inbox row in one round trip.
/// </summary>
public sealed class LoanCreatedHandler(CatalogCache cache) : IIntegrationEventStatements<LoanCreated>
{
    public IReadOnlyList<FormattableString> Statements(LoanCreated e) =>
    [
        LoanHistoryLock.Shared,
        // The title's count, then the history row, in that order (LockOrder: events that share a
        // transaction lock a title's row before its loans'). The count was always raised whether
        // or not the row was new, and still is: the inbox applies each event once.
        $"UPDATE books SET recent_loans = recent_loans + 1 WHERE id = {e.BookId}",
        $"""
        INSERT INTO book_loans (loan_id, book_id, user_id, borrowed_at)
        VALUES ({e.LoanId}, {e.BookId}, CASE WHEN EXISTS (SELECT 1 FROM anonymised_loans WHERE loan_id = {e.LoanId}) THEN NULL ELSE {e.UserId} END, {e.BorrowedAt})
        ON CONFLICT (loan_id) DO NOTHING
        """,
    ];

    /// <summary>The title's row (its count of recent loans), then the loan's history row.</summary>
    public string? LockOrder(LoanCreated e) => LoanHistoryLock.TitleThenLoanRow(e.BookId, e.LoanId);

    public Task AppliedAsync(LoanCreated e, IReadOnlyList<int>? rowsAffected) => cache.InvalidateAsync([CatalogDependency.Loans]);
}

/// <summary>The return of a loan; the row keeps whatever reader it has (none once anonymised).</summary>
public sealed class LoanReturnedHandler : IIntegrationEventStatements<LoanReturned>
{
    public IReadOnlyList<FormattableString> Statements(LoanReturned e) =>
    [
        LoanHistoryLock.Shared,
        $"""
        INSERT INTO book_loans (loan_id, book_id, user_id, borrowed_at, returned_at)
        VALUES ({e.LoanId}, {e.BookId}, CASE WHEN EXISTS (SELECT 1 FROM anonymised_loans WHERE loan_id = {e.LoanId}) THEN NULL ELSE {e.UserId} END, {e.ReturnedAt}, {e.ReturnedAt})
        ON CONFLICT (loan_id) DO UPDATE SET returned_at = excluded.returned_at
        """,
    ];

    /// <summary>The loan's history row, after its title's (a loan of one title sorts after the title's row).</summary>
    public string? LockOrder(LoanReturned e) => LoanHistoryLock.LoanRow(e.BookId, e.LoanId);

    /// <summary>Nothing cached reads when a loan came back.</summary>
    public Task AppliedAsync(LoanReturned e, IReadOnlyList<int>? rowsAffected) => Task.CompletedTask;
}

/// <summary>
/// Marks on anonymised loans (<c>anonymised_loans</c>) are needed only until the loan's history
/// row exists without its reader: from then on neither LoanCreated (<c>DO NOTHING</c>) nor
/// LoanReturned (sets <c>returned_at</c> only) can write a reader into it, so the mark is dropped.
/// Without this the table grew by one row per loan ever anonymised, as large as the history.
/// </summary>
public static class AnonymisedLoanMarks
{
    public static Task<int> PruneAsync(CatalogDbContext db, CancellationToken ct) => db.Database.ExecuteSqlAsync($"""
        DELETE FROM anonymised_loans a USING book_loans b WHERE b.loan_id = a.loan_id AND b.user_id IS NULL
        """, ct);
}

/// <summary>
/// The catalog forgets the readers of anonymised loans: their history rows lose the reader, and
/// each loan is marked so a late LoanCreated/LoanReturned cannot bring the reader back. The rows
/// stay (book and dates): they still count for popularity, only no longer pair titles for "also
/// borrowed" (that needs to know it was the same reader).
/// </summary>
public sealed class LoansAnonymisedHandler(CatalogDbContext db, TimeProvider time, ILogger<LoansAnonymisedHandler> logger)
    : IIntegrationEventHandler<LoansAnonymised>
{
    public async Task HandleAsync(LoansAnonymised e, CancellationToken cancellationToken)
    {
        var ids = e.LoanIds.Distinct().ToArray();
        if (ids.Length == 0)
        {
            return;
        }
        await LoanHistoryLock.ExclusiveAsync(db, cancellationToken);
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO anonymised_loans (loan_id, anonymised_at) SELECT id, {time.GetUtcNow()} FROM unnest({ids}) AS id
            ON CONFLICT (loan_id) DO NOTHING
            """, cancellationToken);
        var forgotten = await db.Database.ExecuteSqlAsync(
            $"UPDATE book_loans SET user_id = NULL WHERE loan_id = ANY({ids}) AND user_id IS NOT NULL", cancellationToken);
        // Cached recommendations were computed from the readers just forgotten.
        db.Invalidates(CatalogDependency.Loans);
        logger.LogInformation("Anonymised {Count} loans ({Forgotten} history rows lost their reader)", ids.Length, forgotten);
    }
}

/// <summary>
/// Recomputes "loans in the last 90 days" every hour, so loans age out of the popular sort
/// (the loan handler only ever adds), and drops the anonymisation marks no longer needed
/// (<see cref="AnonymisedLoanMarks"/>). One replica at a time, by an advisory lock.
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
                var changed = await db.Database.CreateExecutionStrategy().ExecuteAsync(async token =>
                {
                    await using var tx = await db.Database.BeginTransactionAsync(token);
                    var mine = (await db.Database.SqlQuery<bool>($"SELECT pg_try_advisory_xact_lock(7436298) AS \"Value\"").ToListAsync(token)).Single();
                    if (!mine)
                    {
                        return 0; // another replica is recomputing
                    }
                    // Alone against the loan-history writers: the count's snapshot is taken after
                    // the lock, so an increment committed meanwhile is counted, not overwritten
                    // (without it a LoanCreated committing during this UPDATE lost its +1).
                    await LoanHistoryLock.ExclusiveAsync(db, token);
                    var n = await db.Database.ExecuteSqlAsync($"""
                        UPDATE books b SET recent_loans = coalesce(c.n, 0)
                        FROM books b2 LEFT JOIN (SELECT book_id, count(*)::int AS n FROM book_loans WHERE borrowed_at >= {since} GROUP BY book_id) c ON c.book_id = b2.id
                        WHERE b.id = b2.id AND b.recent_loans <> coalesce(c.n, 0)
                        """, token);
                    await AnonymisedLoanMarks.PruneAsync(db, token);
                    await tx.CommitAsync(token);
                    return n;
                }, stoppingToken);
                if (changed > 0)
                {
                    // The popular order and recommendations; nothing else reads recent_loans.
                    await scope.ServiceProvider.GetRequiredService<CatalogCache>().InvalidateAsync([CatalogDependency.Loans]);
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
