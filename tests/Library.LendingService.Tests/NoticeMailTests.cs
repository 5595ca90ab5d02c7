using Library.LendingService.Notices;
using MimeKit;

namespace Library.LendingService.Tests;

/// <summary>The notice's mail and the mail server's settings, as pure functions.</summary>
public sealed class NoticeMailTests
{
    private static Notice Fine(long amount, string currency) => new()
    {
        Kind = NoticeKinds.FineCharged, Key = "k", Channel = NoticeChannels.Email, Amount = amount, Currency = currency, FineKind = "overdue",
    };

    [Theory]
    [InlineData(2550, "EUR", "25.50 EUR")]
    [InlineData(5, "USD", "0.05 USD")]
    [InlineData(1200, "JPY", "1200 JPY")]
    public void Money_is_written_in_major_units(long minor, string currency, string expected) => Assert.Equal(expected, NoticeMail.Money(minor, currency));

    [Fact]
    public void A_notice_mail_is_multipart_alternative_with_text_and_encoded_html()
    {
        var message = NoticeMail.Compose(Fine(300, "EUR"), new NoticeMail.Addressee("ada@library.test", "Ada", "<Lovelace>"), "Tom & Jerry",
            new MailboxAddress("The Library", "library@library.local"));
        var body = Assert.IsType<MultipartAlternative>(message.Body);
        Assert.Equal("Fine charged: Tom & Jerry", message.Subject);
        Assert.Equal(2, body.Count);
        Assert.Contains("A fine of 3.00 EUR was charged for \"Tom & Jerry\" (overdue).", body.TextBody, StringComparison.Ordinal);
        Assert.Contains("Tom &amp; Jerry", body.HtmlBody, StringComparison.Ordinal);
        Assert.Contains("&lt;Lovelace&gt;", body.HtmlBody, StringComparison.Ordinal);
        Assert.Equal("ada@library.test", Assert.IsType<MailboxAddress>(Assert.Single(message.To)).Address);
    }

    [Fact]
    public void Dates_are_written_as_the_librarys_clocks_show_them_naming_the_zone()
    {
        // The end of the library's day in Paris in winter is 22:59:59 UTC.
        var due = new DateTimeOffset(2026, 12, 3, 22, 59, 59, TimeSpan.Zero);
        Assert.Equal("Thursday 3 December 2026, 23:59 Europe/Paris", NoticeMail.When(due, NodaTime.DateTimeZoneProviders.Tzdb["Europe/Paris"]));
        Assert.Equal("Thursday 3 December 2026, 22:59 UTC", NoticeMail.When(due));
        var notice = new Notice { Kind = NoticeKinds.DueSoon, Key = "k", Channel = NoticeChannels.Email, Deadline = due };
        Assert.Equal("\"T\" is due back on Thursday 3 December 2026, 23:59 Europe/Paris. Please return or renew it by then.",
            NoticeMail.Paragraph(notice, "T", NodaTime.DateTimeZoneProviders.Tzdb["Europe/Paris"]));
    }

    [Theory]
    [InlineData(1, "Overdue: T")]
    [InlineData(2, "Overdue (reminder 1): T")]
    [InlineData(3, "Overdue (reminder 2): T")]
    public void Overdue_repeats_say_which_reminder(int sequence, string subject) =>
        Assert.Equal(subject, NoticeMail.Subject(new Notice { Kind = NoticeKinds.Overdue, Key = "k", Channel = "email", Sequence = sequence }, "T"));

    [Theory]
    [InlineData("Endpoint=smtp://127.0.0.1:24025", "127.0.0.1", 24025, false, null)]
    [InlineData("Endpoint=smtps://mail.example.org;Username=u;Password=p", "mail.example.org", 465, true, "u")]
    [InlineData("smtp://mail.example.org", "mail.example.org", 25, false, null)]
    public void The_mail_connection_string_is_read(string text, string host, int port, bool tls, string? user)
    {
        var mail = MailServer.Parse(text);
        Assert.Equal((host, port, tls, user), (mail.Host, mail.Port, mail.Tls, mail.UserName));
    }

    [Theory]
    [InlineData("Endpoint=http://127.0.0.1:80")]
    [InlineData("Endpoint=nonsense")]
    public void A_wrong_mail_connection_string_is_refused(string text) => Assert.Throws<InvalidOperationException>(() => MailServer.Parse(text));

    [Fact]
    public void Retries_back_off_doubling_up_to_the_cap()
    {
        var options = new NoticeOptions { RetryDelay = TimeSpan.FromSeconds(10), MaxRetryDelay = TimeSpan.FromMinutes(1) };
        Assert.Equal([10, 20, 40, 60, 60], new[] { 1, 2, 3, 4, 50 }.Select(a => options.RetryAfter(a).TotalSeconds).ToArray());
    }
}
