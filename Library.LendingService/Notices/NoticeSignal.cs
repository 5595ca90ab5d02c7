using Library.EventBus;

namespace Library.LendingService.Notices;

/// <summary>
/// Wakes the <see cref="NoticeSender"/> when notices were committed (it also polls, so a lost
/// wake-up only delays), and says whether a mail server is configured at all.
/// </summary>
public sealed class NoticeSignal(MailServer? mail) : WakeSignal
{
    public MailServer? Mail { get; } = mail;
    public bool MailConfigured => Mail is not null;
}
