using Library.LendingService.Data;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Notices;

/// <summary>
/// Records notices in the caller's transaction: an insert whose key exists already is a no-op, so
/// each notice exists once however often its cause is seen. The channel is decided here: email
/// when a mail server is configured (the sender then delivers it), else the feed alone.
/// </summary>
public sealed class NoticeBook(LendingDbContext db, NoticeSignal signal, TimeProvider time)
{
    public string Channel => signal.MailConfigured ? NoticeChannels.Email : NoticeChannels.Feed;

    /// <summary>Inserts the notice unless its key exists; true when inserted.</summary>
    public async Task<bool> RecordAsync(Notice notice, CancellationToken ct)
    {
        var now = time.DatabaseNow();
        var sentAt = notice.Channel == NoticeChannels.Feed ? now : (DateTimeOffset?)null;
        var inserted = await db.Database.ExecuteSqlAsync($"""
            INSERT INTO notices (id, user_id, kind, key, book_id, loan_id, hold_id, fine_id, sequence, deadline, amount, currency, fine_kind,
                                 created_at, channel, sent_at, attempts, next_attempt_at)
            VALUES ({notice.Id}, {notice.UserId}, {notice.Kind}, {notice.Key}, {notice.BookId}, {notice.LoanId}, {notice.HoldId}, {notice.FineId},
                    {notice.Sequence}, {notice.Deadline}, {notice.Amount}, {notice.Currency}, {notice.FineKind},
                    {now}, {notice.Channel}, {sentAt}, 0, now())
            ON CONFLICT (key) DO NOTHING
            """, ct);
        return inserted > 0;
    }

    public Notice New(string kind, string key, Guid userId, Guid bookId) => new()
    {
        Kind = kind,
        Key = key,
        UserId = userId,
        BookId = bookId,
        Channel = Channel,
    };
}
