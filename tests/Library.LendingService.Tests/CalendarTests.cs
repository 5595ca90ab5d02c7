using Library.LendingService.Calendar;
using NodaTime;

namespace Library.LendingService.Tests;

public sealed class CalendarTests
{
    private static LibraryCalendar Calendar(string zone, string[] weeklyClosed, params string[] closedDates) =>
        LibraryCalendar.From(new CalendarDocument(zone, weeklyClosed, [.. closedDates.Select(d => new ClosedDateDocument(d, null))]));

    private static string[] Dates(LocalDate first, LocalDate last)
    {
        var dates = new List<string>();
        for (var d = first; d <= last; d = d.PlusDays(1))
        {
            dates.Add(d.ToString("uuuu-MM-dd", null));
        }
        return [.. dates];
    }

    private static DateTimeOffset Utc(int year, int month, int day, int hour, int minute = 0, int second = 0) =>
        new(year, month, day, hour, minute, second, TimeSpan.Zero);

    [Fact]
    public void A_loan_due_on_a_closed_sunday_is_due_at_the_end_of_monday_local()
    {
        var paris = Calendar("Europe/Paris", ["sunday"]);
        // Wednesday 4 November 2026 + 4 days = Sunday 8th: closed, so Monday 9th, 23:59:59 CET (+01:00).
        var due = paris.DueAt(Utc(2026, 11, 4, 12), 4);
        Assert.Equal(Utc(2026, 11, 9, 22, 59, 59), due);
        Assert.Equal(new LocalDateTime(2026, 11, 9, 23, 59, 59), Instant.FromDateTimeOffset(due).InZone(paris.Zone).LocalDateTime);
        Assert.Equal(TimeSpan.Zero, due.Offset);
    }

    [Fact]
    public void A_long_closure_moves_the_due_date_past_it()
    {
        var paris = Calendar("Europe/Paris", [], Dates(new LocalDate(2026, 12, 20), new LocalDate(2027, 1, 5)));
        // 6 December + 14 days = 20 December, the first closed day: due Wednesday 6 January.
        Assert.Equal(Utc(2027, 1, 6, 22, 59, 59), paris.DueAt(Utc(2026, 12, 6, 10), 14));
        Assert.Equal(Utc(2026, 12, 19, 22, 59, 59), paris.DueAt(Utc(2026, 12, 6, 10), 13));
    }

    [Fact]
    public void A_closed_weekday_and_closed_dates_combine()
    {
        var paris = Calendar("Europe/Paris", ["wednesday", "sunday"], Dates(new LocalDate(2026, 12, 20), new LocalDate(2027, 1, 5)));
        // The closure ends on Tuesday 5 January, Wednesday 6th is a weekly closed day: Thursday 7th.
        Assert.Equal(Utc(2027, 1, 7, 22, 59, 59), paris.DueAt(Utc(2026, 12, 6, 10), 14));
        Assert.False(paris.IsOpen(new LocalDate(2027, 1, 6)));
        Assert.False(paris.IsOpen(new LocalDate(2026, 12, 25)));
        Assert.True(paris.IsOpen(new LocalDate(2027, 1, 7)));
    }

    [Fact]
    public void Due_on_the_day_paris_springs_forward_is_still_local_23_59_59()
    {
        var paris = Calendar("Europe/Paris", []);
        var from = Utc(2026, 3, 20, 12); // 13:00 CET, +01:00
        var due = paris.DueAt(from, 9);  // Sunday 29 March: clocks go from 02:00 to 03:00
        Assert.Equal(Utc(2026, 3, 29, 21, 59, 59), due);
        Assert.Equal(Offset.FromHours(1), paris.Zone.GetUtcOffset(Instant.FromDateTimeOffset(from)));
        Assert.Equal(Offset.FromHours(2), paris.Zone.GetUtcOffset(Instant.FromDateTimeOffset(due)));
        Assert.Equal(new LocalDateTime(2026, 3, 29, 23, 59, 59), Instant.FromDateTimeOffset(due).InZone(paris.Zone).LocalDateTime);
        // A 23-hour day: it ends 23 hours less a second after it starts.
        Assert.Equal(TimeSpan.FromHours(23) - TimeSpan.FromSeconds(1), due - paris.Zone.AtStartOfDay(new LocalDate(2026, 3, 29)).ToDateTimeOffset());
    }

