using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace Library.LendingService.Tests;

/// <summary>Report days are the library's days: its calendar's time zone, not UTC (a database of its own: the calendar changes).</summary>
public sealed class ReportsTimeZoneTests(LendingFixture fixture) : IClassFixture<LendingFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_loan_counts_on_the_library_s_local_day()
    {
        using var admin = fixture.Client(await fixture.Users.AdminTokenAsync());
        using var saved = await admin.PutAsJsonAsync("/api/calendar", new { timeZone = "Pacific/Kiritimati", weeklyClosed = Array.Empty<string>(), closedDates = Array.Empty<object>() }, Ct);
        Assert.Equal(HttpStatusCode.OK, saved.StatusCode);

        // 12:00 UTC is 02:00 the next day at UTC+14.
        var now = fixture.Clock.GetUtcNow();
        fixture.Clock.Advance(now.Date.AddDays(1).AddHours(12) - now.UtcDateTime);
        var utcDay = fixture.Clock.GetUtcNow().UtcDateTime.Date;
        var localDay = utcDay.AddDays(1);
        using var borrowed = await fixture.BorrowAsync(await fixture.TitleAsync(1, "Report Far East"), (await fixture.ReaderAsync()).Id);
        Assert.Equal(HttpStatusCode.Created, borrowed.StatusCode);

        var report = await fixture.Librarian().GetFromJsonAsync<JsonElement>($"/api/reports/circulation?from={utcDay:yyyy-MM-dd}&to={localDay:yyyy-MM-dd}", Ct);
        Assert.Equal("Pacific/Kiritimati", report.GetProperty("timeZone").GetString());
        var loans = report.GetProperty("days").EnumerateArray().Select(d => (d.GetProperty("date").GetString(), d.GetProperty("loans").GetInt32())).ToList();
        Assert.Equal([(utcDay.ToString("yyyy-MM-dd"), 0), (localDay.ToString("yyyy-MM-dd"), 1)], loans);
        var popular = await fixture.Librarian().GetFromJsonAsync<JsonElement>($"/api/reports/popular?from={utcDay:yyyy-MM-dd}&to={utcDay:yyyy-MM-dd}", Ct);
        Assert.Empty(popular.GetProperty("titles").EnumerateArray());
    }
}
