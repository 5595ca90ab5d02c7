using Library.Contracts.Events;
using Library.EventBus;
using Library.LendingService.Data;
using Library.LendingService.Holds;
using Library.LendingService.Rules;
using Microsoft.Extensions.Options;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Loans;

/// <summary>
/// What time alone changes, every minute on the service's TimeProvider (tests move a fake clock):
/// ready holds past their pickup day pass their copy on; loans past due are announced once
/// (LoanOverdue); answers kept for Idempotency-Keys expire. Replicas may all run it: each title
/// and loan is claimed with SKIP LOCKED.
/// </summary>
public sealed class CirculationClock(IServiceScopeFactory scopes, TimeProvider time, IOptionsMonitor<LendingOptions> options, ILogger<CirculationClock> logger) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromMinutes(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await TickAsync(stoppingToken);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning(ex, "Circulation clock tick failed; next in {Interval}", Interval);
            }
        }
    }

    public async Task TickAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LendingDbContext>();
        var queue = scope.ServiceProvider.GetRequiredService<WaitingList>();
        var settings = scope.ServiceProvider.GetRequiredService<CirculationSettings>();
        var now = time.GetUtcNow();

        var titles = await db.Holds.Where(h => h.Status == HoldStatus.Ready && h.ReadyUntil < now).Select(h => h.BookId).Distinct().ToListAsync(ct);
        foreach (var bookId in titles)
        {
            await db.Database.CreateExecutionStrategy().ExecuteAsync(async token =>
            {
                db.ChangeTracker.Clear();
                await using var transaction = await db.Database.BeginTransactionAsync(token);
                // One replica per title at a time; the others skip it this tick.
                var locked = await db.Titles.FromSql($"SELECT * FROM titles WHERE id = {bookId} FOR UPDATE SKIP LOCKED").AsNoTracking().AnyAsync(token);
                if (locked && await queue.ExpireReadyAsync(bookId, await settings.CurrentAsync(token), time.DatabaseNow(), token) > 0)
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
                db.AddEvent(new LoanOverdue(loan.Id, loan.BookId, loan.UserId, loan.DueAt));
            }
            await db.SaveChangesAsync(token);
            await transaction.CommitAsync(token);
            if (overdue.Count > 0)
            {
                logger.LogInformation("{Count} loans became overdue", overdue.Count);
            }
        }, ct);

        var forgotten = now - options.CurrentValue.IdempotencyWindow;
        await db.IdempotentRequests.Where(r => r.CreatedAt < forgotten).ExecuteDeleteAsync(ct);
    }
}
