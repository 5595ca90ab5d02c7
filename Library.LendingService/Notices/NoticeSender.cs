using Library.LendingService.Data;
using Library.LendingService.Rules;
using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using MimeKit;

namespace Library.LendingService.Notices;

/// <summary>
/// Sends the notices' mail: claims unsent rows with <c>FOR UPDATE SKIP LOCKED</c> and a lease
/// (replicas share the work; none takes a row another is sending while its lease holds, and the
/// sending stops before the lease ends), commits, sends them over one SMTP connection with no
/// transaction open, then marks each sent or records the error and when to try again (doubling,
/// capped). A mail server that is down or slow only delays notices, and holds up no other
/// transaction. A notice the server refuses
/// for good (5xx) or without an address is given up after Notices:MaxAttempts (failed_at). Delivery is at least once:
/// a crash between the server's acceptance and the marking sends that notice again after its lease;
/// a stop mid-batch marks what was mailed and releases the rest at once.
/// The retry schedule is on the database's clock (<c>now()</c>), shared by the replicas and not
/// frozen by a test's fake TimeProvider; <see cref="Notice.SentAt"/> is the service's time.
/// </summary>
public sealed class NoticeSender(IServiceScopeFactory scopes, NoticeSignal signal, TimeProvider time, IOptionsMonitor<NoticeOptions> options, ILogger<NoticeSender> logger) : BackgroundService
{
    private sealed record Recipient(Guid Id, string Email, string FirstName, string LastName);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (signal.Mail is not { } mail)
        {
            logger.LogWarning("ConnectionStrings:{Name} is not set: notices are recorded in the readers' feeds only (channel {Channel}), no mail is sent",
                MailServer.ConnectionName, NoticeChannels.Feed);
            return;
        }
        logger.LogInformation("Notice sender: mail through {Host}:{Port}", mail.Host, mail.Port);
        while (!stoppingToken.IsCancellationRequested)
        {
            var more = false;
            try
            {
                more = await SendBatchAsync(mail, stoppingToken);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning(ex, "Notice sender pass failed; next in {Interval}", options.CurrentValue.PollInterval);
            }
            if (!more)
            {
                await signal.WaitAsync(options.CurrentValue.PollInterval, stoppingToken);
            }
        }
    }

    /// <summary>One batch; true when it was full (more may be waiting).</summary>
    public async Task<bool> SendBatchAsync(MailServer mail, CancellationToken ct)
    {
        var settings = options.CurrentValue;
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LendingDbContext>();
        var circulation = scope.ServiceProvider.GetRequiredService<CirculationSettings>();
        var strategy = db.Database.CreateExecutionStrategy();
        var claim = await strategy.ExecuteAsync(token => ClaimAsync(db, circulation, settings, token), ct);
        if (claim is null)
        {
            return false;
        }
        if (claim.Batch.Count == 0)
        {
            return true; // all moot: more may be waiting
        }
        var (outcomes, connectError) = await MailAsync(claim, mail, settings, ct);
        // Recorded even when stopping: what was mailed is marked, what was not is released at once.
        var sent = await strategy.ExecuteAsync(token => RecordAsync(db, claim, outcomes, connectError, settings, token), CancellationToken.None);
        if (sent > 0)
        {
            logger.LogInformation("{Sent} of {Count} notices mailed", sent, claim.Batch.Count);
        }
        ct.ThrowIfCancellationRequested();
        return connectError is null && claim.Claimed == settings.BatchSize;
    }

    /// <summary>
    /// What a batch mails: its notices, their readers' addresses and titles' names, the library's
    /// time zone, and the end of its lease (every notice's next_attempt_at while this sender holds it).
    /// </summary>
    private sealed record Claim(int Claimed, List<Notice> Batch, Dictionary<Guid, Recipient> Readers, Dictionary<Guid, string> Titles,
        NodaTime.DateTimeZone Zone, DateTimeOffset LeaseEnd, TimeSpan Lease);

    /// <summary>
    /// Claims a batch in a short transaction of its own: the rows locked with SKIP LOCKED (replicas
    /// share the work), the moot ones kept in the feed, and the rest leased (next_attempt_at moved
    /// to the lease's end, (batch + 2) SMTP timeouts ahead) so no other sender takes them meanwhile,
    /// then committed. The mail goes out after the commit: a row lock held across the mail server
    /// made a return wait for it (a reader who keeps no history has their loan's notices deleted by
    /// the return, in a transaction that holds the title). The lease bounds the mailing
    /// (<see cref="MailAsync"/>), and an outcome is recorded only while the lease still holds.
    /// A sender that dies mid-batch leaves its notices to be claimed again once the lease is over:
    /// at least once. Null when nothing is due.
    /// </summary>
    private async Task<Claim?> ClaimAsync(LendingDbContext db, CirculationSettings circulation, NoticeOptions settings, CancellationToken ct)
    {
        db.ChangeTracker.Clear();
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var batch = await db.Set<Notice>().FromSql($"""
            SELECT * FROM notices WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
            ORDER BY next_attempt_at LIMIT {settings.BatchSize} FOR UPDATE SKIP LOCKED
            """).AsNoTracking().ToListAsync(ct);
        if (batch.Count == 0)
        {
            return null;
        }
        var claimed = batch.Count;
        // Moot by now: a due-soon or overdue notice of a loan already back, a hold-ready notice of a
        // hold no longer ready (picked up, cancelled, expired). Kept in the feed, not mailed.
        var ids = batch.Select(n => n.Id).ToArray();
        var moot = await db.Database.SqlQuery<Guid>($"""
            UPDATE notices n SET channel = {NoticeChannels.Feed}, sent_at = {time.DatabaseNow()}, last_error = NULL
            WHERE n.id = ANY({ids}) AND (
                (n.kind IN ({NoticeKinds.DueSoon}, {NoticeKinds.Overdue}) AND EXISTS (SELECT 1 FROM loans l WHERE l.id = n.loan_id AND l.returned_at IS NOT NULL))
                OR (n.kind = {NoticeKinds.HoldReady} AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.id = n.hold_id AND h.status = 'ready')))
            RETURNING n.id AS value
            """).ToListAsync(ct);
        if (moot.Count > 0)
        {
            batch.RemoveAll(n => moot.Contains(n.Id));
            logger.LogInformation("{Count} notices no longer apply (loan back, hold no longer ready): kept in the feed, not mailed", moot.Count);
        }
        if (batch.Count == 0)
        {
            await transaction.CommitAsync(ct);
            return new Claim(claimed, batch, [], [], NodaTime.DateTimeZone.Utc, default, default);
        }
        var leased = batch.Select(n => n.Id).ToArray();
        var lease = settings.SmtpTimeout * (batch.Count + 2);
        // One statement, one now(): every notice of the batch gets the same lease end.
        var leaseEnd = (await db.Database.SqlQuery<DateTimeOffset>($"""
            UPDATE notices SET next_attempt_at = now() + make_interval(secs => {lease.TotalSeconds}) WHERE id = ANY({leased})
            RETURNING next_attempt_at AS value
            """).ToListAsync(ct))[0];
        var userIds = batch.Select(n => n.UserId).Distinct().ToList();
        var readers = await db.Readers.AsNoTracking().Where(r => userIds.Contains(r.Id))
            .Select(r => new Recipient(r.Id, r.Email, r.FirstName, r.LastName)).ToDictionaryAsync(r => r.Id, ct);
        var bookIds = batch.Select(n => n.BookId).Distinct().ToList();
        var titles = await db.Titles.AsNoTracking().Where(t => bookIds.Contains(t.Id)).ToDictionaryAsync(t => t.Id, t => t.Name, ct);
        var zone = (await circulation.CurrentAsync(ct)).Calendar.Zone;
        await transaction.CommitAsync(ct);
        return new Claim(claimed, batch, readers, titles, zone, leaseEnd, lease);
    }

    /// <summary>How mailing one notice went: not tried (the default), or tried with a null error when the server took it; permanent when it is the notice's own fault.</summary>
    private readonly record struct Outcome(bool Tried, string? Error, bool Permanent);

    /// <summary>
    /// The batch over one SMTP connection, outside any transaction. It stops once the lease has less
    /// than one SMTP timeout left (MailKit's timeout is per network step, so a slow server could
    /// otherwise outlast the lease while another sender claims the notices again), or when the
    /// service stops: the notices not tried are released.
    /// </summary>
    private async Task<(Outcome[] Outcomes, string? ConnectError)> MailAsync(Claim claim, MailServer mail, NoticeOptions settings, CancellationToken ct)
    {
        var outcomes = new Outcome[claim.Batch.Count];
        var leaseTimer = System.Diagnostics.Stopwatch.StartNew();
        using var client = new SmtpClient { Timeout = (int)settings.SmtpTimeout.TotalMilliseconds };
        string? connectError = null;
        try
        {
            await client.ConnectAsync(mail.Host, mail.Port, mail.Tls ? SecureSocketOptions.SslOnConnect : SecureSocketOptions.StartTlsWhenAvailable, ct);
            if (mail.UserName is { Length: > 0 })
            {
                await client.AuthenticateAsync(mail.UserName, mail.Password ?? "", ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return (outcomes, null);
        }
        catch (Exception ex)
        {
            connectError = $"{ex.GetType().Name}: {ex.Message}";
            logger.LogWarning("Mail server {Host}:{Port} unreachable; {Count} notices wait: {Error}", mail.Host, mail.Port, claim.Batch.Count, connectError);
        }
        for (var i = 0; i < claim.Batch.Count; i++)
        {
            var notice = claim.Batch[i];
            if (connectError is not null)
            {
                outcomes[i] = new Outcome(true, connectError, false);
                continue;
            }
            if (ct.IsCancellationRequested)
            {
                break;
            }
            if (leaseTimer.Elapsed > claim.Lease - settings.SmtpTimeout)
            {
                logger.LogWarning("Mail server {Host}:{Port} slow: {Left} of {Count} notices released untried, the batch's lease of {Lease} nearly over",
                    mail.Host, mail.Port, claim.Batch.Count - i, claim.Batch.Count, claim.Lease);
                break;
            }
            // Errors of this notice itself (not of the server's reachability) count towards giving up.
            if (!claim.Readers.TryGetValue(notice.UserId, out var reader))
            {
                outcomes[i] = new Outcome(true, "The reader is not known to lending (no address).", true);
                continue;
            }
            try
            {
                var message = NoticeMail.Compose(notice, new NoticeMail.Addressee(reader.Email, reader.FirstName, reader.LastName),
                    claim.Titles.GetValueOrDefault(notice.BookId, "a title"), new MailboxAddress(settings.FromName, settings.From), claim.Zone);
                await client.SendAsync(message, ct);
                outcomes[i] = new Outcome(true, null, false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                break; // not known whether the server took it: released, so it may go twice (at least once)
            }
            catch (SmtpCommandException ex) when ((int)ex.StatusCode >= 500)
            {
                outcomes[i] = new Outcome(true, $"{ex.GetType().Name} {(int)ex.StatusCode}: {ex.Message}", true);
            }
            catch (Exception ex)
            {
                outcomes[i] = new Outcome(true, $"{ex.GetType().Name}: {ex.Message}", false);
            }
        }
        if (client.IsConnected)
        {
            try
            {
                await client.DisconnectAsync(true, CancellationToken.None);
            }
            catch (Exception ex)
            {
                logger.LogDebug(ex, "Mail server {Host}:{Port}: the QUIT failed", mail.Host, mail.Port);
            }
        }
        return (outcomes, connectError);
    }

    /// <summary>
    /// Each notice marked sent, or its error recorded with when to try again (doubling, capped), or,
    /// not tried, released (due again now, no attempt counted). Only while this sender's lease still
    /// holds (next_attempt_at is its end): a notice claimed again by another sender, or deleted
    /// meanwhile (its loan anonymised), is not touched. One statement each, each its own
    /// transaction: one row lock at a time, so no cycle with a deletion of several of the same
    /// loan's notices (a return by a reader who keeps no history); every value is absolute, so a
    /// retry is harmless.
    /// </summary>
    private async Task<int> RecordAsync(LendingDbContext db, Claim claim, Outcome[] outcomes, string? connectError, NoticeOptions settings, CancellationToken ct)
    {
        var sent = 0;
        for (var i = 0; i < claim.Batch.Count; i++)
        {
            var notice = claim.Batch[i];
            var (tried, error, permanent) = outcomes[i];
            if (!tried)
            {
                await db.Database.ExecuteSqlAsync($"UPDATE notices SET next_attempt_at = now() WHERE id = {notice.Id} AND next_attempt_at = {claim.LeaseEnd}", ct);
                continue;
            }
            if (error is null)
            {
                sent += await db.Database.ExecuteSqlAsync(
                    $"UPDATE notices SET sent_at = {time.DatabaseNow()}, last_error = NULL WHERE id = {notice.Id} AND next_attempt_at = {claim.LeaseEnd}", ct);
                continue;
            }
            var attempts = notice.Attempts + 1;
            var retryAfter = settings.RetryAfter(attempts);
            error = error.Length > 1000 ? error[..1000] : error;
            DateTimeOffset? failedAt = permanent && attempts >= settings.MaxAttempts ? time.DatabaseNow() : null;
            await db.Database.ExecuteSqlAsync($"""
                UPDATE notices SET attempts = {attempts}, last_error = {error}, failed_at = {failedAt},
                    next_attempt_at = now() + make_interval(secs => {retryAfter.TotalSeconds})
                WHERE id = {notice.Id} AND next_attempt_at = {claim.LeaseEnd}
                """, ct);
            if (failedAt is not null)
            {
                logger.LogError("Notice {NoticeId} ({Kind}) given up after {Attempt} attempts: {Error}", notice.Id, notice.Kind, attempts, error);
            }
            else if (connectError is null)
            {
                logger.LogWarning("Notice {NoticeId} ({Kind}) not sent, attempt {Attempt}, retry in {RetryAfter}: {Error}", notice.Id, notice.Kind, attempts, retryAfter, error);
            }
        }
        return sent;
    }
}
