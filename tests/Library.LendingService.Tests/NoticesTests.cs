using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Library.Contracts.Events;
using Library.LendingService.Notices;
using Library.TestSupport;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Library.LendingService.Tests;

/// <summary>
/// The lending service mailing through the real test MailDev, behind a TCP proxy the tests cut to
/// play a mail server that is down (the shared MailDev stays up for everyone else).
/// </summary>
public sealed class NoticesFixture : LendingFixture
{
    public TcpProxy MailProxy { get; }

    public NoticesFixture()
    {
        var (host, port) = MailDev.SmtpEndpoint();
        MailProxy = new TcpProxy(host, port);
        MailProxy.Restore();
    }

    protected override void ConfigureLending(IDictionary<string, string?> settings)
    {
        settings["ConnectionStrings:mail"] = $"Endpoint=smtp://127.0.0.1:{MailProxy.Port}";
        settings["Notices:PollInterval"] = "00:00:00.200";
        settings["Notices:RetryDelay"] = "00:00:00.200";
        settings["Notices:MaxRetryDelay"] = "00:00:01";
        settings["Notices:SmtpTimeout"] = "00:00:05";
        settings["Notices:MaxAttempts"] = "3";
    }

    public NoticeClock NoticeClock => Lending.Services.GetServices<IHostedService>().OfType<NoticeClock>().Single();
}

