using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Library.LendingService.Notices;

/// <summary>
/// A notice to a reader: a line of their feed (<c>GET /api/notices</c>) and, on channel
/// <c>email</c>, the outbox of its mail (<see cref="NoticeSender"/> sends rows whose
/// <see cref="SentAt"/> is null). <see cref="Key"/> is unique: kind, the loan, hold or fine it is
/// about and its sequence number, so a re-delivered event, a restarted clock or a second replica
/// inserting the same notice inserts nothing.
/// </summary>
/// <remarks>
/// Notices live in the lending service: it already holds the loans, holds, fines and each
/// reader's address in one database. A separate notification service would need its own copy of
/// loans and readers' personal data (one more place for privacy to clean) for no gain at this
/// size; the mail is still decoupled from circulation by this table, so an SMTP outage delays
/// notices and never touches a borrow.
/// </remarks>
public sealed class Notice
{
    public Guid Id { get; set; } = Guid.CreateVersion7();
    public Guid UserId { get; set; }
    public required string Kind { get; set; }
    public required string Key { get; set; }
    public Guid BookId { get; set; }
    public Guid? LoanId { get; set; }
    public Guid? HoldId { get; set; }
    public Guid? FineId { get; set; }

    /// <summary>1 for every kind but <c>overdue</c>, whose weekly repeats are 2 and 3.</summary>
    public int Sequence { get; set; } = 1;

    /// <summary>The date the notice is about: the loan's due date, the hold's pickup deadline, when the hold expired or the fine was charged.</summary>
    public DateTimeOffset? Deadline { get; set; }

    /// <summary>A fine's amount in minor units of <see cref="Currency"/>, and its kind (overdue, lost).</summary>
    public long? Amount { get; set; }
    public string? Currency { get; set; }
    public string? FineKind { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    /// <summary><c>email</c>, or <c>feed</c> when no mail server is configured (the feed is then the delivery).</summary>
    public required string Channel { get; set; }

    /// <summary>When the mail server accepted the mail (null while pending); for channel <c>feed</c>, when recorded.</summary>
    public DateTimeOffset? SentAt { get; set; }

    /// <summary>Failed sends so far, the last error, and when the sender tries again (the database's clock).</summary>
    public int Attempts { get; set; }
    public string? LastError { get; set; }
    public DateTimeOffset NextAttemptAt { get; set; }

    /// <summary>
    /// When the sender gave up: only on errors of this notice itself (the server refused the message
    /// or its recipient for good, no address), after <see cref="NoticeOptions.MaxAttempts"/>; a
    /// mail server that cannot be reached never makes it give up.
    /// </summary>
    public DateTimeOffset? FailedAt { get; set; }
}

public static class NoticeKinds
{
    public const string DueSoon = "due-soon";
    public const string Overdue = "overdue";
    public const string HoldReady = "hold-ready";
    public const string HoldExpired = "hold-expired";
    public const string FineCharged = "fine-charged";

    public static readonly string[] All = [DueSoon, Overdue, HoldReady, HoldExpired, FineCharged];

    /// <summary>The overdue notice is sent on the first day overdue, then weekly: at most this many.</summary>
    public const int MaxOverdueNotices = 3;
    public static readonly TimeSpan OverdueRepeat = TimeSpan.FromDays(7);
}

public static class NoticeChannels
{
    public const string Email = "email";
    public const string Feed = "feed";
}

internal sealed class NoticeConfiguration : IEntityTypeConfiguration<Notice>
{
    public void Configure(EntityTypeBuilder<Notice> notice)
    {
        notice.Property(n => n.Id).ValueGeneratedNever();
        notice.Property(n => n.Kind).HasMaxLength(16);
        notice.Property(n => n.Key).HasMaxLength(120);
        notice.Property(n => n.Currency).HasMaxLength(3);
        notice.Property(n => n.FineKind).HasMaxLength(16);
        notice.Property(n => n.Channel).HasMaxLength(8);
        notice.Property(n => n.LastError).HasMaxLength(1000);
        // The one guard against sending twice, whatever the cause.
        notice.HasIndex(n => n.Key).IsUnique();
        notice.HasIndex(n => new { n.UserId, n.CreatedAt });
        // The clock's look-ups: a loan's due-soon and overdue notices.
        notice.HasIndex(n => new { n.LoanId, n.Kind });
        // The sender's queue: only the unsent rows.
        notice.HasIndex(n => n.NextAttemptAt).HasFilter("sent_at IS NULL AND failed_at IS NULL");
        notice.ToTable(t =>
        {
            t.HasCheckConstraint("ck_notices_kind", $"kind IN ({string.Join(", ", NoticeKinds.All.Select(k => $"'{k}'"))})");
            t.HasCheckConstraint("ck_notices_channel", $"channel IN ('{NoticeChannels.Email}', '{NoticeChannels.Feed}')");
        });
    }
}
