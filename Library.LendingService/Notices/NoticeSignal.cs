using System.Threading.Channels;

namespace Library.LendingService.Notices;

/// <summary>
/// Wakes the <see cref="NoticeSender"/> when notices were committed (it also polls, so a lost
/// wake-up only delays), and says whether a mail server is configured at all.
/// </summary>
public sealed class NoticeSignal(MailServer? mail)
{
    private readonly Channel<bool> _channel = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });

    public MailServer? Mail { get; } = mail;
    public bool MailConfigured => Mail is not null;

    public void Notify() => _channel.Writer.TryWrite(true);

    public async Task WaitAsync(TimeSpan timeout, CancellationToken ct)
    {
        using var timeoutSource = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeoutSource.CancelAfter(timeout);
        try
        {
            await _channel.Reader.ReadAsync(timeoutSource.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            // Timed out: poll anyway.
        }
    }
}
