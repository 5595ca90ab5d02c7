using Library.Contracts.Events;
using Library.EventBus;
using Library.LendingService.Data;
using Library.LendingService.Holds;
using Library.LendingService.Privacy;
using Library.LendingService.Rules;
using Microsoft.Extensions.Options;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Loans;

/// <summary>
/// What time alone changes, every minute on the service's TimeProvider (tests move a fake clock):
/// ready holds past their pickup day pass their copy on; loans past due are announced once
/// (LoanOverdue); returned loans past Circulation:AnonymiseAfterDays lose their reader; answers
/// kept for Idempotency-Keys expire. Replicas may all run it: each title and loan is claimed with
/// SKIP LOCKED.
/// </summary>
public sealed class CirculationClock(
    IServiceScopeFactory scopes, TimeProvider time, IOptionsMonitor<LendingOptions> options, IOptionsMonitor<PrivacyOptions> privacy,
    ILogger<CirculationClock> logger) : MinuteClock(time, logger)
{
    /// <summary>Loans anonymised per transaction: short transactions, a few locks at a Time.</summary>
    public const int AnonymiseBatch = 500;

    protected override string Name => "Circulation clock";

    public override async Task TickAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LendingDbContext>();
        var queue = scope.ServiceProvider.GetRequiredService<WaitingList>();
        var settings = scope.ServiceProvider.GetRequiredService<CirculationSettings>();
        var now = Time.GetUtcNow();

        var titles = await db.Holds.Where(h => h.Status == HoldStatus.Ready && h.ReadyUntil < now).Select(h => h.BookId).Distinct().ToListAsync(ct);
        foreach (var bookId in titles)
        {
            await db.Database.CreateExecutionStrategy().ExecuteAsync(async token =>
            {
                db.ChangeTracker.Clear();
                await using var transaction = await db.Database.BeginTransactionAsync(token);
                // One replica per title at a time; the others skip it this tick.
                var locked = await db.Titles.FromSql($"SELECT * FROM titles WHERE id = {bookId} FOR UPDATE SKIP LOCKED").AsNoTracking().AnyAsync(token);
                if (locked && await queue.ExpireReadyAsync(bookId, await settings.CurrentAsync(token), Time.DatabaseNow(), token) > 0)
                {
                    logger.LogInformation("Expired ready holds of {BookId}; the copy passed on", bookId);
                }
                await transaction.CommitAsync(token);
            }, ct);
        }

        await db.Database.CreateExecutionStrategy().ExecuteAsync(async token =>
        {
            db.ChangeTracker.Clear();
            await using var transaction = await db.Database.BeginTransactionAsync(token);
            var overdue = await db.Loans.FromSql($"""
                SELECT * FROM loans WHERE returned_at IS NULL AND overdue_notified_at IS NULL AND due_at < {now}
                ORDER BY due_at LIMIT 500 FOR UPDATE SKIP LOCKED
                """).ToListAsync(token);
            foreach (var loan in overdue)
            {
                loan.OverdueNotifiedAt = now;
                db.AddEvent(new LoanOverdue(loan.Id, loan.BookId, loan.UserId!.Value, loan.DueAt));
            }
            await db.SaveChangesAsync(token);
            await transaction.CommitAsync(token);
            if (overdue.Count > 0)
            {
                logger.LogInformation("{Count} loans became overdue", overdue.Count);
            }
        }, ct);

        await AnonymiseDueAsync(db, scope.ServiceProvider.GetRequiredService<LoanAnonymiser>(), now, ct);

        var forgotten = now - options.CurrentValue.IdempotencyWindow;
        await db.IdempotentRequests.Where(r => r.CreatedAt < forgotten).ExecuteDeleteAsync(ct);
    }

    /// <summary>
    /// Returned loans older than the configured days lose their reader, in batches claimed with
    /// SKIP LOCKED (two replicas at once share the work, never block or repeat each other). Also
    /// sweeps what a loan anonymised at its return left behind after that transaction: its
    /// LoanReturned, sent since, and the Idempotency-Key answer stored after the return.
    /// </summary>
    public async Task<int> AnonymiseDueAsync(LendingDbContext db, LoanAnonymiser anonymiser, DateTimeOffset now, CancellationToken ct)
    {
        var total = 0;
        var days = privacy.CurrentValue.AnonymiseAfterDays;
        if (days > 0)
        {
            var before = now - TimeSpan.FromDays(days);
            total = await InBatchesAsync(db, anonymiser, now, $"""
                SELECT id AS value FROM loans
                WHERE returned_at IS NOT NULL AND anonymised_at IS NULL AND returned_at < {before}
                ORDER BY returned_at LIMIT {AnonymiseBatch} FOR UPDATE SKIP LOCKED
                """, ct);
            if (total > 0)
            {
                logger.LogInformation("{Count} returned loans anonymised (returned before {Before})", total, before);
            }
        }
        // Readers keeping no history: a safety net. The UserUpdated handler waits for returns in
        // flight (it locks the reader's open loans too), so only a loan returned by a release
        // before that fix, or a path not yet known, is caught here.
        var missed = await InBatchesAsync(db, anonymiser, now, $"""
            SELECT l.id AS value FROM readers r JOIN loans l ON l.user_id = r.id
            WHERE NOT r.keep_loan_history AND l.returned_at IS NOT NULL AND l.anonymised_at IS NULL
            LIMIT {AnonymiseBatch} FOR UPDATE OF l SKIP LOCKED
            """, ct);
        if (missed > 0)
        {
            logger.LogInformation("{Count} returned loans of readers keeping no history anonymised", missed);
        }
        // The last hour only: the anonymiser itself took care of everything older.
        await LoanAnonymiser.ScrubSentEventsAsync(db, now, TimeSpan.FromHours(1), ct);
        await LoanAnonymiser.ForgetStoredAnswersAsync(db, null, now - TimeSpan.FromHours(1), ct);
        await LoanAnonymiser.ForgetClosedFinesAsync(db, null, ct);
        return total + missed;
    }

    /// <summary>Claims loans with <paramref name="claim"/> (SKIP LOCKED) and anonymises them, one transaction per batch, until a batch comes short.</summary>
    private static async Task<int> InBatchesAsync(LendingDbContext db, LoanAnonymiser anonymiser, DateTimeOffset now, FormattableString claim, CancellationToken ct)
    {
        var total = 0;
        int claimed;
        do
        {
            claimed = await db.Database.CreateExecutionStrategy().ExecuteAsync(async token =>
            {
                db.ChangeTracker.Clear();
                await using var transaction = await db.Database.BeginTransactionAsync(token);
                var ids = await db.Database.SqlQuery<Guid>(claim).ToListAsync(token);
                var done = await anonymiser.AnonymiseAsync(ids, now, token);
                await transaction.CommitAsync(token);
                return done.Count;
            }, ct);
            total += claimed;
        }
        while (claimed == AnonymiseBatch && !ct.IsCancellationRequested);
        return total;
    }
}
