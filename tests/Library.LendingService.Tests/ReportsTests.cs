using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Library.LendingService.Data;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Tests;

/// <summary>The librarians' reports, on a database of their own (known counts).</summary>
public sealed class ReportsTests(LendingFixture fixture) : IClassFixture<LendingFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<JsonElement> Send(HttpMethod method, string path, string token, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path) { Content = body is null ? null : JsonContent.Create(body) };
        using var response = await fixture.Client(token).SendAsync(request, Ct);
        Assert.True(response.IsSuccessStatusCode, $"{method} {path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        return await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
    }

    private async Task<string> Csv(string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/csv"));
        using var response = await fixture.Librarian().SendAsync(request, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/csv", response.Content.Headers.ContentType?.MediaType);
        return await response.Content.ReadAsStringAsync(Ct);
    }

    private static string Day(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task Circulation_and_popular_reports_count_each_day_in_json_and_csv_and_stay_the_same_after_anonymisation()
    {
        var (r1, t1) = await fixture.ReaderAsync();
        var (r2, t2) = await fixture.ReaderAsync();
        var (r3, t3) = await fixture.ReaderAsync();
        var (r4, t4) = await fixture.ReaderAsync();
        var popular = await fixture.TitleAsync(2, "Report: Popular, \"quoted\"");
        var single = await fixture.TitleAsync(1, "Report Single");
        var today = Day(fixture.Clock.GetUtcNow());

        var a = await Send(HttpMethod.Post, "/api/loans", t1, new { bookId = popular, days = 7 });
        var b = await Send(HttpMethod.Post, "/api/loans", t2, new { bookId = popular, days = 7 });
        var c = await Send(HttpMethod.Post, "/api/loans", t3, new { bookId = single, days = 7 });
        await Send(HttpMethod.Post, $"/api/loans/{a.GetProperty("id").GetGuid()}/renew", t1);
        await Send(HttpMethod.Post, $"/api/loans/{b.GetProperty("id").GetGuid()}/return", t2);
        await Send(HttpMethod.Post, "/api/holds", t1, new { bookId = single });
        await Send(HttpMethod.Post, $"/api/loans/{c.GetProperty("id").GetGuid()}/return", t3);
        await Send(HttpMethod.Post, "/api/loans", t1, new { bookId = single, days = 7 }); // the hold filled
        var late = await Send(HttpMethod.Post, "/api/loans", t4, new { bookId = popular, days = 1 });
        var dueDay = Day(late.GetProperty("dueAt").GetDateTimeOffset());

        // Two days on: r4's loan became overdue on its due day.
        fixture.Clock.Advance(TimeSpan.FromDays(2) + TimeSpan.FromMinutes(1));
        var to = Day(fixture.Clock.GetUtcNow());
        var path = $"/api/reports/circulation?from={today}&to={to}";
        var report = await fixture.Librarian().GetFromJsonAsync<JsonElement>(path, Ct);
        Assert.Equal("UTC", report.GetProperty("timeZone").GetString());
        var days = report.GetProperty("days").EnumerateArray().ToList();
        Assert.Equal(3, days.Count);
        Assert.Equal(today, days[0].GetProperty("date").GetString());
        var first = days[0];
        Assert.Equal((5, 2, 1, 1, 1), (first.GetProperty("loans").GetInt32(), first.GetProperty("returns").GetInt32(), first.GetProperty("renewals").GetInt32(),
            first.GetProperty("holdsPlaced").GetInt32(), first.GetProperty("holdsFilled").GetInt32()));
        Assert.Equal(0, first.GetProperty("finesCharged").GetInt64());
        Assert.Equal(1, days.Single(d => d.GetProperty("date").GetString() == dueDay).GetProperty("overdue").GetInt32());
        var totals = report.GetProperty("totals");
        Assert.Equal((5, 2, 1, 1), (totals.GetProperty("loans").GetInt32(), totals.GetProperty("returns").GetInt32(),
            totals.GetProperty("holdsFilled").GetInt32(), totals.GetProperty("overdue").GetInt32()));

        var csv = (await Csv(path)).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("date,loans,returns,renewals,holdsPlaced,holdsFilled,overdue,finesCharged,finesPaid", csv[0]);
        Assert.Equal($"{today},5,2,1,1,1,{(dueDay == today ? 1 : 0)},0,0", csv[1]);
        Assert.Equal(4, csv.Length);

        var top = await fixture.Librarian().GetFromJsonAsync<JsonElement>($"/api/reports/popular?from={today}&to={to}&limit=1", Ct);
        var only = Assert.Single(top.GetProperty("titles").EnumerateArray());
        Assert.Equal((popular, "Report: Popular, \"quoted\"", 3), (only.GetProperty("bookId").GetGuid(), only.GetProperty("title").GetString(), only.GetProperty("loans").GetInt32()));
        var topCsv = (await Csv($"/api/reports/popular?from={today}&to={to}")).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["bookId,title,loans", $"{popular},\"Report: Popular, \"\"quoted\"\"\",3", $"{single},Report Single,2"], topCsv);

        // A month on every returned loan is anonymised: the same figures for those days.
        fixture.Clock.Advance(TimeSpan.FromDays(31));
        await LendingFixture.WaitUntilAsync(async () =>
            await fixture.InLendingAsync(db => db.Loans.CountAsync(l => l.ReturnedAt != null && l.AnonymisedAt == null, Ct)) == 0, "returned loans anonymised");
        Assert.True(await fixture.InLendingAsync(db => db.Loans.CountAsync(l => l.UserId == null, Ct)) >= 2);
        var after = await fixture.Librarian().GetFromJsonAsync<JsonElement>(path, Ct);
        Assert.Equal(report.GetProperty("days").GetRawText(), after.GetProperty("days").GetRawText());
        Assert.Equal(totals.GetRawText(), after.GetProperty("totals").GetRawText());
        var topAfter = await fixture.Librarian().GetFromJsonAsync<JsonElement>($"/api/reports/popular?from={today}&to={to}&limit=1", Ct);
        Assert.Equal(top.GetProperty("titles").GetRawText(), topAfter.GetProperty("titles").GetRawText());
        _ = (r1, r2, r3, r4);
    }

    [Theory]
    [InlineData("/api/reports/circulation", "from")]
    [InlineData("/api/reports/circulation?from=2026-01-01", "to")]
    [InlineData("/api/reports/circulation?from=yesterday&to=2026-01-01", "from")]
    [InlineData("/api/reports/circulation?from=2026-01-01&to=2026-13-01", "to")]
    [InlineData("/api/reports/circulation?from=2026-02-01&to=2026-01-31", "to")]
    [InlineData("/api/reports/circulation?from=2020-01-01&to=2024-01-01", "to")]
    [InlineData("/api/reports/popular?from=2026-01-01&to=2026-01-31&limit=0", "limit")]
    [InlineData("/api/reports/popular?from=2026-01-01&to=2026-01-31&limit=101", "limit")]
    [InlineData("/api/reports/popular?from=2026-01-31&to=2026-01-01", "to")]
    [InlineData("/api/reports/popular?from=2026-01-01&to=2026-01-31&limit=abc", null)]
    public async Task A_bad_range_or_limit_is_a_400_problem(string path, string? field)
    {
        using var response = await fixture.Librarian().GetAsync(path, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        if (field is not null)
        {
            var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
            Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), problem.GetRawText());
        }
    }

    [Fact]
    public async Task Reports_are_for_librarians()
    {
        var (_, member) = await fixture.ReaderAsync();
        foreach (var path in new[] { "/api/reports/circulation?from=2026-01-01&to=2026-01-31", "/api/reports/popular?from=2026-01-01&to=2026-01-31" })
        {
            using var forbidden = await fixture.Client(member).GetAsync(path, Ct);
            Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
            using var anonymous = await fixture.Client().GetAsync(path, Ct);
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
            using var allowed = await fixture.Librarian().GetAsync(path, Ct);
            Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        }
    }
}