    [Fact]
    public void Due_on_the_day_paris_falls_back_is_still_local_23_59_59()
    {
        var paris = Calendar("Europe/Paris", []);
        var from = Utc(2026, 10, 20, 10); // 12:00 CEST, +02:00
        var due = paris.DueAt(from, 5);   // Sunday 25 October: clocks go from 03:00 back to 02:00
        Assert.Equal(Utc(2026, 10, 25, 22, 59, 59), due);
        Assert.Equal(Offset.FromHours(2), paris.Zone.GetUtcOffset(Instant.FromDateTimeOffset(from)));
        Assert.Equal(Offset.FromHours(1), paris.Zone.GetUtcOffset(Instant.FromDateTimeOffset(due)));
        // A 25-hour day.
        Assert.Equal(TimeSpan.FromHours(25) - TimeSpan.FromSeconds(1), due - paris.Zone.AtStartOfDay(new LocalDate(2026, 10, 25)).ToDateTimeOffset());
    }

    [Fact]
    public void Due_across_new_york_daylight_saving_changes_is_still_local_23_59_59()
    {
        var newYork = Calendar("America/New_York", []);
        // Sunday 8 March 2026 (EST -05:00 to EDT -04:00) and Sunday 1 November (back to EST).
        Assert.Equal(Utc(2026, 3, 9, 3, 59, 59), newYork.DueAt(Utc(2026, 3, 1, 17), 7));   // 8 March, 23:59:59 EDT
        Assert.Equal(Utc(2026, 11, 2, 4, 59, 59), newYork.DueAt(Utc(2026, 10, 25, 16), 7)); // 1 November, 23:59:59 EST
        Assert.Equal(Utc(2026, 11, 10, 4, 59, 59), newYork.DueAt(Utc(2026, 10, 25, 16), 15)); // 9 November, EST
    }

    [Fact]
    public void The_loan_day_is_the_librarys_local_date_not_the_utc_one()
    {
        // 23:30 in New York on 4 November is 04:30 UTC on the 5th: the loan was made on the 4th.
        var newYork = Calendar("America/New_York", []);
        var lateEvening = new DateTimeOffset(2026, 11, 4, 23, 30, 0, TimeSpan.FromHours(-5));
        Assert.Equal(new LocalDate(2026, 11, 4), newYork.Today(Instant.FromDateTimeOffset(lateEvening)));
        Assert.Equal(Utc(2026, 11, 12, 4, 59, 59), newYork.DueAt(lateEvening, 7)); // 11 November, 23:59:59 EST
        Assert.Equal(Utc(2026, 11, 12, 23, 59, 59), LibraryCalendar.Default.DueAt(lateEvening, 7)); // in UTC: the 5th + 7

        // 00:30 in Tokyo on 5 November is 15:30 UTC on the 4th: the loan was made on the 5th.
        var tokyo = Calendar("Asia/Tokyo", []);
        var justAfterMidnight = Utc(2026, 11, 4, 15, 30);
        Assert.Equal(new LocalDate(2026, 11, 5), tokyo.Today(Instant.FromDateTimeOffset(justAfterMidnight)));
        Assert.Equal(Utc(2026, 11, 12, 14, 59, 59), tokyo.DueAt(justAfterMidnight, 7)); // 12 November, 23:59:59 JST
    }

    [Fact]
    public void A_day_whose_midnight_does_not_exist_still_ends_and_starts_right()
    {
        // São Paulo moved its clocks from 00:00 to 01:00 on 4 November 2018: that day had 23 hours and began at 01:00.
        var saoPaulo = Calendar("America/Sao_Paulo", []);
        var start = saoPaulo.Zone.AtStartOfDay(new LocalDate(2018, 11, 4));
        Assert.Equal(new LocalTime(1, 0), start.TimeOfDay);
        Assert.Equal(Utc(2018, 11, 4, 2, 59, 59), saoPaulo.EndOfDay(new LocalDate(2018, 11, 3))); // 23:59:59 -03:00
        var end = saoPaulo.EndOfDay(new LocalDate(2018, 11, 4));
        Assert.Equal(Utc(2018, 11, 5, 1, 59, 59), end); // 23:59:59 -02:00
        Assert.Equal(TimeSpan.FromHours(23) - TimeSpan.FromSeconds(1), end - start.ToDateTimeOffset());
    }

