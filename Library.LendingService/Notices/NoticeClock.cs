using Library.LendingService.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Library.LendingService.Notices;

/// <summary>
/// The notices time alone causes, every minute on the service's TimeProvider (tests move a fake
/// clock): due-soon (<c>Circulation:DueSoonDays</c> before the due date; once per loan and due
/// date, so a renewed loan is reminded of its new date) and the weekly repeats of the overdue
/// notice (the first comes from LoanOverdue; the n-th follows the (n-1)-th, 7 days later each,
/// at most <see cref="NoticeKinds.MaxOverdueNotices"/>). Replicas may all run it: the notices'
/// unique keys turn a second insert into nothing. Each tick inserts in one total order (due date,
/// loan, sequence: due dates tie at the end of a day), so two replicas' ticks waiting on each
/// other's keys cannot deadlock.
/// </summary>
public sealed class NoticeClock(IServiceScopeFactory scopes, TimeProvider time, IOptionsMonitor<DueSoonOptions> options, NoticeSignal signal, ILogger<NoticeClock> logger)
    : Loans.MinuteClock(time, logger)
{
    private const int Batch = 500;

    private sealed record DueLoan(Guid Id, Guid UserId, Guid BookId, DateTimeOffset DueAt, int Next);

    protected override string Name => "Notice clock";

    public override async Task TickAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LendingDbContext>();
        var notices = scope.ServiceProvider.GetRequiredService<NoticeBook>();
        var now = Time.DatabaseNow();
        var soon = now.AddDays(Math.Max(0, options.CurrentValue.DueSoonDays));

        var recorded = await db.Database.CreateExecutionStrategy().ExecuteAsync(async token =>
        {
            db.ChangeTracker.Clear();
            await using var transaction = await db.Database.BeginTransactionAsync(token);
            var count = 0;
            var dueSoon = await db.Database.SqlQuery<DueLoan>($"""
                SELECT l.id, l.user_id, l.book_id, l.due_at, 1 AS next FROM loans l
                WHERE l.returned_at IS NULL AND l.due_at > {now} AND l.due_at <= {soon}
                  AND NOT EXISTS (SELECT 1 FROM notices n WHERE n.loan_id = l.id AND n.kind = 'due-soon' AND n.deadline = l.due_at)
                ORDER BY l.due_at, l.id LIMIT {Batch}
                """).ToListAsync(token);
            foreach (var loan in dueSoon)
            {
                var notice = notices.New(NoticeKinds.DueSoon, $"{NoticeKinds.DueSoon}:{loan.Id:N}:{loan.DueAt.ToUnixTimeMilliseconds()}", loan.UserId, loan.BookId);
                notice.LoanId = loan.Id;
                notice.Deadline = loan.DueAt;
                count += await notices.RecordAsync(notice, token) ? 1 : 0;
            }

            var repeats = await db.Database.SqlQuery<DueLoan>($"""
                SELECT l.id, l.user_id, l.book_id, l.due_at, n.sequence + 1 AS next
                FROM notices n JOIN loans l ON l.id = n.loan_id
                WHERE n.kind = 'overdue' AND n.sequence < {NoticeKinds.MaxOverdueNotices} AND l.returned_at IS NULL
                  AND l.due_at + make_interval(days => {(int)NoticeKinds.OverdueRepeat.TotalDays} * n.sequence) <= {now}
                  AND NOT EXISTS (SELECT 1 FROM notices m WHERE m.loan_id = n.loan_id AND m.kind = 'overdue' AND m.sequence = n.sequence + 1)
                ORDER BY l.due_at, l.id, n.sequence LIMIT {Batch}
                """).ToListAsync(token);
            foreach (var loan in repeats)
            {
                var notice = notices.New(NoticeKinds.Overdue, NoticeEvents.OverdueKey(loan.Id, loan.Next), loan.UserId, loan.BookId);
                notice.LoanId = loan.Id;
                notice.Sequence = loan.Next;
                notice.Deadline = loan.DueAt;
                count += await notices.RecordAsync(notice, token) ? 1 : 0;
            }
            await transaction.CommitAsync(token);
            return count;
        }, ct);

        if (recorded > 0)
        {
            signal.Notify();
            logger.LogInformation("{Count} due-soon and overdue-repeat notices recorded", recorded);
        }
    }
}
