using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Tests;

/// <summary>
/// Privacy across the services, with the real user service, catalog and lending on the bus: a reader
/// opts out through <c>PUT /api/users/me/privacy</c>, another keeps their history; once their
/// loans are anonymised (at return, and after 30 days) no database of the Library ties them to
/// those loans (lending's loans, holds and notices, the catalog's loan history; checked with SQL in
/// each), and the reports count the same as before.
/// </summary>
public sealed class PrivacyAcrossServicesTests(LendingFixture fixture) : IClassFixture<LendingFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<Guid> BorrowAsync(Guid bookId, string token)
    {
        using var response = await fixture.BorrowAsync(bookId, days: 1, token: token);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync(Ct));
        return (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetGuid();
    }

    private async Task ReturnAsync(Guid loanId, string token)
    {
        using var response = await fixture.Client(token).PostAsync($"/api/loans/{loanId}/return", null, Ct);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync(Ct));
    }

    /// <summary>The catalog's loan history rows of these loans that still name a reader (the catalog's own database).</summary>
    private Task<long> CatalogTracesAsync(Guid[] loans, Guid[] readers) => fixture.BookDb.ScalarAsync<long>($"""
        SELECT count(*) FROM book_loans
        WHERE loan_id IN ({string.Join(", ", loans.Select(l => $"'{l}'"))})
          AND (user_id IS NOT NULL OR user_id IN ({string.Join(", ", readers.Select(r => $"'{r}'"))}))
        """);

    /// <summary>Lending's rows that tie these readers to these loans: the loans, holds of the same title, notices of the loans.</summary>
    private Task<long> LendingTracesAsync(Guid[] loans, Guid[] readers) => fixture.LendingDb.ScalarAsync<long>($"""
        SELECT (SELECT count(*) FROM loans WHERE id IN ({string.Join(", ", loans.Select(l => $"'{l}'"))}) AND user_id IS NOT NULL)
             + (SELECT count(*) FROM notices WHERE loan_id IN ({string.Join(", ", loans.Select(l => $"'{l}'"))}))
             + (SELECT count(*) FROM fines WHERE loan_id IN ({string.Join(", ", loans.Select(l => $"'{l}'"))}) AND user_id IS NOT NULL AND status <> 'open')
             + (SELECT count(*) FROM holds WHERE status = 'fulfilled' AND user_id IN ({string.Join(", ", readers.Select(r => $"'{r}'"))}))
        """);

    private async Task<(long Loans, long Returns, long Popular)> ReportAsync(DateOnly from, DateOnly to, Guid bookId)
    {
        var range = $"from={from.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}&to={to.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}";
        var circulation = await fixture.Librarian().GetFromJsonAsync<JsonElement>($"/api/reports/circulation?{range}", Ct);
        var totals = circulation.GetProperty("totals");
        var popular = await fixture.Librarian().GetFromJsonAsync<JsonElement>($"/api/reports/popular?{range}&limit=10", Ct);
        var loans = popular.GetProperty("titles").EnumerateArray().Where(t => t.GetProperty("bookId").GetGuid() == bookId).Sum(t => t.GetProperty("loans").GetInt64());
        return (totals.GetProperty("loans").GetInt64(), totals.GetProperty("returns").GetInt64(), loans);
    }

    [Fact]
    public async Task Anonymised_loans_name_no_reader_in_any_services_database_and_the_reports_count_the_same()
    {
        var (keeper, keeperToken) = await fixture.ReaderAsync();
        var (privateReader, privateToken) = await fixture.ReaderAsync();
        var readers = new[] { keeper, privateReader };

        // The opt-out, through the user service's own endpoint; lending learns it from UserUpdated.
        using (var users = fixture.Users.Host.CreateClient())
        {
            users.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", privateToken);
            using var put = await users.PutAsJsonAsync("/api/users/me/privacy", new { keepLoanHistory = false }, Ct);
            Assert.True(put.IsSuccessStatusCode, await put.Content.ReadAsStringAsync(Ct));
            Assert.False((await put.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("keepLoanHistory").GetBoolean());
        }
        await LendingFixture.WaitUntilAsync(() => fixture.InLendingAsync(db => db.Readers.AnyAsync(r => r.Id == privateReader && !r.KeepLoanHistory, Ct)),
            "lending learns the opt-out");

        var bookId = await fixture.TitleAsync(2, "Across the Services");
        var day = DateOnly.FromDateTime(fixture.Clock.GetUtcNow().UtcDateTime);
        var loans = new[] { await BorrowAsync(bookId, keeperToken), await BorrowAsync(bookId, privateToken) };

        // Due tomorrow: the clock's next pass sends due-soon notices, which name the loans.
        fixture.Clock.Advance(TimeSpan.FromMinutes(2));
        await LendingFixture.WaitUntilAsync(async () => await fixture.InLendingAsync(db =>
            db.Notices.Where(n => n.LoanId != null && loans.Contains(n.LoanId.Value)).Select(n => n.LoanId).Distinct().CountAsync(Ct)) == 2,
            "due-soon notices of both loans");
        await ReturnAsync(loans[0], keeperToken);
        await ReturnAsync(loans[1], privateToken);
        await LendingFixture.WaitUntilAsync(async () => await fixture.BookDb.ScalarAsync<long>(
            $"SELECT count(*) FROM book_loans WHERE loan_id IN ('{loans[0]}', '{loans[1]}') AND returned_at IS NOT NULL") == 2, "the catalog's history has both returns");
        var before = await ReportAsync(day.AddDays(-1), day.AddDays(2), bookId);
        Assert.Equal((2L, 2L, 2L), before);

        // The reader keeping no history: their loan forgot them at its return, everywhere.
        await LendingFixture.WaitUntilAsync(async () => await CatalogTracesAsync([loans[1]], readers) == 0 && await LendingTracesAsync([loans[1]], readers) == 0,
            "the opted-out reader's loan anonymised in lending and the catalog");
        Assert.Equal(1, await CatalogTracesAsync([loans[0]], readers));   // the other reader's, kept for now
        Assert.True(await LendingTracesAsync([loans[0]], readers) >= 1);

        // A month later: the other loan too.
        fixture.Clock.Advance(TimeSpan.FromDays(31));
        await LendingFixture.WaitUntilAsync(async () => await CatalogTracesAsync(loans, readers) == 0 && await LendingTracesAsync(loans, readers) == 0,
            "both loans anonymised in lending and the catalog");
        Assert.Equal(0, await fixture.LendingDb.ScalarAsync<long>(
            $"SELECT count(*) FROM loans WHERE user_id IN ('{keeper}', '{privateReader}')"));
        Assert.Equal(0, await fixture.BookDb.ScalarAsync<long>(
            $"SELECT count(*) FROM book_loans WHERE user_id IN ('{keeper}', '{privateReader}')"));

        // The reports count what they counted.
        Assert.Equal(before, await ReportAsync(day.AddDays(-1), day.AddDays(2), bookId));
    }
}