    [Fact]
    public void A_renewal_counts_from_the_later_of_the_due_date_and_today()
    {
        var paris = Calendar("Europe/Paris", ["sunday"]);
        var due = paris.EndOfDay(new LocalDate(2026, 11, 20)); // Friday

        // Renewed early: from the due date, 20 + 14 = Friday 4 December.
        Assert.Equal(paris.EndOfDay(new LocalDate(2026, 12, 4)), paris.RenewedDueAt(due, Utc(2026, 11, 10, 9), 14));
        // Renewed on the due day itself: the same.
        Assert.Equal(paris.EndOfDay(new LocalDate(2026, 12, 4)), paris.RenewedDueAt(due, Utc(2026, 11, 20, 18), 14));
        // Renewed overdue on Tuesday 24th: from today, 24 + 12 = Sunday 6 December, closed: Monday 7th.
        Assert.Equal(paris.EndOfDay(new LocalDate(2026, 12, 7)), paris.RenewedDueAt(due, Utc(2026, 11, 24, 9), 12));
    }

    [Fact]
    public void A_pickup_deadline_follows_the_due_date_rule()
    {
        var paris = Calendar("Europe/Paris", ["sunday"]);
        // Thursday 5 November + 3 = Sunday: Monday 9th.
        Assert.Equal(paris.EndOfDay(new LocalDate(2026, 11, 9)), paris.PickupDeadline(Utc(2026, 11, 5, 9), 3));
        Assert.Equal(paris.DueAt(Utc(2026, 11, 5, 9), 3), paris.PickupDeadline(Utc(2026, 11, 5, 9), 3));
    }

    [Fact]
    public void Open_days_between_skip_closed_weekdays_and_dates()
    {
        var paris = Calendar("Europe/Paris", ["sunday"], "2026-12-25");
        // From Monday 21 December to Monday 28th: 22, 23, 24, 26, 28 (25th closed, 27th a Sunday).
        Assert.Equal(5, paris.OpenDaysBetween(Utc(2026, 12, 21, 11), Utc(2026, 12, 28, 11)));
        Assert.Equal(0, paris.OpenDaysBetween(Utc(2026, 12, 21, 11), Utc(2026, 12, 21, 20)));
        Assert.Equal(0, paris.OpenDaysBetween(Utc(2026, 12, 28, 11), Utc(2026, 12, 21, 11)));
        // 23:30 UTC on the 21st is already the 22nd in Paris.
        Assert.Equal(1, paris.OpenDaysBetween(Utc(2026, 12, 21, 11), Utc(2026, 12, 21, 23, 30)));
    }

    [Fact]
    public void Open_days_between_agree_with_counting_day_by_day()
    {
        var paris = Calendar("Europe/Paris", ["saturday", "sunday"], [.. Dates(new LocalDate(2026, 12, 20), new LocalDate(2027, 1, 5)), "2027-05-01"]);
        var start = Utc(2026, 12, 1, 12);
        for (var days = 0; days < 200; days += 3)
        {
            var from = start.AddDays(days % 17);
            var to = start.AddDays(days);
            var expected = 0;
            for (var d = paris.Today(Instant.FromDateTimeOffset(from)).PlusDays(1); d <= paris.Today(Instant.FromDateTimeOffset(to)); d = d.PlusDays(1))
            {
                expected += paris.IsOpen(d) ? 1 : 0;
            }
            Assert.Equal(expected, paris.OpenDaysBetween(from, to));
        }
    }

    [Fact]
    public void The_default_is_utc_with_nothing_closed()
    {
        var calendar = LibraryCalendar.Default;
        Assert.Equal(DateTimeZone.Utc, calendar.Zone);
        for (var d = new LocalDate(2026, 11, 2); d < new LocalDate(2026, 11, 9); d = d.PlusDays(1))
        {
            Assert.True(calendar.IsOpen(d));
        }
        var doc = calendar.ToDocument();
        Assert.Equal("UTC", doc.TimeZone);
        Assert.Empty(doc.WeeklyClosed);
        Assert.Empty(doc.ClosedDates);
        Assert.Empty(CalendarDocument.Validate(doc));
        Assert.Equal(Utc(2026, 11, 18, 23, 59, 59), calendar.DueAt(Utc(2026, 11, 4, 9), 14));
    }

