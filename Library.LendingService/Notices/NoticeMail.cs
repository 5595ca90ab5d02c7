using System.Globalization;
using System.Net;
using MimeKit;
using NodaTime;

namespace Library.LendingService.Notices;

/// <summary>
/// A notice as mail: subject, a plain-text and an HTML body (multipart/alternative: mail readers
/// show the HTML, text-only ones and screen readers the plain part). Pure, so tested without a server.
/// Dates are written in the library's time zone (the calendar's, the one due dates are counted
/// in: a loan due at the end of the day is due at 23:59 there, whatever UTC says); money in major
/// units with the currency's code.
/// </summary>
public static class NoticeMail
{
    public sealed record Addressee(string Email, string FirstName, string LastName);

    public static string Subject(Notice notice, string title) => notice.Kind switch
    {
        NoticeKinds.DueSoon => $"Due soon: {title}",
        NoticeKinds.Overdue => notice.Sequence > 1 ? $"Overdue (reminder {notice.Sequence - 1}): {title}" : $"Overdue: {title}",
        NoticeKinds.HoldReady => $"Ready for pickup: {title}",
        NoticeKinds.HoldExpired => $"Hold expired: {title}",
        NoticeKinds.FineCharged => $"Fine charged: {title}",
        _ => $"Library notice: {title}",
    };

    /// <summary>The body's one paragraph, in plain words; the HTML body is the same text, encoded.</summary>
    public static string Paragraph(Notice notice, string title, DateTimeZone? zone = null)
    {
        var date = notice.Deadline is { } d ? When(d, zone) : "";
        return notice.Kind switch
        {
            NoticeKinds.DueSoon => $"\"{title}\" is due back on {date}. Please return or renew it by then.",
            NoticeKinds.Overdue => $"\"{title}\" was due back on {date} and is overdue. Please return it as soon as you can.",
            NoticeKinds.HoldReady => $"\"{title}\", which you placed a hold on, is set aside for you until {date}. Please pick it up by then.",
            NoticeKinds.HoldExpired => $"Your hold on \"{title}\" expired on {date}: the copy set aside for you was not picked up and went to the next reader.",
            NoticeKinds.FineCharged => $"A fine of {Money(notice.Amount ?? 0, notice.Currency ?? "")} was charged for \"{title}\" ({notice.FineKind ?? "fine"}).",
            _ => $"A notice about \"{title}\".",
        };
    }

    public static MimeMessage Compose(Notice notice, Addressee to, string title, MailboxAddress from, DateTimeZone? zone = null)
    {
        var name = $"{to.FirstName} {to.LastName}".Trim();
        var message = new MimeMessage();
        message.From.Add(from);
        message.To.Add(new MailboxAddress(name, to.Email));
        message.Subject = Subject(notice, title);
        // The notice's id as the message id: the same notice sent twice is recognisably one.
        message.MessageId = $"notice-{notice.Id:N}@library.local";
        var paragraph = Paragraph(notice, title, zone);
        var body = new BodyBuilder
        {
            TextBody = $"Dear {name},\n\n{paragraph}\n\nThe Library\n",
            HtmlBody = $"""
                <!DOCTYPE html>
                <html><body>
                <p>Dear {WebUtility.HtmlEncode(name)},</p>
                <p>{WebUtility.HtmlEncode(paragraph)}</p>
                <p>The Library</p>
                </body></html>
                """,
        };
        message.Body = body.ToMessageBody();
        return message;
    }

    /// <summary>A moment as the library's clocks show it, naming the zone (<c>UTC</c> by default).</summary>
    public static string When(DateTimeOffset at, DateTimeZone? zone = null)
    {
        zone ??= DateTimeZone.Utc;
        var local = Instant.FromDateTimeOffset(at).InZone(zone).ToDateTimeOffset();
        return local.ToString("dddd d MMMM yyyy, HH:mm", CultureInfo.InvariantCulture) + " " + zone.Id;
    }

    /// <summary>Minor units as major units: 2 decimals, but none for currencies without minor units.</summary>
    public static string Money(long minor, string currency)
    {
        var digits = currency.ToUpperInvariant() is "JPY" or "KRW" or "ISK" or "CLP" or "VND" ? 0 : 2;
        var major = minor / (decimal)Math.Pow(10, digits);
        return $"{major.ToString(digits == 0 ? "0" : "0.00", CultureInfo.InvariantCulture)} {currency}".Trim();
    }
}
