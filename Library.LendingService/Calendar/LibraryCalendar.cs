using Library.ServiceDefaults;
using NodaTime;
using NodaTime.Text;

namespace Library.LendingService.Calendar;

/// <summary>
/// The library's calendar as the API reads and writes it:
/// <c>{timeZone: "Europe/Paris", weeklyClosed: ["sunday"], closedDates: [{date: "2026-12-25", reason: "Christmas"}]}</c>.
/// Weekdays are lower-case English names, dates ISO <c>yyyy-MM-dd</c>.
/// </summary>
public sealed record CalendarDocument(string TimeZone, IReadOnlyList<string> WeeklyClosed, IReadOnlyList<ClosedDateDocument> ClosedDates)
{
    public const int MaxClosedDates = 1000;
    public const int MaxReasonLength = 200;

    /// <summary>Field checks with no I/O: field -> messages, empty when <paramref name="doc"/> is valid.</summary>
    public static IDictionary<string, string[]> Validate(CalendarDocument? doc)
    {
        var errors = new Dictionary<string, string[]>();
        if (doc is null)
        {
            Add(errors, "calendar", "A calendar is required.");
            return errors;
        }
        if (string.IsNullOrWhiteSpace(doc.TimeZone))
        {
            Add(errors, "timeZone", "timeZone is required.");
        }
        else if (DateTimeZoneProviders.Tzdb.GetZoneOrNull(doc.TimeZone) is null)
        {
            Add(errors, "timeZone", "timeZone must be an IANA time zone such as Europe/Paris or UTC.");
        }
        ValidateWeeklyClosed(errors, doc.WeeklyClosed);
        ValidateClosedDates(errors, doc.ClosedDates);
        return errors;
    }

    private static void ValidateWeeklyClosed(Dictionary<string, string[]> errors, IReadOnlyList<string>? weeklyClosed)
    {
        if (weeklyClosed is null)
        {
            Add(errors, "weeklyClosed", "weeklyClosed is required (an empty list when the library opens every day).");
            return;
        }
        var seen = new Dictionary<IsoDayOfWeek, int>();
        for (var i = 0; i < weeklyClosed.Count; i++)
        {
            var field = $"weeklyClosed[{i}]";
            if (!Weekdays.TryParse(weeklyClosed[i], out var day))
            {
                Add(errors, field, $"{field} must be a day of the week: {string.Join(", ", Weekdays.Names)}.");
            }
            else if (!seen.TryAdd(day, i))
            {
                Add(errors, field, $"{field} repeats weeklyClosed[{seen[day]}] ({Weekdays.Name(day)}).");
            }
        }
        if (seen.Count == 7)
        {
            Add(errors, "weeklyClosed", "weeklyClosed cannot hold every day: the library must open on at least one day of the week.");
        }
    }

    private static void ValidateClosedDates(Dictionary<string, string[]> errors, IReadOnlyList<ClosedDateDocument>? closedDates)
    {
        if (closedDates is null)
        {
            Add(errors, "closedDates", "closedDates is required (an empty list when the library never closes on a date).");
            return;
        }
        if (closedDates.Count > MaxClosedDates)
        {
            Add(errors, "closedDates", $"closedDates must have at most {MaxClosedDates} dates.");
            return;
        }
        var seen = new Dictionary<LocalDate, int>();
        for (var i = 0; i < closedDates.Count; i++)
        {
            var entry = closedDates[i];
            if (entry is null)
            {
                Add(errors, $"closedDates[{i}]", $"closedDates[{i}] must be a date with an optional reason.");
                continue;
            }
            var field = $"closedDates[{i}].date";
            if (!TryParseDate(entry.Date, out var date))
            {
                Add(errors, field, $"{field} must be a date in the form yyyy-MM-dd.");
            }
            else if (!seen.TryAdd(date, i))
            {
                Add(errors, field, $"{field} repeats closedDates[{seen[date]}].date ({entry.Date}).");
            }
            var reason = $"closedDates[{i}].reason";
            if (entry.Reason is { Length: > MaxReasonLength })
            {
                Add(errors, reason, $"{reason} must have at most {MaxReasonLength} characters.");
            }
            else if (TextInput.HasControlCharacters(entry.Reason))
            {
                Add(errors, reason, TextInput.ControlCharactersError(reason)[0]);
            }
        }
    }

