extern alias UserService;

using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Library.TestSupport;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Tests;

/// <summary>Its own lending database: the rules and the calendar saved here are this class's alone.</summary>
public sealed class RulesFixture : LendingFixture;

/// <summary>Patron groups, circulation rules and the calendar, end to end with the real user service and catalog.</summary>
public sealed class RulesAndCalendarTests(RulesFixture fixture) : IClassFixture<RulesFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static object Rule(Guid? patronGroupId = null, string? loanType = null, bool loanable = true, int loanDays = 14, int maxLoanDays = 30,
        int maxActiveLoans = 5, int maxRenewals = 2, int renewalDays = 14, int holdPickupDays = 3) =>
        new { patronGroupId, loanType, loanable, loanDays, maxLoanDays, maxActiveLoans, maxRenewals, renewalDays, holdPickupDays, gracePeriodDays = 0, finePerDay = 0, maxFinePerLoan = 0, lostFee = 0 };

    private async Task<HttpClient> AdminAsync()
    {
        var client = fixture.Client(await fixture.Users.AdminTokenAsync());
        return client;
    }

    private async Task<HttpClient> UsersAsAdminAsync()
    {
        var client = fixture.Users.Host.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", await fixture.Users.AdminTokenAsync());
        return client;
    }

    /// <summary>A patron group made at the user service, once lending has learnt it by its event.</summary>
    private async Task<Guid> GroupAsync(string name)
    {
        using var users = await UsersAsAdminAsync();
        using var created = await users.PostAsJsonAsync("/api/patron-groups", new { name, description = "test group" }, Ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var id = (await created.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetGuid();
        await LendingFixture.WaitUntilAsync(() => fixture.InLendingAsync(db => db.PatronGroups.AnyAsync(g => g.Id == id, Ct)), "lending learns the group");
        return id;
    }

    private async Task MoveAsync(Guid userId, Guid group)
    {
        using var users = await UsersAsAdminAsync();
        Assert.Equal(HttpStatusCode.OK, (await users.PutAsJsonAsync($"/api/users/{userId}/patron-group", new { patronGroupId = group }, Ct)).StatusCode);
        await LendingFixture.WaitUntilAsync(() => fixture.InLendingAsync(db => db.Readers.AnyAsync(r => r.Id == userId && r.PatronGroupId == group, Ct)), "lending learns the reader's group");
    }

    [Fact]
    public async Task Lending_learns_the_default_group_and_every_readers_group_by_events()
    {
        var defaultGroup = UserService::Library.UserService.PatronGroups.DefaultPatronGroup.InitialId;
        await LendingFixture.WaitUntilAsync(() => fixture.InLendingAsync(db => db.PatronGroups.AnyAsync(g => g.Id == defaultGroup && g.Name == "patron", Ct)),
            "the migration's default group announced by the user service's first start");
        var (readerId, _) = await fixture.ReaderAsync();
        await LendingFixture.WaitUntilAsync(() => fixture.InLendingAsync(db => db.Readers.AnyAsync(r => r.Id == readerId && r.PatronGroupId == defaultGroup, Ct)),
            "a new reader's group");
        using var admin = await AdminAsync();
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync("/api/circulation-rules", new[] { Rule(patronGroupId: defaultGroup, maxActiveLoans: 4), Rule() }, Ct)).StatusCode);
        var (_, token) = await fixture.ReaderAsync();
        using var lent = await fixture.BorrowAsync(await fixture.TitleAsync(1), token: token, days: 3);
        Assert.Equal(HttpStatusCode.Created, lent.StatusCode);
        var loanId = (await lent.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetGuid();
        Assert.Equal(0, await fixture.InLendingAsync(db => db.Loans.Where(l => l.Id == loanId).Select(l => l.RuleIndex).SingleAsync(Ct)));
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync("/api/circulation-rules", new[] { Rule() }, Ct)).StatusCode);
    }

    [Fact]
    public async Task Rules_are_read_by_librarians_written_by_admins_and_validated_by_rule_and_field()
    {
        var (_, member) = await fixture.ReaderAsync();
        Assert.Equal(HttpStatusCode.Forbidden, (await fixture.Client(member).GetAsync("/api/circulation-rules", Ct)).StatusCode);
        var seeded = await fixture.Librarian().GetFromJsonAsync<JsonElement>("/api/circulation-rules", Ct);
        Assert.Equal(JsonValueKind.Null, seeded[seeded.GetArrayLength() - 1].GetProperty("patronGroupId").ValueKind); // the catch-all last
        Assert.Equal(HttpStatusCode.Forbidden, (await fixture.Librarian().PutAsJsonAsync("/api/circulation-rules", new[] { Rule() }, Ct)).StatusCode);

        using var admin = await AdminAsync();
        using var bad = await admin.PutAsJsonAsync("/api/circulation-rules", new[] { Rule(loanType: "short-loan", loanDays: 40, maxLoanDays: 30), Rule() }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        var errors = (await bad.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("errors");
        Assert.True(errors.TryGetProperty("rules[0].loanDays", out var message), errors.ToString());
        Assert.Contains("rule 0", message[0].GetString(), StringComparison.Ordinal);
        using var noCatchAll = await admin.PutAsJsonAsync("/api/circulation-rules", new[] { Rule(loanType: "standard") }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, noCatchAll.StatusCode);
        using var unknownGroup = await admin.PutAsJsonAsync("/api/circulation-rules", new[] { Rule(patronGroupId: Guid.CreateVersion7()), Rule() }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, unknownGroup.StatusCode);
        Assert.Equal(seeded.ToString(), (await fixture.Librarian().GetFromJsonAsync<JsonElement>("/api/circulation-rules", Ct)).ToString()); // refusals changed nothing
    }

    /// <summary>
    /// A save checks the patron groups under the rules' lock, the lock a group's deletion takes to
    /// drop the group's lines from the newest list: a group deleted while the save waited is refused
    /// (400) and nothing is saved. Checked before the lock, the save passed, waited for the
    /// deletion, then saved a line naming a group that was gone into the rules in force.
    /// </summary>
    [Fact]
    public async Task A_save_naming_a_group_deleted_while_it_waited_for_the_lock_is_refused()
    {
        var group = await GroupAsync("Racing-" + Guid.NewGuid().ToString("N")[..8]);
        using var admin = await AdminAsync();
        var before = await fixture.InLendingAsync(db => db.CirculationSettings.Where(s => s.Kind == "rules").MaxAsync(s => (long?)s.Version, Ct));

        // The deletion's handler in its transaction: the group marked deleted, the rules' lock taken, not committed yet.
        await using var deleting = await HeldTransaction.BeginAsync(fixture.LendingDb, """
            UPDATE patron_groups SET deleted = true WHERE id = @group;
            SELECT pg_advisory_xact_lock(hashtext('circulation_settings:rules'));
            """, ("group", group));

        var save = admin.PutAsJsonAsync("/api/circulation-rules", new[] { Rule(patronGroupId: group, maxActiveLoans: 2), Rule() }, Ct);
        await deleting.WaitUntilSomeoneWaitsAsync("the save waits for the deletion");
        await deleting.CommitAsync();

        using var refused = await save;
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("rules[0]", (await refused.Content.ReadAsStringAsync(Ct)), StringComparison.Ordinal);
        Assert.Equal(before, await fixture.InLendingAsync(db => db.CirculationSettings.Where(s => s.Kind == "rules").MaxAsync(s => (long?)s.Version, Ct)));
    }

    /// <summary>
    /// A group deleted at the user service leaves the rules in force (a new version, by nobody), so
    /// the admin's next save of the list they read is not refused for a line naming a group that is
    /// gone; the version the line was saved in keeps it.
    /// </summary>
    [Fact]
    public async Task Deleting_a_patron_group_drops_its_lines_from_the_rules_in_a_new_version()
    {
        var group = await GroupAsync("Gone-" + Guid.NewGuid().ToString("N")[..8]);
        var other = await GroupAsync("Stays-" + Guid.NewGuid().ToString("N")[..8]);
        using var admin = await AdminAsync();
        using var saved = await admin.PutAsJsonAsync("/api/circulation-rules",
            new[] { Rule(patronGroupId: group, loanType: "short-loan", maxActiveLoans: 3), Rule(patronGroupId: other, maxActiveLoans: 4), Rule(patronGroupId: group, maxActiveLoans: 2), Rule() }, Ct);
        Assert.Equal(HttpStatusCode.OK, saved.StatusCode);
        var savedVersion = long.Parse(saved.Headers.GetValues("Rules-Version").Single(), System.Globalization.CultureInfo.InvariantCulture);

        using (var users = await UsersAsAdminAsync())
        {
            Assert.Equal(HttpStatusCode.NoContent, (await users.DeleteAsync($"/api/patron-groups/{group}", Ct)).StatusCode);
        }
        HttpResponseMessage? current = null;
        await LendingFixture.WaitUntilAsync(async () =>
        {
            current?.Dispose();
            current = await fixture.Librarian().GetAsync("/api/circulation-rules", Ct);
            return long.Parse(current.Headers.GetValues("Rules-Version").Single(), System.Globalization.CultureInfo.InvariantCulture) > savedVersion;
        }, "the rules lose the deleted group's lines");
        var rules = await current!.Content.ReadFromJsonAsync<JsonElement>(Ct);
        current.Dispose();
        Assert.Equal([other.ToString(), ""], rules.EnumerateArray().Select(r => r.GetProperty("patronGroupId").ValueKind == JsonValueKind.Null ? "" : r.GetProperty("patronGroupId").GetString()!));
        Assert.Equal(4, rules[0].GetProperty("maxActiveLoans").GetInt32());
        Assert.Null(await fixture.InLendingAsync(db => db.CirculationSettings.Where(s => s.Kind == "rules").OrderByDescending(s => s.Version).Select(s => s.ChangedBy).FirstAsync(Ct)));
        // The version it was saved in still names it (loans made under it read their rule there).
        Assert.Contains(group.ToString(), await fixture.InLendingAsync(db => db.CirculationSettings.Where(s => s.Kind == "rules" && s.Version == savedVersion).Select(s => s.Document).SingleAsync(Ct)), StringComparison.Ordinal);

        // The list as read saves again; back to the class's catch-all.
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync("/api/circulation-rules", rules, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync("/api/circulation-rules", new[] { Rule() }, Ct)).StatusCode);
    }

    [Fact]
    public async Task Rules_and_a_calendar_saved_by_another_replica_apply_to_the_next_borrow_here()
    {
        var group = await GroupAsync("Elsewhere-" + Guid.NewGuid().ToString("N")[..8]);
        var (readerId, token) = await fixture.ReaderAsync();
        await MoveAsync(readerId, group);
        using var admin = await AdminAsync();
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync("/api/circulation-rules", new[] { Rule(patronGroupId: group, maxLoanDays: 30), Rule() }, Ct)).StatusCode);
        using (var first = await fixture.BorrowAsync(await fixture.TitleAsync(1), token: token, days: 20))
        {
            // This replica has now read (and kept) the rules and the calendar.
            Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        }

        // Another replica saves new rules and a calendar: rows this process never wrote.
        var rules = JsonSerializer.Serialize(new[] { Rule(patronGroupId: group, loanDays: 5, maxLoanDays: 5), Rule() });
        var calendar = JsonSerializer.Serialize(new { timeZone = "UTC", weeklyClosed = Array.Empty<string>(), closedDates = new[] { new { date = fixture.Clock.GetUtcNow().UtcDateTime.Date.AddDays(3).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture), reason = "elsewhere" } } });
        await fixture.InLendingAsync(db => db.Database.ExecuteSqlAsync($"""
            INSERT INTO circulation_settings (kind, version, document, changed_at)
            SELECT kind, coalesce((SELECT max(version) FROM circulation_settings s WHERE s.kind = k.kind), 0) + 1,
                   CASE kind WHEN 'rules' THEN {rules} ELSE {calendar} END::jsonb, now()
            FROM (VALUES ('rules'), ('calendar')) AS k (kind)
            """, Ct));

        using var tooLong = await fixture.BorrowAsync(await fixture.TitleAsync(1), token: token, days: 20);
        Assert.Equal(HttpStatusCode.BadRequest, tooLong.StatusCode);
        using var lent = await fixture.BorrowAsync(await fixture.TitleAsync(1), token: token, days: 3);
        Assert.Equal(HttpStatusCode.Created, lent.StatusCode);
        // Due on day 3, closed now: the next open day, day 4.
        var due = (await lent.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("dueAt").GetDateTimeOffset();
        Assert.Equal(fixture.Clock.GetUtcNow().UtcDateTime.Date.AddDays(5).AddSeconds(-1), due.UtcDateTime);

        // Back to what the class's other tests expect: no closed date.
        using var open = await admin.PutAsJsonAsync("/api/calendar", new { timeZone = "UTC", weeklyClosed = Array.Empty<string>(), closedDates = Array.Empty<object>() }, Ct);
        Assert.Equal(HttpStatusCode.OK, open.StatusCode);
    }

    [Fact]
    public async Task Holds_count_receive_and_hold_back_renewals_of_only_the_copies_the_readers_rule_lends()
    {
        var group = await GroupAsync("NoShort-" + Guid.NewGuid().ToString("N")[..8]);
        var (limitedId, limitedToken) = await fixture.ReaderAsync();
        await MoveAsync(limitedId, group);
        using var admin = await AdminAsync();
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync("/api/circulation-rules", new[]
        {
            Rule(patronGroupId: group, loanType: "short-loan", loanable: false),
            Rule(loanType: "short-loan", loanDays: 2, maxLoanDays: 3, renewalDays: 2),
            Rule(),
        }, Ct)).StatusCode);
        var book = await fixture.TitleAsync(1);
        await LendingFixture.WaitUntilAsync(async () => (await fixture.CopyCountsAsync(book)).Total == 1, "lending has the standard copy");
        var shortBarcode = "SL-" + Guid.NewGuid().ToString("N")[..10];
        Assert.Equal(HttpStatusCode.Created, (await fixture.Librarian().PostAsJsonAsync($"/api/books/{book}/copies", new { barcode = shortBarcode, loanType = "short-loan" }, Ct)).StatusCode);

        // The standard copy goes out: only the short loan is on the shelf.
        var (_, firstToken) = await fixture.ReaderAsync();
        using var standardLoan = await fixture.BorrowAsync(book, token: firstToken, days: 7);
        Assert.Equal(HttpStatusCode.Created, standardLoan.StatusCode);
        var standard = await standardLoan.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.NotEqual(shortBarcode, standard.GetProperty("barcode").GetString());

        // The limited reader may not take it home, so they may wait for a copy they can borrow...
        using var notLoanable = await fixture.BorrowAsync(book, token: limitedToken, days: 7);
        Assert.Equal(HttpStatusCode.Conflict, notLoanable.StatusCode);
        Assert.Equal("Not loanable", (await notLoanable.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("title").GetString());
        using var limitedHold = await fixture.PlaceHoldAsync(book, token: limitedToken);
        Assert.Equal(HttpStatusCode.Created, limitedHold.StatusCode);
        var limitedHoldId = (await limitedHold.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetGuid();
        // ...while a reader who may borrow it is told to.
        var (_, shortToken) = await fixture.ReaderAsync();
        using var borrowIt = await fixture.PlaceHoldAsync(book, token: shortToken);
        Assert.Equal(HttpStatusCode.Conflict, borrowIt.StatusCode);
        Assert.Equal("A copy is on the shelf", (await borrowIt.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("title").GetString());

        // That reader borrows the short loan; another waits behind the limited reader.
        using var shortLoan = await fixture.BorrowAsync(book, token: shortToken, days: 2);
        Assert.Equal(HttpStatusCode.Created, shortLoan.StatusCode);
        var shortLoanId = (await shortLoan.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetGuid();
        // Only a waiting reader who could take a copy home holds it back: the limited reader waits
        // for the standard copy, so the short loan renews and the standard loan does not.
        Task<HttpResponseMessage> RenewAsync(string token, Guid loan) => fixture.Client(token).PostAsync($"/api/loans/{loan}/renew", null, Ct);
        using (var renewedShort = await RenewAsync(shortToken, shortLoanId))
        {
            Assert.Equal(HttpStatusCode.OK, renewedShort.StatusCode);
        }
        using (var heldBack = await RenewAsync(firstToken, standard.GetProperty("id").GetGuid()))
        {
            Assert.Equal(HttpStatusCode.Conflict, heldBack.StatusCode);
            Assert.Equal("Other readers are waiting for this title.", (await heldBack.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("detail").GetString());
        }
        var (_, nextToken) = await fixture.ReaderAsync();
        using var nextHold = await fixture.PlaceHoldAsync(book, token: nextToken);
        Assert.Equal(HttpStatusCode.Created, nextHold.StatusCode);
        // Now a reader who may take the short loan waits for it: no more renewals of it.
        using (var shortHeldBack = await RenewAsync(shortToken, shortLoanId))
        {
            Assert.Equal(HttpStatusCode.Conflict, shortHeldBack.StatusCode);
        }
        var nextHoldId = (await nextHold.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetGuid();
        Task<string> StatusAsync(Guid hold) => fixture.InLendingAsync(db => db.Holds.Where(h => h.Id == hold).Select(h => h.Status).SingleAsync(Ct));

        // The short loan comes back: it passes over the limited reader (who keeps their place) to the next.
        Assert.Equal(HttpStatusCode.OK, (await fixture.Client(shortToken).PostAsync($"/api/loans/{shortLoanId}/return", null, Ct)).StatusCode);
        Assert.Equal(("waiting", "ready"), (await StatusAsync(limitedHoldId), await StatusAsync(nextHoldId)));

        // The standard copy comes back: the limited reader's turn, and they borrow it.
        Assert.Equal(HttpStatusCode.OK, (await fixture.Client(firstToken).PostAsync($"/api/loans/{standard.GetProperty("id").GetGuid()}/return", null, Ct)).StatusCode);
        Assert.Equal("ready", await StatusAsync(limitedHoldId));
        using var limitedLoan = await fixture.BorrowAsync(book, token: limitedToken, days: 7);
        Assert.Equal(HttpStatusCode.Created, limitedLoan.StatusCode);
        Assert.Equal(standard.GetProperty("barcode").GetString(), (await limitedLoan.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("barcode").GetString());

        // A title whose every copy is of a type the reader's rule does not lend cannot be held by them.
        var shortOnly = await fixture.TitleAsync(0);
        await LendingFixture.WaitUntilAsync(() => fixture.InLendingAsync(db => db.Titles.AnyAsync(t => t.Id == shortOnly, Ct)), "lending has the title");
        Assert.Equal(HttpStatusCode.Created, (await fixture.Librarian().PostAsJsonAsync($"/api/books/{shortOnly}/copies", new { barcode = "SL-" + Guid.NewGuid().ToString("N")[..10], loanType = "short-loan" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await fixture.BorrowAsync(shortOnly, token: nextToken, days: 2)).StatusCode);
        using var never = await fixture.PlaceHoldAsync(shortOnly, token: limitedToken);
        Assert.Equal(HttpStatusCode.Conflict, never.StatusCode);
        Assert.Equal("Not loanable", (await never.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("title").GetString());
        Assert.Equal(0, await fixture.InLendingAsync(db => db.Holds.CountAsync(h => h.BookId == shortOnly, Ct)));
    }

    [Fact]
    public async Task A_groups_loan_limit_short_loans_and_new_rules_apply_to_new_loans_only()
    {
        var group = await GroupAsync("Limited-" + Guid.NewGuid().ToString("N")[..8]);
        var (readerId, token) = await fixture.ReaderAsync();
        await MoveAsync(readerId, group);
        using var admin = await AdminAsync();
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync("/api/circulation-rules", new[]
        {
            Rule(patronGroupId: group, maxActiveLoans: 2, maxRenewals: 0),
            Rule(loanType: "short-loan", loanDays: 2, maxLoanDays: 3, renewalDays: 2),
            Rule(),
        }, Ct)).StatusCode);

        var loans = new List<JsonElement>();
        for (var i = 0; i < 2; i++)
        {
            using var lent = await fixture.BorrowAsync(await fixture.TitleAsync(1), token: token, days: 7);
            Assert.Equal(HttpStatusCode.Created, lent.StatusCode);
            loans.Add(await lent.Content.ReadFromJsonAsync<JsonElement>(Ct));
        }
        using var third = await fixture.BorrowAsync(await fixture.TitleAsync(1), token: token, days: 7);
        Assert.Equal(HttpStatusCode.Forbidden, third.StatusCode);
        var limit = await third.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Contains("most allowed", limit.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal("limit", Assert.Single(limit.GetProperty("blocks").EnumerateArray()).GetProperty("source").GetString()); // named as a block
        Assert.Equal(HttpStatusCode.Conflict, (await fixture.Client(token).PostAsync($"/api/loans/{loans[0].GetProperty("id").GetGuid()}/renew", null, Ct)).StatusCode);

        // A short-loan copy gets its own days (another reader, the catch-all group).
        var book = await fixture.TitleAsync(0);
        var barcode = "SL-" + Guid.NewGuid().ToString("N")[..10];
        Assert.Equal(HttpStatusCode.Created, (await fixture.Librarian().PostAsJsonAsync($"/api/books/{book}/copies", new { barcode, loanType = "short-loan" }, Ct)).StatusCode);
        var (otherId, _) = await fixture.ReaderAsync();
        using var tooLong = await fixture.Librarian().PostAsJsonAsync("/api/circulation/check-out", new { barcode, userId = otherId, days = 7 }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, tooLong.StatusCode);
        using var shortLoan = await fixture.Librarian().PostAsJsonAsync("/api/circulation/check-out", new { barcode, userId = otherId }, Ct);
        Assert.Equal(HttpStatusCode.Created, shortLoan.StatusCode);
        var shortDue = (await shortLoan.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("dueAt").GetDateTimeOffset();
        Assert.Equal(fixture.Clock.GetUtcNow().UtcDateTime.Date.AddDays(3).AddSeconds(-1), shortDue.UtcDateTime);

        // The rules change: the group may renew now, but its existing loans keep their rule.
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync("/api/circulation-rules", new[] { Rule(patronGroupId: group, maxActiveLoans: 3, maxRenewals: 1), Rule() }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await fixture.Client(token).PostAsync($"/api/loans/{loans[0].GetProperty("id").GetGuid()}/renew", null, Ct)).StatusCode);
        using var newLoan = await fixture.BorrowAsync(await fixture.TitleAsync(1), token: token, days: 7);
        Assert.Equal(HttpStatusCode.Created, newLoan.StatusCode);
        var newId = (await newLoan.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetGuid();
        Assert.Equal(HttpStatusCode.OK, (await fixture.Client(token).PostAsync($"/api/loans/{newId}/renew", null, Ct)).StatusCode);
        var versions = await fixture.InLendingAsync(db => db.Loans.Where(l => l.UserId == readerId).Select(l => l.RuleVersion).Distinct().CountAsync(Ct));
        Assert.Equal(2, versions);

        // Resolve explains which rule applies.
        var copyId = await fixture.InLendingAsync(db => db.Loans.Where(l => l.Id == newId).Select(l => l.CopyId).SingleAsync(Ct));
        var resolved = await fixture.Librarian().GetFromJsonAsync<JsonElement>($"/api/circulation-rules/resolve?userId={readerId}&copyId={copyId}", Ct);
        Assert.Equal(0, resolved.GetProperty("ruleIndex").GetInt32());
        Assert.Equal(group, resolved.GetProperty("rule").GetProperty("patronGroupId").GetGuid());
        Assert.Contains("rule 0", resolved.GetProperty("explanation").GetString(), StringComparison.OrdinalIgnoreCase);
        Assert.Equal(HttpStatusCode.BadRequest, (await fixture.Librarian().GetAsync($"/api/circulation-rules/resolve?userId={readerId}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await fixture.Librarian().GetAsync($"/api/circulation-rules/resolve?userId={readerId}&copyId={Guid.CreateVersion7()}", Ct)).StatusCode);
    }

    [Fact]
    public async Task Due_dates_move_past_closed_days_in_the_librarys_time_zone()
    {
        Assert.Equal("UTC", (await fixture.Client().GetFromJsonAsync<JsonElement>("/api/calendar", Ct)).GetProperty("timeZone").GetString());
        using var admin = await AdminAsync();
        var today = fixture.Clock.GetUtcNow().UtcDateTime.Date;
        var daysToSunday = ((int)DayOfWeek.Sunday - (int)today.DayOfWeek + 7) % 7;
        daysToSunday = daysToSunday == 0 ? 7 : daysToSunday;
        var closure = today.AddDays(daysToSunday + 1); // the Monday after: closed too, for a holiday
        using var bad = await admin.PutAsJsonAsync("/api/calendar", new { timeZone = "Mars/Olympus", weeklyClosed = new[] { "sunday" }, closedDates = Array.Empty<object>() }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.True((await bad.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("errors").TryGetProperty("timeZone", out _));
        Assert.Equal(HttpStatusCode.Forbidden, (await fixture.Librarian().PutAsJsonAsync("/api/calendar", new { timeZone = "UTC", weeklyClosed = Array.Empty<string>(), closedDates = Array.Empty<object>() }, Ct)).StatusCode);
        using var saved = await admin.PutAsJsonAsync("/api/calendar", new
        {
            timeZone = "Etc/UTC",
            weeklyClosed = new[] { "Sunday" },
            closedDates = new[] { new { date = closure.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture), reason = "Holiday" } },
        }, Ct);
        Assert.Equal(HttpStatusCode.OK, saved.StatusCode);
        var calendar = await fixture.Client().GetFromJsonAsync<JsonElement>("/api/calendar", Ct);
        Assert.Equal("sunday", calendar.GetProperty("weeklyClosed")[0].GetString());

        // A loan due on the closed Sunday (and the closed Monday after) is due on Tuesday, end of day.
        var (_, token) = await fixture.ReaderAsync();
        using var lent = await fixture.BorrowAsync(await fixture.TitleAsync(1), token: token, days: daysToSunday);
        Assert.Equal(HttpStatusCode.Created, lent.StatusCode);
        var due = (await lent.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("dueAt").GetDateTimeOffset();
        Assert.Equal(closure.AddDays(2).AddSeconds(-1), due.UtcDateTime);
        Assert.Equal(DayOfWeek.Tuesday, due.UtcDateTime.DayOfWeek);

        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync("/api/calendar", new { timeZone = "UTC", weeklyClosed = Array.Empty<string>(), closedDates = Array.Empty<object>() }, Ct)).StatusCode);
    }
}
