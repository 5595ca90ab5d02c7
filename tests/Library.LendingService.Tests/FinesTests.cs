using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Library.EventBus;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Tests;

/// <summary>Its own lending database: the fining rules and the weekend-closed calendar are this class's alone.</summary>
public sealed class FinesFixture : LendingFixture;

/// <summary>
/// Fines, payments, waivers, blocks and the reader's account, end to end against the real servers,
/// with the lending service's clock moved by hand. Rules: 50 a late open day, at most 300 a loan,
/// a lost fee of 2500; the library is closed on weekends; the block threshold is the default 1000.
/// </summary>
public sealed class FinesTests(FinesFixture fixture) : IClassFixture<FinesFixture>
{
    private const long PerDay = 50;
    private const long Cap = 300;
    private const long LostFee = 2500;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task RulesAsync()
    {
        using var admin = fixture.Client(await fixture.Users.AdminTokenAsync());
        var rule = new
        {
            patronGroupId = (Guid?)null, loanType = (string?)null, loanable = true, loanDays = 14, maxLoanDays = 30, maxActiveLoans = 5, maxRenewals = 2,
            renewalDays = 14, holdPickupDays = 3, gracePeriodDays = 0, finePerDay = PerDay, maxFinePerLoan = Cap, lostFee = LostFee,
        };
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync("/api/circulation-rules", new[] { rule }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync("/api/calendar",
            new { timeZone = "UTC", weeklyClosed = new[] { "saturday", "sunday" }, closedDates = Array.Empty<object>() }, Ct)).StatusCode);
    }

    private async Task<JsonElement> BorrowAsync(Guid book, string token, int days = 1)
    {
        using var lent = await fixture.BorrowAsync(book, token: token, days: days);
        Assert.Equal(HttpStatusCode.Created, lent.StatusCode);
        return await lent.Content.ReadFromJsonAsync<JsonElement>(Ct);
    }

    private async Task<JsonElement> AccountAsync(Guid userId, string token)
    {
        using var response = await fixture.Client(token).GetAsync($"/api/users/{userId}/account", Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
    }

    private static async Task<JsonElement> ProblemAsync(HttpResponseMessage response, HttpStatusCode status)
    {
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        return await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
    }

    private static List<string> Sources(JsonElement withBlocks) =>
        withBlocks.GetProperty("blocks").EnumerateArray().Select(b => b.GetProperty("source").GetString()!).ToList();

    /// <summary>Moves the clock to <paramref name="dueAt"/> plus whole days, at noon (the due date is the end of a day).</summary>
    private void MoveTo(DateTimeOffset dueAt, int daysLater)
    {
        var target = dueAt.AddDays(daysLater).AddHours(-12);
        if (target > fixture.Clock.GetUtcNow())
        {
            fixture.Clock.SetUtcNow(target);
        }
    }

    [Fact]
    public async Task An_overdue_loan_accrues_only_open_days_shows_its_fine_so_far_and_is_charged_at_check_in_up_to_the_cap()
    {
        await RulesAsync();
        var (first, firstToken) = await fixture.ReaderAsync();
        var (second, secondToken) = await fixture.ReaderAsync();
        var firstLoan = await BorrowAsync(await fixture.TitleAsync(1, "Late By A Week"), firstToken);
        var secondLoan = await BorrowAsync(await fixture.TitleAsync(1, "Late By Two Weeks"), secondToken);
        var dueAt = firstLoan.GetProperty("dueAt").GetDateTimeOffset();
        Assert.Equal(dueAt, secondLoan.GetProperty("dueAt").GetDateTimeOffset());

        // A week late: any seven days hold one weekend, so five open days, 250 (not 7 x 50).
        MoveTo(dueAt, 7);
        var account = await AccountAsync(first, firstToken);
        Assert.Equal((0, "EUR"), (account.GetProperty("balance").GetInt64(), account.GetProperty("currency").GetString()));
        var accruing = Assert.Single(account.GetProperty("accruing").EnumerateArray());
        Assert.Equal((firstLoan.GetProperty("id").GetGuid(), 5 * PerDay), (accruing.GetProperty("loanId").GetGuid(), accruing.GetProperty("amount").GetInt64()));
        Assert.Equal([ "overdue" ], Sources(account));
        // The overdue loan blocks borrowing and holds, named in each 403 as in the account.
        var wanted = await fixture.TitleAsync(0, "Wanted While Late");
        Assert.Equal([ "overdue" ], Sources(await ProblemAsync(await fixture.BorrowAsync(await fixture.TitleAsync(1, "Refused While Late"), token: firstToken), HttpStatusCode.Forbidden)));
        var hold = await ProblemAsync(await fixture.PlaceHoldAsync(wanted, token: firstToken), HttpStatusCode.Forbidden);
        Assert.Equal("Reader blocked", hold.GetProperty("title").GetString());
        Assert.Equal([ "overdue" ], Sources(hold));

        using var checkIn = await fixture.Librarian().PostAsJsonAsync("/api/circulation/check-in", new { barcode = firstLoan.GetProperty("barcode").GetString() }, Ct);
        Assert.Equal(HttpStatusCode.OK, checkIn.StatusCode);
        var fine = (await checkIn.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("fine");
        Assert.Equal(("overdue", 5 * PerDay, 0L, "open", "Late By A Week"), (fine.GetProperty("kind").GetString(), fine.GetProperty("amount").GetInt64(),
            fine.GetProperty("paidAmount").GetInt64(), fine.GetProperty("status").GetString(), fine.GetProperty("title").GetString()));
        var fineId = fine.GetProperty("id").GetGuid();
        // The fine and its event, in the same transaction as the return.
        var charged = (await fixture.InLendingAsync(db => db.Set<OutboxMessage>().Where(m => m.EventName == "fine.charged").Select(m => m.Payload).ToListAsync(Ct)))
            .Select(p => JsonDocument.Parse(p).RootElement).Single(e => e.GetProperty("fineId").GetGuid() == fineId);
        Assert.Equal((first, 5 * PerDay, "EUR", "overdue"), (charged.GetProperty("userId").GetGuid(), charged.GetProperty("amount").GetInt64(),
            charged.GetProperty("currency").GetString(), charged.GetProperty("kind").GetString()));
        account = await AccountAsync(first, firstToken);
        Assert.Equal(5 * PerDay, account.GetProperty("balance").GetInt64());
        Assert.Empty(account.GetProperty("accruing").EnumerateArray());
        Assert.Empty(account.GetProperty("blocks").EnumerateArray()); // 250 is under the threshold, and nothing is overdue

        // Two weeks late: ten open days would be 500; the cap is 300. Returned by the reader this time.
        MoveTo(dueAt, 14);
        using var returned = await fixture.Client(secondToken).PostAsync($"/api/loans/{secondLoan.GetProperty("id").GetGuid()}/return", null, Ct);
        Assert.Equal(HttpStatusCode.OK, returned.StatusCode);
        var fines = await fixture.Client(secondToken).GetFromJsonAsync<JsonElement>("/api/fines?status=open", Ct);
        var capped = Assert.Single(fines.GetProperty("items").EnumerateArray());
        Assert.Equal((second, Cap, secondLoan.GetProperty("id").GetGuid()), (capped.GetProperty("userId").GetGuid(), capped.GetProperty("amount").GetInt64(), capped.GetProperty("loanId").GetGuid()));
        Assert.Equal(1, fines.GetProperty("totalCount").GetInt64());
    }

    [Fact]
    public async Task A_copy_declared_lost_ends_its_loan_and_charges_the_lost_fee_and_the_overdue_fine_so_far()
    {
        await RulesAsync();
        var (reader, token) = await fixture.ReaderAsync();
        var loan = await BorrowAsync(await fixture.TitleAsync(1, "Never Seen Again"), token);
        MoveTo(loan.GetProperty("dueAt").GetDateTimeOffset(), 7);

        using var lost = await fixture.Librarian().PatchAsJsonAsync($"/api/copies/{loan.GetProperty("copyId").GetGuid()}", new { status = "lost" }, Ct);
        Assert.Equal(HttpStatusCode.OK, lost.StatusCode);
        Assert.Equal("lost", (await lost.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("status").GetString());
        var ended = await fixture.Client(token).GetFromJsonAsync<JsonElement>($"/api/loans/{loan.GetProperty("id").GetGuid()}", Ct);
        Assert.Equal("returned", ended.GetProperty("status").GetString());

        var fines = (await fixture.Librarian().GetFromJsonAsync<JsonElement>($"/api/fines?userId={reader}", Ct)).GetProperty("items").EnumerateArray()
            .ToDictionary(f => f.GetProperty("kind").GetString()!, f => f.GetProperty("amount").GetInt64());
        Assert.Equal(new Dictionary<string, long> { ["lost"] = LostFee, ["overdue"] = 5 * PerDay }, fines);
        var account = await AccountAsync(reader, fixture.LibrarianToken);
        Assert.Equal(LostFee + 5 * PerDay, account.GetProperty("balance").GetInt64());
        Assert.Equal(2, account.GetProperty("openFines").GetArrayLength());
        Assert.Equal([ "fines" ], Sources(account)); // no longer overdue: the loan is over; the balance blocks
    }

    [Fact]
    public async Task Staff_pay_their_own_fines_but_another_librarian_waives_them_and_lifts_their_blocks()
    {
        await RulesAsync();
        var (staffId, staffToken) = await fixture.Users.NewUserAsync("librarian");
        var (_, colleagueToken) = await fixture.Users.NewUserAsync("librarian");
        using var staff = fixture.Client(staffToken);
        using var colleague = fixture.Client(colleagueToken);
        var loan = await BorrowAsync(await fixture.TitleAsync(1, "Lost By Staff"), staffToken, days: 14);
        Assert.Equal(HttpStatusCode.OK, (await colleague.PatchAsJsonAsync($"/api/copies/{loan.GetProperty("copyId").GetGuid()}", new { status = "lost" }, Ct)).StatusCode);
        var fineId = Assert.Single((await colleague.GetFromJsonAsync<JsonElement>($"/api/fines?userId={staffId}&status=open", Ct)).GetProperty("items").EnumerateArray()).GetProperty("id").GetGuid();

        var own = await ProblemAsync(await staff.PostAsJsonAsync($"/api/fines/{fineId}/waive", new { reason = "Mine, so why not" }, Ct), HttpStatusCode.Forbidden);
        Assert.Contains("another librarian", own.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(0, await fixture.InLendingAsync(db => db.FineTransactions.CountAsync(t => t.FineId == fineId, Ct)));
        Assert.Equal(HttpStatusCode.OK, (await staff.PostAsJsonAsync($"/api/fines/{fineId}/payments", new { amount = 100 }, Ct)).StatusCode); // paying is fine
        Assert.Equal(HttpStatusCode.OK, (await colleague.PostAsJsonAsync($"/api/fines/{fineId}/waive", new { reason = "Staff goodwill, agreed by the head" }, Ct)).StatusCode);

        using var created = await colleague.PostAsJsonAsync($"/api/users/{staffId}/blocks", new { reason = "Card misuse under review", borrowing = true }, Ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var blockId = (await created.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetGuid();
        await ProblemAsync(await staff.DeleteAsync($"/api/blocks/{blockId}", Ct), HttpStatusCode.Forbidden);
        Assert.True(await fixture.InLendingAsync(db => db.Blocks.AnyAsync(b => b.Id == blockId, Ct)));
        Assert.Equal(HttpStatusCode.NoContent, (await colleague.DeleteAsync($"/api/blocks/{blockId}", Ct)).StatusCode);
        await ProblemAsync(await colleague.DeleteAsync($"/api/blocks/{blockId}", Ct), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Payments_may_be_partial_never_over_the_balance_waivers_record_who_and_why_and_paying_under_the_threshold_lifts_the_block_at_once()
    {
        await RulesAsync();
        var (librarianId, librarianToken) = await fixture.Users.NewUserAsync("librarian");
        var librarian = fixture.Client(librarianToken);
        var (reader, token) = await fixture.ReaderAsync();
        var kept = await BorrowAsync(await fixture.TitleAsync(1, "Still Out"), token, days: 14);
        var lostLoan = await BorrowAsync(await fixture.TitleAsync(1, "Dropped In The Sea"), token, days: 14);
        Assert.Equal(HttpStatusCode.OK, (await librarian.PatchAsJsonAsync($"/api/copies/{lostLoan.GetProperty("copyId").GetGuid()}", new { status = "lost" }, Ct)).StatusCode);
        var fine = Assert.Single((await librarian.GetFromJsonAsync<JsonElement>($"/api/fines?userId={reader}&status=open", Ct)).GetProperty("items").EnumerateArray());
        var fineId = fine.GetProperty("id").GetGuid();
        Assert.Equal(("lost", LostFee), (fine.GetProperty("kind").GetString(), fine.GetProperty("amount").GetInt64())); // not overdue: the fee alone

        // 2500 owed: borrowing, renewing and holds are refused, each 403 naming the fines block.
        var other = await fixture.TitleAsync(1, "Wanted Meanwhile");
        var borrow = await ProblemAsync(await fixture.BorrowAsync(other, token: token), HttpStatusCode.Forbidden);
        Assert.Equal([ "fines" ], Sources(borrow));
        Assert.Contains("2500", borrow.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal([ "fines" ], Sources(await ProblemAsync(await fixture.Client(token).PostAsync($"/api/loans/{kept.GetProperty("id").GetGuid()}/renew", null, Ct), HttpStatusCode.Forbidden)));
        Assert.Equal([ "fines" ], Sources(await ProblemAsync(await fixture.PlaceHoldAsync(await fixture.TitleAsync(0, "None On The Shelf"), token: token), HttpStatusCode.Forbidden)));
        var barcode = (await fixture.Librarian().GetFromJsonAsync<JsonElement>($"/api/books/{other}/copies", Ct))[0].GetProperty("barcode").GetString();
        Assert.Equal([ "fines" ], Sources(await ProblemAsync(await librarian.PostAsJsonAsync("/api/circulation/check-out", new { barcode, userId = reader }, Ct), HttpStatusCode.Forbidden)));

        // Bad payments change nothing.
        foreach (var bad in new object[] { new { amount = 0 }, new { amount = -5 }, new { amount = LostFee + 1 }, new { }, new { amount = "ten" }, new { amount = 1.5 } })
        {
            await ProblemAsync(await librarian.PostAsJsonAsync($"/api/fines/{fineId}/payments", bad, Ct), HttpStatusCode.BadRequest);
        }
        await ProblemAsync(await fixture.Client(token).PostAsJsonAsync($"/api/fines/{fineId}/payments", new { amount = 100 }, Ct), HttpStatusCode.Forbidden);
        await ProblemAsync(await librarian.PostAsJsonAsync($"/api/fines/{Guid.CreateVersion7()}/payments", new { amount = 100 }, Ct), HttpStatusCode.NotFound);
        Assert.Equal(0, await fixture.InLendingAsync(db => db.FineTransactions.CountAsync(t => t.FineId == fineId, Ct)));

        using var part = await librarian.PostAsJsonAsync($"/api/fines/{fineId}/payments", new { amount = 1000 }, Ct);
        Assert.Equal(HttpStatusCode.OK, part.StatusCode);
        var paid = await part.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal((1000L, "open"), (paid.GetProperty("paidAmount").GetInt64(), paid.GetProperty("status").GetString()));
        Assert.Equal([ "fines" ], Sources(await AccountAsync(reader, token))); // 1500 still at or over 1000
        Assert.Equal(HttpStatusCode.Forbidden, (await fixture.BorrowAsync(other, token: token)).StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await librarian.PostAsJsonAsync($"/api/fines/{fineId}/payments", new { amount = 600 }, Ct)).StatusCode);
        var account = await AccountAsync(reader, token);
        Assert.Equal(900, account.GetProperty("balance").GetInt64());
        Assert.Empty(account.GetProperty("blocks").EnumerateArray());
        Assert.Equal(HttpStatusCode.Created, (await fixture.BorrowAsync(other, token: token)).StatusCode); // lifted at once: nothing stored to clear

        // Waive the rest: a reason is required; who and why are recorded.
        foreach (var bad in new object[] { new { }, new { reason = "" }, new { reason = "   " }, new { reason = new string('x', 501) }, new { reason = "bad\u0001reason" } })
        {
            await ProblemAsync(await librarian.PostAsJsonAsync($"/api/fines/{fineId}/waive", bad, Ct), HttpStatusCode.BadRequest);
        }
        using var waived = await librarian.PostAsJsonAsync($"/api/fines/{fineId}/waive", new { reason = "Found the copy's remains; goodwill" }, Ct);
        Assert.Equal(HttpStatusCode.OK, waived.StatusCode);
        Assert.Equal("waived", (await waived.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("status").GetString());
        await ProblemAsync(await librarian.PostAsJsonAsync($"/api/fines/{fineId}/waive", new { reason = "again" }, Ct), HttpStatusCode.Conflict);
        await ProblemAsync(await librarian.PostAsJsonAsync($"/api/fines/{fineId}/payments", new { amount = 1 }, Ct), HttpStatusCode.BadRequest);

        var transactions = await fixture.InLendingAsync(db => db.FineTransactions.Where(t => t.FineId == fineId).OrderBy(t => t.CreatedAt).ThenBy(t => t.Kind).ToListAsync(Ct));
        Assert.Equal([("payment", 1000L, (string?)null), ("payment", 600L, null), ("waiver", 900L, "Found the copy's remains; goodwill")],
            transactions.Select(t => (t.Kind, t.Amount, t.Reason)));
        Assert.All(transactions, t => Assert.Equal(librarianId, t.CreatedBy));
        var row = await fixture.InLendingAsync(db => db.Fines.SingleAsync(f => f.Id == fineId, Ct));
        Assert.Equal((1600L, "waived", true), (row.PaidAmount, row.Status, row.ClosedAt is not null));
        Assert.Equal(0, (await AccountAsync(reader, token)).GetProperty("balance").GetInt64());
    }

    [Fact]
    public async Task A_manual_block_refuses_what_it_names_until_deleted_or_expired()
    {
        await RulesAsync();
        var (reader, token) = await fixture.ReaderAsync();
        var (_, someoneElse) = await fixture.ReaderAsync();
        var book = await fixture.TitleAsync(1, "Queue For It");
        await BorrowAsync(book, someoneElse, days: 14);

        using var created = await fixture.Librarian().PostAsJsonAsync($"/api/users/{reader}/blocks", new { reason = "Library card reported stolen", holds = true }, Ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var block = await created.Content.ReadFromJsonAsync<JsonElement>(Ct);
        var blockId = block.GetProperty("id").GetGuid();
        Assert.Equal($"/api/blocks/{blockId}", created.Headers.Location?.OriginalString);
        Assert.Equal(("manual", true, false), (block.GetProperty("source").GetString(), block.GetProperty("holds").GetBoolean(), block.GetProperty("borrowing").GetBoolean()));

        var refused = await ProblemAsync(await fixture.PlaceHoldAsync(book, token: token), HttpStatusCode.Forbidden);
        var named = Assert.Single(refused.GetProperty("blocks").EnumerateArray());
        Assert.Equal(("manual", "Library card reported stolen", blockId), (named.GetProperty("source").GetString(), named.GetProperty("reason").GetString(), named.GetProperty("id").GetGuid()));
        Assert.Contains("Library card reported stolen", refused.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal([ "manual" ], Sources(await AccountAsync(reader, token)));
        await BorrowAsync(await fixture.TitleAsync(1, "Borrowing Is Not Blocked"), token, days: 14); // holds only

        await ProblemAsync(await fixture.Client(token).DeleteAsync($"/api/blocks/{blockId}", Ct), HttpStatusCode.Forbidden);
        Assert.Equal(HttpStatusCode.NoContent, (await fixture.Librarian().DeleteAsync($"/api/blocks/{blockId}", Ct)).StatusCode);
        await ProblemAsync(await fixture.Librarian().DeleteAsync($"/api/blocks/{blockId}", Ct), HttpStatusCode.NotFound);
        Assert.Equal(HttpStatusCode.Created, (await fixture.PlaceHoldAsync(book, token: token)).StatusCode);

        // An expiring block applies until its moment, then no more.
        var until = fixture.Clock.GetUtcNow().AddHours(1);
        Assert.Equal(HttpStatusCode.Created, (await fixture.Librarian().PostAsJsonAsync($"/api/users/{reader}/blocks",
            new { reason = "Cooling off", expiresAt = until, borrowing = true, renewals = true }, Ct)).StatusCode);
        var later = await fixture.TitleAsync(1, "After The Block");
        Assert.Equal([ "manual" ], Sources(await ProblemAsync(await fixture.BorrowAsync(later, token: token, days: 14), HttpStatusCode.Forbidden)));
        fixture.Clock.Advance(TimeSpan.FromHours(2));
        Assert.Empty((await AccountAsync(reader, token)).GetProperty("blocks").EnumerateArray());
        Assert.Equal(HttpStatusCode.Created, (await fixture.BorrowAsync(later, token: token, days: 14)).StatusCode);

        // Bad blocks are 400s that create nothing; unknown readers 404; members 403.
        var before = await fixture.InLendingAsync(db => db.Blocks.CountAsync(Ct));
        foreach (var bad in new object[]
        {
            new { holds = true },
            new { reason = "", holds = true },
            new { reason = new string('x', 501), holds = true },
            new { reason = "Nothing blocked" },
            new { reason = "Nothing blocked", borrowing = false, renewals = false, holds = false },
            new { reason = "In the past", holds = true, expiresAt = fixture.Clock.GetUtcNow().AddMinutes(-1) },
            new { reason = "Not a date", holds = true, expiresAt = "tomorrow" },
            new { reason = "Not a flag", holds = "yes" },
        })
        {
            await ProblemAsync(await fixture.Librarian().PostAsJsonAsync($"/api/users/{reader}/blocks", bad, Ct), HttpStatusCode.BadRequest);
        }
        await ProblemAsync(await fixture.Librarian().PostAsJsonAsync($"/api/users/{Guid.CreateVersion7()}/blocks", new { reason = "Who?", holds = true }, Ct), HttpStatusCode.NotFound);
        await ProblemAsync(await fixture.Client(token).PostAsJsonAsync($"/api/users/{reader}/blocks", new { reason = "Myself", holds = true }, Ct), HttpStatusCode.Forbidden);
        Assert.Equal(before, await fixture.InLendingAsync(db => db.Blocks.CountAsync(Ct)));
    }

    /// <summary>A fine of the lost fee for a new reader (their copy declared lost before its due date).</summary>
    private async Task<Guid> LostFineAsync(string title)
    {
        var (reader, token) = await fixture.ReaderAsync();
        var loan = await BorrowAsync(await fixture.TitleAsync(1, title), token, days: 14);
        Assert.Equal(HttpStatusCode.OK, (await fixture.Librarian().PatchAsJsonAsync($"/api/copies/{loan.GetProperty("copyId").GetGuid()}", new { status = "lost" }, Ct)).StatusCode);
        return (await fixture.Librarian().GetFromJsonAsync<JsonElement>($"/api/fines?userId={reader}", Ct)).GetProperty("items")[0].GetProperty("id").GetGuid();
    }

    [Fact]
    public async Task Desks_paying_one_fine_at_once_never_take_more_than_it_owes_and_a_repeated_key_pays_once()
    {
        await RulesAsync();
        var fineId = await LostFineAsync("Paid At Two Desks");
        var answers = await Task.WhenAll(Enumerable.Range(0, 4).Select(async _ =>
        {
            using var response = await fixture.Librarian().PostAsJsonAsync($"/api/fines/{fineId}/payments", new { amount = LostFee }, Ct);
            return response.StatusCode;
        }));
        Assert.Equal(1, answers.Count(s => s == HttpStatusCode.OK));
        Assert.All(answers.Where(s => s != HttpStatusCode.OK), s => Assert.Equal(HttpStatusCode.BadRequest, s));
        Assert.Equal(1, await fixture.InLendingAsync(db => db.FineTransactions.CountAsync(t => t.FineId == fineId, Ct)));
        var row = await fixture.InLendingAsync(db => db.Fines.SingleAsync(f => f.Id == fineId, Ct));
        Assert.Equal((LostFee, "paid"), (row.PaidAmount, row.Status));

        // A retried payment with its Idempotency-Key is answered again, not taken again.
        var keyed = await LostFineAsync("Paid Twice By Retry");
        var key = Guid.NewGuid().ToString("N");
        var bodies = new List<JsonElement>();
        for (var i = 0; i < 2; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/fines/{keyed}/payments") { Content = JsonContent.Create(new { amount = 100 }) };
            request.Headers.Add("Idempotency-Key", key);
            using var response = await fixture.Librarian().SendAsync(request, Ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            bodies.Add(await response.Content.ReadFromJsonAsync<JsonElement>(Ct));
        }
        Assert.True(JsonElement.DeepEquals(bodies[0], bodies[1]), $"{bodies[0]} then {bodies[1]}"); // the stored answer (jsonb orders its keys)
        Assert.Equal(100, await fixture.InLendingAsync(db => db.Fines.Where(f => f.Id == keyed).Select(f => f.PaidAmount).SingleAsync(Ct)));
        Assert.Equal(1, await fixture.InLendingAsync(db => db.FineTransactions.CountAsync(t => t.FineId == keyed, Ct)));
    }

    [Fact]
    public async Task Members_see_only_their_own_fines_and_account()
    {
        await RulesAsync();
        var (owner, ownerToken) = await fixture.ReaderAsync();
        var (stranger, strangerToken) = await fixture.ReaderAsync();
        var loan = await BorrowAsync(await fixture.TitleAsync(1, "Someone Else's Debt"), ownerToken, days: 14);
        Assert.Equal(HttpStatusCode.OK, (await fixture.Librarian().PatchAsJsonAsync($"/api/copies/{loan.GetProperty("copyId").GetGuid()}", new { status = "lost" }, Ct)).StatusCode);

        var strangers = fixture.Client(strangerToken);
        await ProblemAsync(await strangers.GetAsync($"/api/fines?userId={owner}", Ct), HttpStatusCode.Forbidden);
        Assert.Equal(0, (await strangers.GetFromJsonAsync<JsonElement>("/api/fines", Ct)).GetProperty("totalCount").GetInt64());
        await ProblemAsync(await strangers.GetAsync($"/api/users/{owner}/account", Ct), HttpStatusCode.Forbidden);
        Assert.Equal(0, (await AccountAsync(stranger, strangerToken)).GetProperty("balance").GetInt64());
        Assert.Equal(1, (await fixture.Client(ownerToken).GetFromJsonAsync<JsonElement>($"/api/fines?userId={owner}", Ct)).GetProperty("totalCount").GetInt64());
        Assert.Equal(LostFee, (await AccountAsync(owner, ownerToken)).GetProperty("balance").GetInt64());

        await ProblemAsync(await strangers.GetAsync("/api/fines?status=unpaid", Ct), HttpStatusCode.BadRequest);
        await ProblemAsync(await strangers.GetAsync("/api/fines?page=0", Ct), HttpStatusCode.BadRequest);
        Assert.Equal(HttpStatusCode.Unauthorized, (await fixture.Client().GetAsync("/api/fines", Ct)).StatusCode);
        await ProblemAsync(await fixture.Librarian().GetAsync($"/api/users/{Guid.CreateVersion7()}/account", Ct), HttpStatusCode.NotFound);
        await ProblemAsync(await strangers.PostAsJsonAsync($"/api/fines/{Guid.CreateVersion7()}/waive", new { reason = "mine now" }, Ct), HttpStatusCode.Forbidden);
    }
}