    internal static bool TryParseDate(string? text, out LocalDate date)
    {
        var result = text is null ? null : LocalDatePattern.Iso.Parse(text);
        date = result is { Success: true } ? result.Value : default;
        return result is { Success: true };
    }

    private static void Add(Dictionary<string, string[]> errors, string field, string message) =>
        errors[field] = errors.TryGetValue(field, out var previous) ? [.. previous, message] : [message];
}

/// <summary>A date the library is closed, with why (for the readers' notice).</summary>
public sealed record ClosedDateDocument(string Date, string? Reason);

/// <summary>
/// When the library is open, in its own time zone, and the due dates that follow from it: a loan is
/// due at the end of an open day (its last second, local), never on a closed one. Pure: no clock, no I/O.
/// </summary>
public sealed class LibraryCalendar
{
    /// <summary>How far <see cref="NextOpenDay"/> looks before it gives up on a calendar closed for years.</summary>
    public const int MaxSearchDays = 3 * 366;

    private readonly HashSet<IsoDayOfWeek> weeklyClosed;
    private readonly SortedDictionary<LocalDate, string?> closedDates;

    private LibraryCalendar(DateTimeZone zone, HashSet<IsoDayOfWeek> weeklyClosed, SortedDictionary<LocalDate, string?> closedDates)
    {
        Zone = zone;
        this.weeklyClosed = weeklyClosed;
        this.closedDates = closedDates;
    }

    /// <summary>UTC, open every day: the calendar until a librarian sets one.</summary>
    public static LibraryCalendar Default { get; } = new(DateTimeZone.Utc, [], []);

    /// <summary>The library's time zone: its dates, and so its due dates, are local to it.</summary>
    public DateTimeZone Zone { get; }

    /// <summary>The calendar <paramref name="doc"/> describes; it must pass <see cref="CalendarDocument.Validate"/>.</summary>
    public static LibraryCalendar From(CalendarDocument doc)
    {
        var errors = CalendarDocument.Validate(doc);
        if (errors.Count > 0)
        {
            throw new ArgumentException(
                "The calendar is not valid: " + string.Join(" ", errors.SelectMany(e => e.Value)), nameof(doc));
        }
        var closed = new SortedDictionary<LocalDate, string?>();
        foreach (var entry in doc.ClosedDates)
        {
            if (CalendarDocument.TryParseDate(entry.Date, out var date))
            {
                closed[date] = entry.Reason;
            }
        }
        var weekly = new HashSet<IsoDayOfWeek>();
        foreach (var name in doc.WeeklyClosed)
        {
            if (Weekdays.TryParse(name, out var day))
            {
                weekly.Add(day);
            }
        }
        return new LibraryCalendar(DateTimeZoneProviders.Tzdb[doc.TimeZone], weekly, closed);
    }

    /// <summary>The calendar in its API form, normalised: weekdays lower-case Monday to Sunday, dates in order.</summary>
    public CalendarDocument ToDocument() => new(
        Zone.Id,
        [.. Weekdays.All.Where(weeklyClosed.Contains).Select(Weekdays.Name)],
        [.. closedDates.Select(c => new ClosedDateDocument(LocalDatePattern.Iso.Format(c.Key), c.Value))]);

    /// <summary>True unless <paramref name="date"/> falls on a weekly closed day or a closed date.</summary>
    public bool IsOpen(LocalDate date) => !weeklyClosed.Contains(date.DayOfWeek) && !closedDates.ContainsKey(date);

    /// <summary>The library's local date at <paramref name="now"/>.</summary>
    public LocalDate Today(Instant now) => now.InZone(Zone).Date;

    /// <summary><paramref name="date"/> itself when open, else the first open date after it.</summary>
    /// <exception cref="InvalidOperationException">Nothing opens within <see cref="MaxSearchDays"/> days.</exception>
    public LocalDate NextOpenDay(LocalDate date)
    {
        for (var day = date; Period.DaysBetween(date, day) <= MaxSearchDays; day = day.PlusDays(1))
        {
            if (IsOpen(day))
            {
                return day;
            }
        }
        throw new InvalidOperationException(
            $"The library calendar has no open day within {MaxSearchDays} days of {LocalDatePattern.Iso.Format(date)}: check its closed dates.");
    }

