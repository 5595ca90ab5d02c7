using Library.Contracts.Events;
using Library.EventBus;
using Library.LendingService.Data;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Notices;

// Notices fed by lending's own events, consumed back through its inbox like any other service's:
// the event's transaction (a return, the clock) stays as it was, and the inbox plus the notice's
// unique key make a re-delivered event a no-op. Each records in the consumer's transaction and
// wakes the sender once that commits.

/// <summary>
/// Hold ready: one notice per time the hold becomes ready (the key holds its deadline, so a hold
/// readied again after its copy went missing is noticed again, a re-delivery is not). Nothing when
/// the hold is no longer ready by the time the event is handled (picked up, cancelled, expired or
/// anonymised: there is nothing to tell).
/// </summary>
public sealed class HoldReadyNoticeHandler(NoticeBook notices, LendingDbContext db, AfterCommit afterCommit, NoticeSignal signal) : IIntegrationEventHandler<HoldReady>
{
    public async Task HandleAsync(HoldReady e, CancellationToken cancellationToken)
    {
        if (!await db.Holds.AnyAsync(h => h.Id == e.HoldId && h.Status == HoldStatus.Ready && h.UserId != null, cancellationToken))
        {
            return;
        }
        var notice = notices.New(NoticeKinds.HoldReady, $"{NoticeKinds.HoldReady}:{e.HoldId:N}:{e.ReadyUntil.UtcTicks}", e.UserId, e.BookId);
        notice.HoldId = e.HoldId;
        notice.Deadline = e.ReadyUntil.ToUniversalTime();
        await NoticeEvents.RecordAsync(notices, notice, afterCommit, signal, cancellationToken);
    }
}

public sealed class HoldExpiredNoticeHandler(NoticeBook notices, LendingDbContext db, AfterCommit afterCommit, NoticeSignal signal) : IIntegrationEventHandler<HoldExpired>
{
    public async Task HandleAsync(HoldExpired e, CancellationToken cancellationToken)
    {
        if (await db.Holds.AnyAsync(h => h.Id == e.HoldId && h.UserId == null, cancellationToken))
        {
            return; // anonymised meanwhile
        }
        var notice = notices.New(NoticeKinds.HoldExpired, $"{NoticeKinds.HoldExpired}:{e.HoldId:N}", e.UserId, e.BookId);
        notice.HoldId = e.HoldId;
        notice.Deadline = e.ExpiredAt.ToUniversalTime();
        await NoticeEvents.RecordAsync(notices, notice, afterCommit, signal, cancellationToken);
    }
}

/// <summary>
/// Fine charged: the notice belongs to the debt, so it stays while the fine is open even when its
/// loan is anonymised (then without the loan: <see cref="NoticePrivacy"/>), also when this event
/// is handled after the anonymisation (a return anonymised at once publishes both).
/// </summary>
public sealed class FineChargedNoticeHandler(NoticeBook notices, LendingDbContext db, AfterCommit afterCommit, NoticeSignal signal) : IIntegrationEventHandler<FineCharged>
{
    public async Task HandleAsync(FineCharged e, CancellationToken cancellationToken)
    {
        var notice = notices.New(NoticeKinds.FineCharged, $"{NoticeKinds.FineCharged}:{e.FineId:N}", e.UserId, e.BookId);
        notice.FineId = e.FineId;
        notice.LoanId = e.LoanId is { } loanId && await db.Loans.AnyAsync(l => l.Id == loanId && l.AnonymisedAt != null, cancellationToken) ? null : e.LoanId;
        notice.Amount = e.Amount;
        notice.Currency = e.Currency;
        notice.FineKind = e.Kind;
        notice.Deadline = e.ChargedAt.ToUniversalTime();
        await NoticeEvents.RecordAsync(notices, notice, afterCommit, signal, cancellationToken);
    }
}

/// <summary>The first overdue notice (the weekly repeats are the <see cref="NoticeClock"/>'s).</summary>
public sealed class LoanOverdueNoticeHandler(NoticeBook notices, LendingDbContext db, AfterCommit afterCommit, NoticeSignal signal) : IIntegrationEventHandler<LoanOverdue>
{
    public async Task HandleAsync(LoanOverdue e, CancellationToken cancellationToken)
    {
        if (await db.Loans.AnyAsync(l => l.Id == e.LoanId && l.ReturnedAt != null, cancellationToken))
        {
            return; // back already (and perhaps anonymised): nothing is overdue
        }
        var notice = notices.New(NoticeKinds.Overdue, NoticeEvents.OverdueKey(e.LoanId, 1), e.UserId, e.BookId);
        notice.LoanId = e.LoanId;
        notice.Deadline = e.DueAt.ToUniversalTime();
        await NoticeEvents.RecordAsync(notices, notice, afterCommit, signal, cancellationToken);
    }
}

/// <summary>
/// Privacy, once more on the event: the anonymiser already applied <see cref="NoticePrivacy"/> in
/// its transaction; this catches notices of those loans recorded by events handled in between.
/// </summary>
public sealed class LoansAnonymisedNoticeHandler(LendingDbContext db) : IIntegrationEventHandler<LoansAnonymised>
{
    public Task HandleAsync(LoansAnonymised e, CancellationToken cancellationToken) =>
        NoticePrivacy.ForgetLoansAsync(db, [.. e.LoanIds], [], cancellationToken);
}

/// <summary>
/// What anonymising loans does to notices: a due-soon or overdue notice of the loan, and the
/// hold-ready or hold-expired notice of the hold it fulfilled, tie the reader to the title as the
/// loan did and are deleted (mailed or not: nothing about them is due any more). A fine-charged
/// notice belongs to the debt: it stays, without the loan, while the fine is open, and goes when
/// the closed fine forgets its reader (LoanAnonymiser.ForgetClosedFinesAsync).
/// </summary>
public static class NoticePrivacy
{
    public static async Task ForgetLoansAsync(LendingDbContext db, Guid[] loanIds, Guid[] holdIds, CancellationToken ct)
    {
        await db.Notices.Where(n => n.LoanId != null && loanIds.Contains(n.LoanId.Value) && n.Kind != NoticeKinds.FineCharged).ExecuteDeleteAsync(ct);
        await db.Notices.Where(n => n.LoanId != null && loanIds.Contains(n.LoanId.Value)).ExecuteUpdateAsync(s => s.SetProperty(n => n.LoanId, (Guid?)null), ct);
        if (holdIds.Length > 0)
        {
            await db.Notices.Where(n => n.HoldId != null && holdIds.Contains(n.HoldId.Value)).ExecuteDeleteAsync(ct);
        }
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
