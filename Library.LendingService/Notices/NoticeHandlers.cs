using Library.Contracts.Events;
using Library.EventBus;
using Library.LendingService.Data;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Notices;

// Notices fed by lending's own events, consumed back through its inbox like any other service's:
// the event's transaction (a return, the clock) stays as it was, and the inbox plus the notice's
// unique key make a re-delivered event a no-op. Each records in the consumer's transaction and
// wakes the sender once that commits.

public sealed class HoldReadyNoticeHandler(NoticeBook notices, AfterCommit afterCommit, NoticeSignal signal) : IIntegrationEventHandler<HoldReady>
{
    public async Task HandleAsync(HoldReady e, CancellationToken cancellationToken)
    {
        var notice = notices.New(NoticeKinds.HoldReady, $"{NoticeKinds.HoldReady}:{e.HoldId:N}", e.UserId, e.BookId);
        notice.HoldId = e.HoldId;
        notice.Deadline = e.ReadyUntil.ToUniversalTime();
        await NoticeEvents.RecordAsync(notices, notice, afterCommit, signal, cancellationToken);
    }
}

public sealed class HoldExpiredNoticeHandler(NoticeBook notices, AfterCommit afterCommit, NoticeSignal signal) : IIntegrationEventHandler<HoldExpired>
{
    public async Task HandleAsync(HoldExpired e, CancellationToken cancellationToken)
    {
        var notice = notices.New(NoticeKinds.HoldExpired, $"{NoticeKinds.HoldExpired}:{e.HoldId:N}", e.UserId, e.BookId);
        notice.HoldId = e.HoldId;
        notice.Deadline = e.ExpiredAt.ToUniversalTime();
        await NoticeEvents.RecordAsync(notices, notice, afterCommit, signal, cancellationToken);
    }
}

public sealed class FineChargedNoticeHandler(NoticeBook notices, AfterCommit afterCommit, NoticeSignal signal) : IIntegrationEventHandler<FineCharged>
{
    public async Task HandleAsync(FineCharged e, CancellationToken cancellationToken)
    {
        var notice = notices.New(NoticeKinds.FineCharged, $"{NoticeKinds.FineCharged}:{e.FineId:N}", e.UserId, e.BookId);
        notice.FineId = e.FineId;
        notice.LoanId = e.LoanId;
        notice.Amount = e.Amount;
        notice.Currency = e.Currency;
        notice.FineKind = e.Kind;
        notice.Deadline = e.ChargedAt.ToUniversalTime();
        await NoticeEvents.RecordAsync(notices, notice, afterCommit, signal, cancellationToken);
    }
}

/// <summary>The first overdue notice (the weekly repeats are the <see cref="NoticeClock"/>'s).</summary>
public sealed class LoanOverdueNoticeHandler(NoticeBook notices, AfterCommit afterCommit, NoticeSignal signal) : IIntegrationEventHandler<LoanOverdue>
{
    public async Task HandleAsync(LoanOverdue e, CancellationToken cancellationToken)
    {
        var notice = notices.New(NoticeKinds.Overdue, NoticeEvents.OverdueKey(e.LoanId, 1), e.UserId, e.BookId);
        notice.LoanId = e.LoanId;
        notice.Deadline = e.DueAt.ToUniversalTime();
        await NoticeEvents.RecordAsync(notices, notice, afterCommit, signal, cancellationToken);
    }
}

/// <summary>
/// Privacy: a notice about a loan (due-soon, overdue, a fine for it) ties the reader to the title
/// as the loan did, so when loans are anonymised their notices go too (mailed or not: the loan is
/// returned, nothing about it is due any more).
/// </summary>
public sealed class LoansAnonymisedNoticeHandler(LendingDbContext db) : IIntegrationEventHandler<LoansAnonymised>
{
    public async Task HandleAsync(LoansAnonymised e, CancellationToken cancellationToken)
    {
        var loanIds = e.LoanIds.ToArray();
        await db.Notices.Where(n => n.LoanId != null && loanIds.Contains(n.LoanId.Value)).ExecuteDeleteAsync(cancellationToken);
    }
}

internal static class NoticeEvents
{
    public static string OverdueKey(Guid loanId, int sequence) => $"{NoticeKinds.Overdue}:{loanId:N}:{sequence}";

    public static async Task RecordAsync(NoticeBook notices, Notice notice, AfterCommit afterCommit, NoticeSignal signal, CancellationToken ct)
    {
        if (await notices.RecordAsync(notice, ct))
        {
            afterCommit.Add(() =>
            {
                signal.Notify();
                return Task.CompletedTask;
            });
        }
    }
}