    /// <summary>
    /// The last second of <paramref name="date"/> in the library's zone, in UTC: one second before the next
    /// day starts, so days of 23 or 25 hours (daylight-saving changes) end at their local 23:59:59.
    /// </summary>
    public DateTimeOffset EndOfDay(LocalDate date) =>
        Zone.AtStartOfDay(date.PlusDays(1)).ToInstant().Minus(Duration.FromSeconds(1)).ToDateTimeOffset();

    /// <summary>
    /// When a loan made at <paramref name="from"/> for <paramref name="days"/> days is due: the library's
    /// local date then, plus the days, moved to the next open day, at its end.
    /// </summary>
    public DateTimeOffset DueAt(DateTimeOffset from, int days)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(days);
        return EndOfDay(NextOpenDay(Today(Instant.FromDateTimeOffset(from)).PlusDays(days)));
    }

    /// <summary>
    /// The due date after a renewal at <paramref name="now"/>: <paramref name="days"/> from the later of the
    /// current due date (FOLIO's default) and today, so an overdue loan is not renewed into the past.
    /// </summary>
    public DateTimeOffset RenewedDueAt(DateTimeOffset currentDue, DateTimeOffset now, int days)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(days);
        var due = Today(Instant.FromDateTimeOffset(currentDue));
        var today = Today(Instant.FromDateTimeOffset(now));
        return EndOfDay(NextOpenDay(LocalDate.Max(due, today).PlusDays(days)));
    }

    /// <summary>How long a reader has to collect a hold made ready at <paramref name="now"/>: the loan rule, <see cref="DueAt"/>.</summary>
    public DateTimeOffset PickupDeadline(DateTimeOffset now, int days) => DueAt(now, days);

    /// <summary>
    /// The open local days d with Today(<paramref name="from"/>) &lt; d &lt;= Today(<paramref name="to"/>); 0 when
    /// <paramref name="to"/> is not after <paramref name="from"/>. Fines do not accrue on closed days.
    /// </summary>
    public int OpenDaysBetween(DateTimeOffset from, DateTimeOffset to)
    {
        if (to <= from)
        {
            return 0;
        }
        var start = Today(Instant.FromDateTimeOffset(from));
        var end = Today(Instant.FromDateTimeOffset(to));
        var days = Period.DaysBetween(start, end);
        if (days <= 0)
        {
            return 0;
        }
        // Whole weeks hold each open weekday once; the rest are counted one by one; then the closed
        // dates in the range that fall on open weekdays come off.
        var open = days / 7 * (7 - weeklyClosed.Count);
        for (var day = start.PlusDays(days / 7 * 7 + 1); day <= end; day = day.PlusDays(1))
        {
            open += weeklyClosed.Contains(day.DayOfWeek) ? 0 : 1;
        }
        open -= closedDates.Keys.Count(d => d > start && d <= end && !weeklyClosed.Contains(d.DayOfWeek));
        return open;
    }
}

/// <summary>Weekday names as the calendar's API spells them: lower-case English, Monday first.</summary>
internal static class Weekdays
{
    public static readonly IsoDayOfWeek[] All =
    [
        IsoDayOfWeek.Monday, IsoDayOfWeek.Tuesday, IsoDayOfWeek.Wednesday, IsoDayOfWeek.Thursday,
        IsoDayOfWeek.Friday, IsoDayOfWeek.Saturday, IsoDayOfWeek.Sunday,
    ];

    public static readonly string[] Names = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

    public static string Name(IsoDayOfWeek day) => Names[(int)day - 1];

    /// <summary>Case-insensitive: <c>Sunday</c> and <c>sunday</c> are the same day.</summary>
    public static bool TryParse(string? name, out IsoDayOfWeek day)
    {
        var index = name is null ? -1 : Array.FindIndex(Names, n => n.Equals(name, StringComparison.OrdinalIgnoreCase));
        day = index < 0 ? IsoDayOfWeek.None : All[index];
        return index >= 0;
    }
}