public sealed class NoticesTests(NoticesFixture fixture) : IClassFixture<NoticesFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private sealed record Reader(Guid Id, string Token, string Email);

    /// <summary>A real reader, once lending's replica has their address.</summary>
    private async Task<Reader> ReaderAsync()
    {
        var (id, token) = await fixture.ReaderAsync();
        string? email = null;
        await LendingFixture.WaitUntilAsync(async () =>
            (email = await fixture.InLendingAsync(db => db.Readers.Where(r => r.Id == id).Select(r => r.Email).SingleOrDefaultAsync(Ct))) is not null,
            "the reader's replica");
        return new Reader(id, token, email!);
    }

    private async Task<List<JsonElement>> FeedAsync(Reader reader)
    {
        var page = await fixture.Client(reader.Token).GetFromJsonAsync<JsonElement>("/api/notices?pageSize=100", Ct);
        return [.. page.GetProperty("items").EnumerateArray()];
    }

    private Task<List<Notice>> NoticesOfAsync(Guid userId) =>
        fixture.InLendingAsync(db => db.Notices.AsNoTracking().Where(n => n.UserId == userId).OrderBy(n => n.CreatedAt).ToListAsync(Ct));

    /// <summary>Waits until the reader has <paramref name="count"/> notices of the kind, all mailed, and <paramref name="mailCount"/> (else as many) mails with the subject's start.</summary>
    private async Task<List<ReceivedMail>> DeliveredAsync(Reader reader, string kind, string subjectStart, int count, int? mailCount = null)
    {
        await LendingFixture.WaitUntilAsync(async () =>
        {
            var notices = (await NoticesOfAsync(reader.Id)).Where(n => n.Kind == kind).ToList();
            return notices.Count >= count && notices.All(n => n.SentAt is not null);
        }, $"{count} {kind} notice(s) mailed");
        List<ReceivedMail> mails = [];
        await LendingFixture.WaitUntilAsync(async () =>
            (mails = (await MailDev.ToAsync(reader.Email)).Where(m => m.Subject.StartsWith(subjectStart, StringComparison.Ordinal)).ToList()).Count >= (mailCount ?? count),
            $"{mailCount ?? count} '{subjectStart}' mail(s) in MailDev");
        return mails;
    }

    /// <summary>
    /// The notice saved as due now, then claimed by the service's own sender (the sender leases what
    /// it claims), whose batch waits for the greeting of the stalled mail server (<c>MailProxy.Stall()</c> first).
    /// </summary>
    private async Task<Guid> ClaimedByTheStalledSenderAsync(Notice notice)
    {
        notice.CreatedAt = fixture.Clock.GetUtcNow();
        notice.NextAttemptAt = DateTimeOffset.UtcNow.AddSeconds(-1);
        await fixture.InLendingAsync(db =>
        {
            db.Notices.Add(notice);
            return db.SaveChangesAsync(Ct);
        });
        await LendingFixture.WaitUntilAsync(async () => await fixture.InLendingAsync(db => db.Database.SqlQuery<bool>(
            $"SELECT next_attempt_at > now() AND sent_at IS NULL AS value FROM notices WHERE id = {notice.Id}").ToListAsync(Ct)) is [true], "the notice claimed by the sender");
        await LendingFixture.WaitUntilAsync(() => Task.FromResult(fixture.MailProxy.StalledOpen > 0), "the sender waiting for the mail server's greeting");
        return notice.Id;
    }

    private async Task ConsumedAsync(Guid eventId) =>
        await LendingFixture.WaitUntilAsync(async () => await fixture.InLendingAsync(db =>
            db.Database.SqlQuery<int>($"SELECT count(*)::int AS value FROM inbox_messages WHERE event_id = {eventId}").ToListAsync(Ct)) is [> 0],
            "the event consumed");

    [Fact]
    public async Task A_fine_delivered_twice_is_one_notice_and_one_multipart_mail()
    {
        var reader = await ReaderAsync();
        var book = await fixture.TitleAsync(1, "Fined Title");
        await LendingFixture.WaitUntilAsync(async () => await fixture.InLendingAsync(db => db.Titles.AnyAsync(t => t.Id == book, Ct)), "the title's replica");
        var fine = new FineCharged(Guid.CreateVersion7(), reader.Id, null, book, "lost", 2550, "EUR", fixture.Clock.GetUtcNow());
        await Broker.PublishAsync(fixture.Exchange, "fine.charged", fine, fine.Id);
        await Broker.PublishAsync(fixture.Exchange, "fine.charged", fine, fine.Id);
        // The same fine under another event id (a publisher that retried with a new id): the key still holds.
        var again = fine with { Id = Guid.CreateVersion7() };
        await Broker.PublishAsync(fixture.Exchange, "fine.charged", again, again.Id);
        await ConsumedAsync(fine.Id);
        await ConsumedAsync(again.Id);

        var mails = await DeliveredAsync(reader, NoticeKinds.FineCharged, "Fine charged: Fined Title", 1);
        var notice = Assert.Single(await NoticesOfAsync(reader.Id), n => n.Kind == NoticeKinds.FineCharged);
        Assert.Equal(fine.FineId, notice.FineId);
        var mail = Assert.Single(mails);
        Assert.Contains("A fine of 25.50 EUR was charged for \"Fined Title\" (lost).", mail.Text, StringComparison.Ordinal);
        Assert.Contains("<p>A fine of 25.50 EUR was charged for &quot;Fined Title&quot; (lost).</p>", mail.Html, StringComparison.Ordinal);
        Assert.Contains("Dear Test member,", mail.Text, StringComparison.Ordinal);
        var source = await MailDev.SourceAsync(mail.Id);
        Assert.Contains("multipart/alternative", source, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("text/plain", source, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("text/html", source, StringComparison.OrdinalIgnoreCase);
        Assert.Contains($"notice-{notice.Id:N}@library.local", source, StringComparison.Ordinal);

        var feed = Assert.Single(await FeedAsync(reader));
        Assert.Equal(notice.Id, feed.GetProperty("id").GetGuid());
        Assert.Equal("fine-charged", feed.GetProperty("kind").GetString());
        Assert.Equal("Fined Title", feed.GetProperty("title").GetString());
        Assert.Equal(book, feed.GetProperty("bookId").GetGuid());
        Assert.Equal("email", feed.GetProperty("channel").GetString());
        Assert.Equal(JsonValueKind.String, feed.GetProperty("sentAt").ValueKind);
    }

    [Fact]
    public async Task A_ready_hold_and_its_expiry_are_noticed_once_each_even_when_the_event_comes_again()
    {
        var owner = await ReaderAsync();
        var waiter = await ReaderAsync();
        var book = await fixture.TitleAsync(1, "Held Title");
        var loan = await (await fixture.BorrowAsync(book, token: owner.Token)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        var hold = await (await fixture.PlaceHoldAsync(book, token: waiter.Token)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        var holdId = hold.GetProperty("id").GetGuid();
        Assert.Equal(HttpStatusCode.OK, (await fixture.Client(owner.Token).PostAsync($"/api/loans/{loan.GetProperty("id").GetGuid()}/return", null, Ct)).StatusCode);

        var ready = Assert.Single(await DeliveredAsync(waiter, NoticeKinds.HoldReady, "Ready for pickup: Held Title", 1));
        var readyUntil = (await fixture.InLendingAsync(db => db.Holds.SingleAsync(h => h.Id == holdId, Ct))).ReadyUntil!.Value;
        Assert.Contains(NoticeMail.When(readyUntil), ready.Text, StringComparison.Ordinal);

        // The same hold.ready again, under a new event id: still one notice, one mail.
        var replay = new HoldReady(holdId, book, waiter.Id, readyUntil);
        await Broker.PublishAsync(fixture.Exchange, "hold.ready", replay, replay.Id);
        await ConsumedAsync(replay.Id);

        // Not picked up: expired, and the waiter is told once.
        fixture.Clock.Advance(readyUntil - fixture.Clock.GetUtcNow() + TimeSpan.FromMinutes(2));
        Assert.Single(await DeliveredAsync(waiter, NoticeKinds.HoldExpired, "Hold expired: Held Title", 1));
        var expired = Assert.Single(await fixture.InLendingAsync(db => db.Set<Library.EventBus.OutboxMessage>().Where(m => m.EventName == "hold.expired").ToListAsync(Ct)),
            m => JsonDocument.Parse(m.Payload).RootElement.GetProperty("holdId").GetGuid() == holdId);
        await ConsumedAsync(expired.Id);
        fixture.Clock.Advance(TimeSpan.FromMinutes(5)); // more ticks

        var notices = await NoticesOfAsync(waiter.Id);
        Assert.Single(notices, n => n.Kind == NoticeKinds.HoldReady && n.HoldId == holdId);
        Assert.Single(notices, n => n.Kind == NoticeKinds.HoldExpired && n.HoldId == holdId);
        var mails = await MailDev.ToAsync(waiter.Email);
        Assert.Single(mails, m => m.Subject == "Ready for pickup: Held Title");
        Assert.Single(mails, m => m.Subject == "Hold expired: Held Title");
        var feed = await FeedAsync(waiter);
        Assert.Equal(["hold-expired", "hold-ready"], feed.Select(n => n.GetProperty("kind").GetString()!).ToArray());
        Assert.All(feed, n => Assert.Equal(holdId, n.GetProperty("holdId").GetGuid()));
        Assert.Empty(await FeedAsync(owner)); // a reader sees only their own notices
    }

    [Fact]
    public async Task Due_soon_then_overdue_on_the_first_day_and_weekly_at_most_three_times()
    {
        var reader = await ReaderAsync();
        var book = await fixture.TitleAsync(1, "Late Title");
        var loan = await (await fixture.BorrowAsync(book, token: reader.Token, days: 7)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        var loanId = loan.GetProperty("id").GetGuid();
        var dueAt = loan.GetProperty("dueAt").GetDateTimeOffset();

        // Not yet: more than two days before the due date.
        await fixture.NoticeClock.TickAsync(Ct);
        Assert.DoesNotContain(await NoticesOfAsync(reader.Id), n => n.LoanId == loanId);

        // Two days before: due soon, once however many ticks.
        fixture.Clock.Advance(dueAt - fixture.Clock.GetUtcNow() - TimeSpan.FromDays(2) + TimeSpan.FromMinutes(1));
        var dueSoon = Assert.Single(await DeliveredAsync(reader, NoticeKinds.DueSoon, "Due soon: Late Title", 1));
        Assert.Contains(NoticeMail.When(dueAt), dueSoon.Text, StringComparison.Ordinal);
        fixture.Clock.Advance(TimeSpan.FromHours(12));
        await fixture.NoticeClock.TickAsync(Ct);

        // The first day overdue (from loan.overdue), then 7 and 14 days later.
        fixture.Clock.Advance(dueAt - fixture.Clock.GetUtcNow() + TimeSpan.FromMinutes(2));
        Assert.Single(await DeliveredAsync(reader, NoticeKinds.Overdue, "Overdue: Late Title", 1));
        fixture.Clock.Advance(TimeSpan.FromDays(7));
        await fixture.NoticeClock.TickAsync(Ct);
        Assert.Single(await DeliveredAsync(reader, NoticeKinds.Overdue, "Overdue (reminder 1): Late Title", 2, 1));
        fixture.Clock.Advance(TimeSpan.FromDays(7));
        await fixture.NoticeClock.TickAsync(Ct);
        Assert.Single(await DeliveredAsync(reader, NoticeKinds.Overdue, "Overdue (reminder 2): Late Title", 3, 1));

        // Never a fourth.
        fixture.Clock.Advance(TimeSpan.FromDays(7));
        await fixture.NoticeClock.TickAsync(Ct);
        fixture.Clock.Advance(TimeSpan.FromDays(7));
        await fixture.NoticeClock.TickAsync(Ct);
        var notices = (await NoticesOfAsync(reader.Id)).Where(n => n.LoanId == loanId).ToList();
        Assert.Equal([1, 2, 3], notices.Where(n => n.Kind == NoticeKinds.Overdue).Select(n => n.Sequence).Order().ToArray());
        Assert.Single(notices, n => n.Kind == NoticeKinds.DueSoon);
        var mails = await MailDev.ToAsync(reader.Email);
        Assert.Equal(4, mails.Count);
        Assert.Single(mails, m => m.Subject == "Due soon: Late Title");
        Assert.Equal(3, mails.Count(m => m.Subject.StartsWith("Overdue", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_mail_server_down_delays_notices_and_loses_none()
    {
        var reader = await ReaderAsync();
        var book = await fixture.TitleAsync(1, "Outage Title");
        await LendingFixture.WaitUntilAsync(async () => await fixture.InLendingAsync(db => db.Titles.AnyAsync(t => t.Id == book, Ct)), "the title's replica");

        fixture.MailProxy.Cut();
        try
        {
            var fines = Enumerable.Range(1, 3).Select(i => new FineCharged(Guid.CreateVersion7(), reader.Id, null, book, "overdue", 100 * i, "EUR", fixture.Clock.GetUtcNow())).ToList();
            foreach (var fine in fines)
            {
                await Broker.PublishAsync(fixture.Exchange, "fine.charged", fine, fine.Id);
            }
            // Recorded, tried, failed, waiting: the feed has them unsent, MailDev has nothing.
            await LendingFixture.WaitUntilAsync(async () =>
            {
                var notices = await NoticesOfAsync(reader.Id);
                // More attempts than MaxAttempts (3): an unreachable server never makes the sender give up.
                return notices.Count == 3 && notices.All(n => n.SentAt is null && n.FailedAt is null && n.Attempts >= 4 && n.LastError is not null);
            }, "three notices failing to send");
            var feed = await FeedAsync(reader);
            Assert.Equal(3, feed.Count);
            Assert.All(feed, n => Assert.Equal(JsonValueKind.Null, n.GetProperty("sentAt").ValueKind));
            Assert.Empty(await MailDev.ToAsync(reader.Email));
            // Borrowing goes on meanwhile.
            Assert.Equal(HttpStatusCode.Created, (await fixture.BorrowAsync(book, token: reader.Token)).StatusCode);
        }
        finally
        {
            fixture.MailProxy.Restore();
        }

        var mails = await DeliveredAsync(reader, NoticeKinds.FineCharged, "Fine charged: Outage Title", 3);
        Assert.Equal(3, mails.Count);
        Assert.Equal(3, mails.Select(m => m.Text).Distinct().Count());
        Assert.All(await FeedAsync(reader), n => Assert.Equal(JsonValueKind.String, n.GetProperty("sentAt").ValueKind));
    }

    /// <summary>
    /// The sender mails with no transaction open, so a mail server that accepts and never answers
    /// holds up no return. A return by a reader who keeps no loan history deletes the loan's
    /// notices in its own transaction (which holds the title); when the sender kept its batch's
    /// rows locked while it talked to the server, that return waited for the server, up to its
    /// timeout for each notice of the batch.
    /// </summary>
    [Fact]
    public async Task A_return_does_not_wait_for_a_mail_server_that_does_not_answer()
    {
        var reader = await ReaderAsync();
        var book = await fixture.TitleAsync(1, "Slow Mail Title");
        await LendingFixture.WaitUntilAsync(async () => await fixture.InLendingAsync(db => db.Titles.AnyAsync(t => t.Id == book, Ct)), "the title's replica");
        await fixture.InLendingAsync(db => db.Database.ExecuteSqlAsync($"UPDATE readers SET keep_loan_history = false WHERE id = {reader.Id}", Ct));
        using var borrowed = await fixture.BorrowAsync(book, token: reader.Token);
        Assert.Equal(HttpStatusCode.Created, borrowed.StatusCode);
        var loan = await borrowed.Content.ReadFromJsonAsync<JsonElement>(Ct);
        var loanId = loan.GetProperty("id").GetGuid();

        fixture.MailProxy.Stall();
        try
        {
            var notice = await ClaimedByTheStalledSenderAsync(new Notice
            {
                Kind = NoticeKinds.DueSoon, Key = $"test:{Guid.NewGuid():N}", UserId = reader.Id, BookId = book, LoanId = loanId,
                Deadline = loan.GetProperty("dueAt").GetDateTimeOffset(), Channel = NoticeChannels.Email,
            });

            using var returned = await fixture.Client(reader.Token).PostAsync($"/api/loans/{loanId}/return", null, Ct);
            Assert.Equal(HttpStatusCode.OK, returned.StatusCode);
            // Answered while the sender still waits (it gives up after Notices:SmtpTimeout, 5 s here).
            Assert.True(fixture.MailProxy.StalledOpen > 0, "the return was answered only once the sender had given up on the mail server");
            Assert.False(await fixture.InLendingAsync(db => db.Notices.AnyAsync(n => n.Id == notice, Ct)), "the return deletes the loan's notice");
        }
        finally
        {
            fixture.MailProxy.Cut();
            fixture.MailProxy.Restore();
        }
    }

    /// <summary>
    /// A sender records an outcome only while its lease holds: once the notice is due again and
    /// another sender has claimed it (its own lease), the first sender's late answer from the mail
    /// server changes nothing, neither the attempts nor the other sender's lease.
    /// </summary>
    [Fact]
    public async Task A_sender_records_nothing_on_a_notice_claimed_again_after_its_lease()
    {
        var reader = await ReaderAsync();
        var book = await fixture.TitleAsync(1, "Lease Title");
        await LendingFixture.WaitUntilAsync(async () => await fixture.InLendingAsync(db => db.Titles.AnyAsync(t => t.Id == book, Ct)), "the title's replica");
        fixture.MailProxy.Stall();
        Guid notice;
        DateTimeOffset otherLease;
        try
        {
            notice = await ClaimedByTheStalledSenderAsync(new Notice
            {
                Kind = NoticeKinds.FineCharged, Key = $"test:{Guid.NewGuid():N}", UserId = reader.Id, BookId = book, FineId = Guid.CreateVersion7(),
                Amount = 100, Currency = "EUR", FineKind = "overdue", Channel = NoticeChannels.Email,
            });
            // As if the lease had run out and another sender had claimed the notice meanwhile.
            otherLease = (await fixture.InLendingAsync(db => db.Database.SqlQuery<DateTimeOffset>(
                $"UPDATE notices SET next_attempt_at = now() + interval '1 hour' WHERE id = {notice} RETURNING next_attempt_at AS value").ToListAsync(Ct)))[0];
        }
        finally
        {
            // The first sender's connection fails now: it has an error to record.
            fixture.MailProxy.Cut();
        }
        await LendingFixture.WaitUntilAsync(() => Task.FromResult(fixture.MailProxy.StalledOpen == 0), "the first sender off the mail server");
        fixture.MailProxy.Restore();
        // Its outcome would be recorded within moments: poll a while for a change that must not come.
        var deadline = DateTime.UtcNow.AddSeconds(2);
        while (DateTime.UtcNow < deadline)
        {
            var row = await fixture.InLendingAsync(db => db.Notices.AsNoTracking().SingleAsync(n => n.Id == notice, Ct));
            Assert.Equal((0, null, otherLease), (row.Attempts, row.LastError, row.NextAttemptAt));
            await Task.Delay(100, Ct);
        }
    }

    [Fact]
    public async Task A_notice_without_an_address_is_given_up_after_the_attempts_allowed_but_an_outage_never_gives_up()
    {
        var book = await fixture.TitleAsync(1, "Nobody's Title");
        await LendingFixture.WaitUntilAsync(async () => await fixture.InLendingAsync(db => db.Titles.AnyAsync(t => t.Id == book, Ct)), "the title's replica");
        var stranger = Guid.CreateVersion7(); // no reader replica: no address
        var fine = new FineCharged(Guid.CreateVersion7(), stranger, null, book, "lost", 100, "EUR", fixture.Clock.GetUtcNow());
        await Broker.PublishAsync(fixture.Exchange, "fine.charged", fine, fine.Id);
        await LendingFixture.WaitUntilAsync(async () => (await NoticesOfAsync(stranger)) is [{ FailedAt: not null }], "the notice given up");
        var notice = Assert.Single(await NoticesOfAsync(stranger));
        Assert.Equal(3, notice.Attempts);
        Assert.Null(notice.SentAt);
        Assert.Contains("not known", notice.LastError, StringComparison.Ordinal);
        // Not tried again.
        var sender = fixture.Lending.Services.GetServices<IHostedService>().OfType<NoticeSender>().Single();
        await fixture.InLendingAsync(db => db.Database.ExecuteSqlAsync($"UPDATE notices SET next_attempt_at = now() WHERE id = {notice.Id}", Ct));
        await sender.SendBatchAsync(MailServer.Parse($"Endpoint=smtp://127.0.0.1:{fixture.MailProxy.Port}"), Ct);
        Assert.Equal(3, Assert.Single(await NoticesOfAsync(stranger)).Attempts);
    }

    [Fact]
    public async Task Two_senders_at_once_mail_each_notice_once()
    {
        var reader = await ReaderAsync();
        var book = await fixture.TitleAsync(1, "Crowded Title");
        await LendingFixture.WaitUntilAsync(async () => await fixture.InLendingAsync(db => db.Titles.AnyAsync(t => t.Id == book, Ct)), "the title's replica");
        const int Count = 60;
        await fixture.InLendingAsync(async db =>
        {
            var createdAt = fixture.Lending.Services.GetRequiredService<TimeProvider>().GetUtcNow();
            for (var i = 0; i < Count; i++)
            {
                db.Notices.Add(new Notice
                {
                    Kind = NoticeKinds.FineCharged, Key = $"test:{Guid.NewGuid():N}", UserId = reader.Id, BookId = book, FineId = Guid.CreateVersion7(),
                    Amount = i + 1, Currency = "EUR", FineKind = "overdue", Channel = NoticeChannels.Email, CreatedAt = createdAt, NextAttemptAt = DateTimeOffset.UtcNow.AddHours(1),
                });
            }
            return await db.SaveChangesAsync(Ct);
        });
        // Due all at once, with the service's own sender and two more passes racing it (as replicas would).
        await fixture.InLendingAsync(db => db.Database.ExecuteSqlAsync($"UPDATE notices SET next_attempt_at = now() WHERE user_id = {reader.Id}", Ct));
        var sender = fixture.Lending.Services.GetServices<IHostedService>().OfType<NoticeSender>().Single();
        var mail = MailServer.Parse($"Endpoint=smtp://127.0.0.1:{fixture.MailProxy.Port}");
        await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => Task.Run(async () =>
        {
            while (await sender.SendBatchAsync(mail, Ct))
            {
            }
        })));

        var mails = await DeliveredAsync(reader, NoticeKinds.FineCharged, "Fine charged: Crowded Title", Count);
        Assert.Equal(Count, mails.Count);
        Assert.Equal(Count, mails.Select(m => m.Text).Distinct().Count());
    }

    [Fact]
    public async Task Anonymised_loans_take_their_overdue_notices_with_them_and_leave_their_fines_notice_without_the_loan()
    {
        var reader = await ReaderAsync();
        var book = await fixture.TitleAsync(1, "Private Title");
        await LendingFixture.WaitUntilAsync(async () => await fixture.InLendingAsync(db => db.Titles.AnyAsync(t => t.Id == book, Ct)), "the title's replica");
        var (kept, forgotten) = (Guid.CreateVersion7(), Guid.CreateVersion7());
        foreach (var loanId in new[] { kept, forgotten })
        {
            var overdue = new LoanOverdue(loanId, book, reader.Id, fixture.Clock.GetUtcNow().AddDays(-1));
            await Broker.PublishAsync(fixture.Exchange, "loan.overdue", overdue, overdue.Id);
        }
        var fine = new FineCharged(Guid.CreateVersion7(), reader.Id, forgotten, book, "overdue", 100, "EUR", fixture.Clock.GetUtcNow());
        await Broker.PublishAsync(fixture.Exchange, "fine.charged", fine, fine.Id);
        await LendingFixture.WaitUntilAsync(async () => (await NoticesOfAsync(reader.Id)).Count == 3, "two overdue notices and a fine's");

        var anonymised = new LoansAnonymised([forgotten]);
        await Broker.PublishAsync(fixture.Exchange, "loans.anonymised", anonymised, anonymised.Id);
        await ConsumedAsync(anonymised.Id);
        var left = await NoticesOfAsync(reader.Id);
        // The anonymised loan's overdue notice is gone; the fine's stays (the debt is the reader's), without the loan.
        Assert.Equal(2, left.Count);
        Assert.Contains(left, n => n.Kind == NoticeKinds.Overdue && n.LoanId == kept);
        Assert.Contains(left, n => n.Kind == NoticeKinds.FineCharged && n.FineId == fine.FineId && n.LoanId == null);
        Assert.DoesNotContain(left, n => n.LoanId == forgotten);
        Assert.DoesNotContain((await FeedAsync(reader)).Select(n => n.GetProperty("loanId")), l => l.ValueKind == JsonValueKind.String && l.GetGuid() == forgotten);
    }

    [Fact]
    public async Task The_feed_answers_bad_paging_with_400_and_strangers_with_401()
    {
        var reader = await ReaderAsync();
        using var bad = await fixture.Client(reader.Token).GetAsync("/api/notices?pageSize=0", Ct);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal("application/problem+json", bad.Content.Headers.ContentType?.MediaType);
        using var nobody = await fixture.Client().GetAsync("/api/notices", Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, nobody.StatusCode);
        var page = await fixture.Client(reader.Token).GetFromJsonAsync<JsonElement>("/api/notices?page=2&pageSize=5", Ct);
        Assert.Equal((2, 5, 0), (page.GetProperty("page").GetInt32(), page.GetProperty("pageSize").GetInt32(), page.GetProperty("totalCount").GetInt32()));
    }
}

/// <summary>Without a mail server configured the notices are still recorded: the feed is their delivery (channel feed).</summary>
public sealed class NoticesWithoutMailTests(LendingFixture fixture) : IClassFixture<LendingFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Notices_go_to_the_feed_only()
    {
        var (owner, ownerToken) = await fixture.ReaderAsync();
        var (waiter, waiterToken) = await fixture.ReaderAsync();
        var book = await fixture.TitleAsync(1, "Quiet Title");
        var loan = await (await fixture.BorrowAsync(book, token: ownerToken)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(HttpStatusCode.Created, (await fixture.PlaceHoldAsync(book, token: waiterToken)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await fixture.Client(ownerToken).PostAsync($"/api/loans/{loan.GetProperty("id").GetGuid()}/return", null, Ct)).StatusCode);

        JsonElement item = default;
        await LendingFixture.WaitUntilAsync(async () =>
        {
            var page = await fixture.Client(waiterToken).GetFromJsonAsync<JsonElement>("/api/notices", Ct);
            return page.GetProperty("totalCount").GetInt32() == 1 && (item = page.GetProperty("items")[0]).ValueKind == JsonValueKind.Object;
        }, "the hold-ready notice in the feed");
        Assert.Equal("hold-ready", item.GetProperty("kind").GetString());
        Assert.Equal("feed", item.GetProperty("channel").GetString());
        Assert.Equal(JsonValueKind.String, item.GetProperty("sentAt").ValueKind);
        Assert.Equal("Ready for pickup: Quiet Title", item.GetProperty("subject").GetString());
        Assert.Equal(0, (await fixture.Client(ownerToken).GetFromJsonAsync<JsonElement>("/api/notices", Ct)).GetProperty("totalCount").GetInt32());
        Assert.NotEqual(owner, waiter);
    }
}