    [Fact]
    public void The_document_comes_back_normalised()
    {
        var calendar = LibraryCalendar.From(new CalendarDocument(
            "Europe/Paris", ["Sunday", "MONDAY"], [new("2027-01-01", "New Year"), new("2026-12-25", "Christmas")]));
        var doc = calendar.ToDocument();
        Assert.Equal("Europe/Paris", doc.TimeZone);
        Assert.Equal(["monday", "sunday"], doc.WeeklyClosed);
        Assert.Equal([new ClosedDateDocument("2026-12-25", "Christmas"), new ClosedDateDocument("2027-01-01", "New Year")], doc.ClosedDates);
        Assert.Equal(doc.ClosedDates, LibraryCalendar.From(doc).ToDocument().ClosedDates);
    }

    [Fact]
    public void Next_open_day_gives_up_on_a_calendar_closed_for_years()
    {
        // Open on Mondays only, and every Monday for four years is a closed date.
        var mondays = new List<string>();
        for (var d = new LocalDate(2026, 11, 2); d.Year < 2031; d = d.PlusWeeks(1))
        {
            mondays.Add(d.ToString("uuuu-MM-dd", null));
        }
        var calendar = Calendar("UTC", ["tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"], [.. mondays]);
        var error = Assert.Throws<InvalidOperationException>(() => calendar.NextOpenDay(new LocalDate(2026, 11, 1)));
        Assert.Contains("no open day", error.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => calendar.DueAt(Utc(2026, 11, 1, 9), 14));
        Assert.Equal(new LocalDate(2031, 1, 6), calendar.NextOpenDay(new LocalDate(2030, 12, 31)));
    }

    [Fact]
    public void A_negative_loan_period_is_refused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => LibraryCalendar.Default.DueAt(Utc(2026, 11, 4, 9), -1));

    [Fact]
    public void Validation_names_each_bad_field()
    {
        var errors = CalendarDocument.Validate(new CalendarDocument(
            "Mars/Olympus_Mons",
            ["sunday", "funday", "Sunday"],
            [new("2026-12-25", "Christmas"), new("2026-13-01", null), new("25/12/2026", null), new("2026-12-25", new string('x', 201))]));
        Assert.Contains("IANA", Assert.Single(errors["timeZone"]), StringComparison.Ordinal);
        Assert.Contains("day of the week", Assert.Single(errors["weeklyClosed[1]"]), StringComparison.Ordinal);
        Assert.Contains("repeats weeklyClosed[0]", Assert.Single(errors["weeklyClosed[2]"]), StringComparison.Ordinal);
        Assert.Contains("yyyy-MM-dd", Assert.Single(errors["closedDates[1].date"]), StringComparison.Ordinal);
        Assert.Contains("yyyy-MM-dd", Assert.Single(errors["closedDates[2].date"]), StringComparison.Ordinal);
        Assert.Contains("repeats closedDates[0].date", Assert.Single(errors["closedDates[3].date"]), StringComparison.Ordinal);
        Assert.Contains("200", Assert.Single(errors["closedDates[3].reason"]), StringComparison.Ordinal);
        Assert.Equal(7, errors.Count);
        Assert.Throws<ArgumentException>(() => LibraryCalendar.From(new CalendarDocument("Mars/Olympus_Mons", [], [])));
    }

    [Fact]
    public void Validation_requires_the_fields_and_an_open_weekday()
    {
        Assert.Contains("calendar", CalendarDocument.Validate(null).Keys);
        var missing = CalendarDocument.Validate(new CalendarDocument(null!, null!, null!));
        Assert.Equal(["closedDates", "timeZone", "weeklyClosed"], missing.Keys.Order(StringComparer.Ordinal));

        var allClosed = CalendarDocument.Validate(new CalendarDocument(
            "UTC", ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"], []));
        Assert.Contains("at least one day of the week", Assert.Single(allClosed["weeklyClosed"]), StringComparison.Ordinal);

        var tooMany = CalendarDocument.Validate(new CalendarDocument(
            "UTC", [], [.. Dates(new LocalDate(2026, 1, 1), new LocalDate(2028, 12, 31)).Select(d => new ClosedDateDocument(d, null))]));
        Assert.Contains("at most 1000", Assert.Single(tooMany["closedDates"]), StringComparison.Ordinal);

        Assert.Empty(CalendarDocument.Validate(new CalendarDocument("America/New_York", ["saturday", "sunday"], [new("2026-07-04", "Independence Day")])));
    }
}
