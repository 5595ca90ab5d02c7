using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Library.LendingService.Data;
using Library.TestSupport;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Tests;

public sealed class RaceAndHoldTests(LendingFixture fixture) : IClassFixture<LendingFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private Task<CopyCounts> TitleRow(Guid id) => fixture.CopyCountsAsync(id);

    [Fact]
    public async Task Borrowing_the_last_copies_at_once_lends_each_copy_once()
    {
        var book = await fixture.TitleAsync(3, "Three Copies");
        var readers = await fixture.ReplicaReadersAsync(200);
        Assert.Equal(HttpStatusCode.Created, (await fixture.BorrowAsync(await fixture.TitleAsync(1), readers[0])).StatusCode); // warm up the path
        var start = new TaskCompletionSource();

        var attempts = readers.Select(async reader =>
        {
            await start.Task;
            using var response = await fixture.BorrowAsync(book, reader);
            return response.StatusCode;
        }).ToList();
        start.SetResult();
        var results = await Task.WhenAll(attempts);

        Assert.Equal(3, results.Count(s => s == HttpStatusCode.Created));
        Assert.Equal(197, results.Count(s => s == HttpStatusCode.Conflict));
        Assert.Equal(3, await fixture.InLendingAsync(db => db.Loans.CountAsync(l => l.BookId == book && l.ReturnedAt == null, Ct)));
        var title = await TitleRow(book);
        Assert.Equal(3, title.OnLoan);
        Assert.Equal((3, 3, 0, 0), (title.Total, title.OnLoan, title.Held, title.OnShelf));
        var lent = await fixture.InLendingAsync(db => db.Loans.Where(l => l.BookId == book && l.ReturnedAt == null).Select(l => l.CopyId).ToListAsync(Ct));
        Assert.Equal(3, lent.Distinct().Count()); // three distinct copies
    }

    /// <summary>
    /// The lock order of a return is the title, then its copy. A borrow (by title or by barcode)
    /// that took a copy and then waited for the title (the loan's foreign key, the availability
    /// version) closed a cycle with such a return whenever its take had kept a lock on the copy
    /// being returned, which FOR UPDATE SKIP LOCKED does for a row lent by another borrow just before
    /// its recheck: PostgreSQL ended it after deadlock_timeout (1 s) and the request was retried.
    /// Deterministic here: while a return holds the title, a borrow must wait holding no copy.
    /// </summary>
    [Theory]
    [InlineData("title")]
    [InlineData("barcode")]
    public async Task A_borrow_waits_for_a_return_holding_the_title_before_it_locks_any_copy(string by)
    {
        var book = await fixture.TitleAsync(2, "Lock Order " + by);
        await LendingFixture.WaitUntilAsync(async () => (await TitleRow(book)).OnShelf == 2, "the title's copies in lending");
        var barcode = await fixture.InLendingAsync(db => db.Copies.Where(c => c.BookId == book).OrderBy(c => c.Barcode).Select(c => c.Barcode).FirstAsync(Ct));
        var (reader, _) = await fixture.ReaderAsync();
        await LendingFixture.WaitUntilAsync(async () => await fixture.InLendingAsync(db => db.Readers.AnyAsync(r => r.Id == reader, Ct)), "the reader in lending");

        // A return of the title in its transaction: the title locked as TakeBackAsync locks it.
        await using var returning = await HeldTransaction.BeginAsync(fixture.LendingDb, "SELECT id FROM titles WHERE id = @id FOR UPDATE", ("id", book));

        using var client = fixture.Librarian();
        var borrow = by == "title"
            ? client.PostAsJsonAsync("/api/loans", new { bookId = book, userId = reader, days = 7 }, Ct)
            : client.PostAsJsonAsync("/api/circulation/check-out", new { barcode, userId = reader, days = 7 }, Ct);
        await returning.WaitUntilSomeoneWaitsAsync("the borrow waits for the return");

        // What the return would lock next: every copy of the title is free, none held by the waiting borrow.
        Assert.Equal(2L, await returning.ExecuteAsync("SELECT count(*) FROM (SELECT id FROM copies WHERE book_id = @id FOR UPDATE SKIP LOCKED) c", ("id", book)));
        await returning.RollbackAsync();

        using var lent = await borrow;
        Assert.Equal(HttpStatusCode.Created, lent.StatusCode);
        var after = await TitleRow(book);
        Assert.Equal((2, 1, 0, 1), (after.Total, after.OnLoan, after.Held, after.OnShelf));
    }

    /// <summary>
    /// A renewal locks the title before its loan, as a return and a declared loss do (title, copy,
    /// loan). It used to update the loan first and the title's availability after it, while a return
    /// of that loan held the title and waited for the loan: a deadlock PostgreSQL ended after 1 s.
    /// Deterministic here: while a return holds the title, the renewal waits holding no lock on its loan.
    /// </summary>
    [Fact]
    public async Task A_renewal_waits_for_a_return_holding_the_title_before_it_locks_its_loan()
    {
        var (token, book, loan) = await LentAsync("Renewal Lock Order");

        await using var returning = await HeldTransaction.BeginAsync(fixture.LendingDb, "SELECT id FROM titles WHERE id = @id FOR UPDATE", ("id", book));

        using var client = fixture.Client(token);
        var renewal = client.PostAsync($"/api/loans/{loan}/renew", null, Ct);
        await returning.WaitUntilSomeoneWaitsAsync("the renewal waits for the return");

        // What the return would lock next: the loan is free, not held by the waiting renewal.
        Assert.Equal(1L, await returning.ExecuteAsync("SELECT count(*) FROM (SELECT id FROM loans WHERE id = @id FOR UPDATE SKIP LOCKED) l", ("id", loan)));
        await returning.RollbackAsync();

        using var renewed = await renewal;
        Assert.Equal(HttpStatusCode.OK, renewed.StatusCode);
        Assert.Equal(1, (await renewed.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("renewals").GetInt32());
    }

    /// <summary>
    /// A renewal takes the title's lock before it looks for readers waiting: a hold placed at that
    /// moment (placing one locks the title FOR UPDATE) is either seen, and the renewal refused, or
    /// placed after the renewal. Looked for before the lock, a hold committed between the look and
    /// the renewal's UPDATE let the loan be renewed past a reader already waiting.
    /// </summary>
    [Fact]
    public async Task A_renewal_sees_a_hold_placed_while_it_waited_for_the_title()
    {
        var (token, book, loan) = await LentAsync("Renewal Sees The Queue");
        var waiter = (await fixture.ReplicaReadersAsync(1))[0];

        // A hold being placed: the title locked as WaitingList.PlaceAsync locks it, the hold written, not committed yet.
        await using var placing = await HeldTransaction.BeginAsync(fixture.LendingDb, """
            SELECT id FROM titles WHERE id = @book FOR UPDATE;
            INSERT INTO holds (id, book_id, user_id, status, placed_at) VALUES (gen_random_uuid(), @book, @waiter, 'waiting', now());
            """, ("book", book), ("waiter", waiter));

        using var client = fixture.Client(token);
        var renewal = client.PostAsync($"/api/loans/{loan}/renew", null, Ct);
        await placing.WaitUntilSomeoneWaitsAsync("the renewal waits for the hold's placement");
        await placing.CommitAsync();

        using var refused = await renewal;
        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        Assert.Contains("waiting", (await refused.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    /// <summary>
    /// A stock change for a title lending has no row for yet (its BookCreated still on the way)
    /// inserts an empty row, locks it, then applies the catalog's version and the copies: the
    /// path that keeps the lock FOR UPDATE ahead of the upsert when the row is missing.
    /// </summary>
    [Fact]
    public async Task A_stock_change_for_a_title_lending_has_not_seen_creates_it_with_its_copies()
    {
        var book = await fixture.TitleAsync(2, "Stock Before Title");
        await LendingFixture.WaitUntilAsync(async () => (await TitleRow(book)).OnShelf == 2, "the title's copies in lending");
        // As if lending had not seen the title: no row, no copies.
        await fixture.LendingDb.ScalarAsync<long>($"WITH c AS (DELETE FROM copies WHERE book_id = '{book}'), t AS (DELETE FROM titles WHERE id = '{book}') SELECT 0");
        Assert.Equal(new CopyCounts(0, 0, 0, 0), await TitleRow(book));

        using var catalog = fixture.Catalog.CreateClient();
        catalog.DefaultRequestHeaders.Authorization = new("Bearer", fixture.LibrarianToken);
        Assert.Equal(HttpStatusCode.OK, (await catalog.PutAsJsonAsync($"/api/books/{book}/stock", new { totalCopies = 3 }, Ct)).StatusCode);
        await LendingFixture.WaitUntilAsync(async () => await TitleRow(book) == new CopyCounts(3, 0, 0, 3), "three copies on the shelf");
        var version = await fixture.InLendingAsync(db => db.Titles.Where(t => t.Id == book).Select(t => t.CatalogVersion).SingleAsync(Ct));
        Assert.True(version > 0, "the catalog's version applied");
    }

    /// <summary>
    /// A stock change from the catalog locks the title FOR UPDATE before its upsert. The upsert alone
    /// takes a lock that a borrow's key share lets through, and Stock.SetAsync's FOR UPDATE after it
    /// then waited for the borrow while the borrow's availability UPDATE waited for the upsert: a
    /// deadlock. Deterministic here: a transaction holds the title's key share as a borrow's first
    /// round trip does; while the handler waits, that transaction's UPDATE of the title must not wait.
    /// </summary>
    [Fact]
    public async Task A_stock_change_waits_for_a_borrow_holding_the_title_without_blocking_its_update()
    {
        var book = await fixture.TitleAsync(2, "Stock Lock Order");
        await LendingFixture.WaitUntilAsync(async () => (await TitleRow(book)).OnShelf == 2, "the title's copies in lending");

        await using var borrowing = await HeldTransaction.BeginAsync(fixture.LendingDb, "SELECT id FROM titles WHERE id = @id FOR KEY SHARE", ("id", book));

        using var catalog = fixture.Catalog.CreateClient();
        catalog.DefaultRequestHeaders.Authorization = new("Bearer", fixture.LibrarianToken);
        Assert.Equal(HttpStatusCode.OK, (await catalog.PutAsJsonAsync($"/api/books/{book}/stock", new { totalCopies = 3 }, Ct)).StatusCode);
        await borrowing.WaitUntilSomeoneWaitsAsync("the stock change waits for the borrow");

        // The borrow's availability UPDATE: it must not wait for the handler (lock_timeout 55P03 if it does).
        Assert.Equal(1L, await borrowing.ExecuteAsync(
            "SET LOCAL lock_timeout = '200ms'; UPDATE titles SET availability_version = availability_version WHERE id = @id RETURNING 1::bigint", ("id", book)));
        await borrowing.CommitAsync();
        await LendingFixture.WaitUntilAsync(async () => await TitleRow(book) == new CopyCounts(3, 0, 0, 3), "three copies on the shelf");
    }

    /// <summary>A one-copy title lent to a new reader: the reader's token, the title's and the loan's IDs.</summary>
    private async Task<(string Token, Guid Book, Guid Loan)> LentAsync(string title)
    {
        var book = await fixture.TitleAsync(1, title);
        await LendingFixture.WaitUntilAsync(async () => (await TitleRow(book)).OnShelf == 1, "the title's copy in lending");
        var (_, token) = await fixture.ReaderAsync();
        using var borrowed = await fixture.BorrowAsync(book, token: token);
        Assert.Equal(HttpStatusCode.Created, borrowed.StatusCode);
        return (token, book, (await borrowed.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetGuid());
    }

    /// <summary>
    /// One reader asking for twelve titles at once gets exactly their loan limit (5): the borrow
    /// locks the reader and counts their loans in one round trip, and the count must be a statement
    /// of its own, read after the lock was granted (a count read with the lock's snapshot would miss
    /// the loans committed while it waited, and lend past the limit).
    /// </summary>
    [Fact]
    public async Task One_reader_borrowing_many_titles_at_once_stops_at_the_loan_limit()
    {
        var (readerId, token) = await fixture.ReaderAsync();
        var titles = new List<Guid>();
        for (var i = 0; i < 12; i++)
        {
            titles.Add(await fixture.TitleAsync(2));
        }
        Assert.Equal(HttpStatusCode.Created, (await fixture.BorrowAsync(titles[0], token: token)).StatusCode); // the reader's replica, the path warm
        var start = new TaskCompletionSource();
        var attempts = titles.Skip(1).Select(async title =>
        {
            await start.Task;
            using var response = await fixture.BorrowAsync(title, token: token);
            return response.StatusCode;
        }).ToList();
        start.SetResult();
        var results = await Task.WhenAll(attempts);

        Assert.Equal(4, results.Count(s => s == HttpStatusCode.Created));
        Assert.Equal(7, results.Count(s => s == HttpStatusCode.Forbidden));
        Assert.Equal(5, await fixture.InLendingAsync(db => db.Loans.CountAsync(l => l.UserId == readerId && l.ReturnedAt == null, Ct)));
    }

    [Fact]
    public async Task A_returned_copy_goes_to_the_first_hold_and_only_that_reader_gets_it()
    {
        var book = await fixture.TitleAsync(1, "Contested");
        var crowd = await fixture.ReplicaReadersAsync(101);
        var loan = await (await fixture.BorrowAsync(book, crowd[0])).Content.ReadFromJsonAsync<JsonElement>(Ct);
        var holders = crowd.Skip(1).Take(50).ToList();
        var others = crowd.Skip(51).ToList();
        foreach (var holder in holders)
        {
            Assert.Equal(HttpStatusCode.Created, (await fixture.PlaceHoldAsync(book, holder)).StatusCode);
        }

        using var returned = await fixture.Librarian().PostAsync($"/api/loans/{loan.GetProperty("id").GetGuid()}/return", null, Ct);
        Assert.Equal(HttpStatusCode.OK, returned.StatusCode);
        var start = new TaskCompletionSource();
        var attempts = holders.Concat(others).Select(async reader =>
        {
            await start.Task;
            using var response = await fixture.BorrowAsync(book, reader);
            return (reader, response.StatusCode);
        }).ToList();
        start.SetResult();
        var results = await Task.WhenAll(attempts);

        var winners = results.Where(r => r.StatusCode == HttpStatusCode.Created).Select(r => r.reader).ToList();
        Assert.Equal([holders[0]], winners);
        Assert.Equal(99, results.Count(r => r.StatusCode == HttpStatusCode.Conflict));
        var title = await TitleRow(book);
        Assert.Equal((1, 1, 0), (title.Total, title.OnLoan, title.Held));
    }

    [Fact]
    public async Task Holds_become_ready_expire_with_the_clock_pass_on_and_can_be_cancelled()
    {
        var book = await fixture.TitleAsync(1, "Queued");
        var (ownerId, ownerToken) = await fixture.ReaderAsync();
        var (firstId, firstToken) = await fixture.ReaderAsync();
        var (secondId, secondToken) = await fixture.ReaderAsync();
        var loan = await (await fixture.BorrowAsync(book, token: ownerToken)).Content.ReadFromJsonAsync<JsonElement>(Ct);

        // A copy on the shelf cannot be held; an empty shelf can.
        var onShelf = await fixture.TitleAsync(1);
        Assert.Equal(HttpStatusCode.Conflict, (await fixture.PlaceHoldAsync(onShelf, token: firstToken)).StatusCode);
        using var first = await fixture.PlaceHoldAsync(book, token: firstToken);
        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        var firstHold = await first.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal("waiting", firstHold.GetProperty("status").GetString());
        Assert.Equal(1, firstHold.GetProperty("position").GetInt32());
        Assert.Equal(HttpStatusCode.Conflict, (await fixture.PlaceHoldAsync(book, token: firstToken)).StatusCode); // already holds it
        var secondHold = await (await fixture.PlaceHoldAsync(book, token: secondToken)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(2, secondHold.GetProperty("position").GetInt32());

        // Others wait: no renewal.
        Assert.Equal(HttpStatusCode.Conflict, (await fixture.Client(ownerToken).PostAsync($"/api/loans/{loan.GetProperty("id").GetGuid()}/renew", null, Ct)).StatusCode);

        // The return makes the first hold ready for 3 days; the second reader cannot take the copy.
        Assert.Equal(HttpStatusCode.OK, (await fixture.Client(ownerToken).PostAsync($"/api/loans/{loan.GetProperty("id").GetGuid()}/return", null, Ct)).StatusCode);
        var mine = await fixture.Client(firstToken).GetFromJsonAsync<JsonElement>("/api/holds", Ct);
        var ready = mine.GetProperty("items").EnumerateArray().Single(h => h.GetProperty("bookId").GetGuid() == book);
        Assert.Equal("ready", ready.GetProperty("status").GetString());
        // Ready until the end of the library's day three days on.
        var pickupDay = fixture.Clock.GetUtcNow().UtcDateTime.Date.AddDays(3);
        Assert.Equal(new DateTimeOffset(pickupDay.AddDays(1).AddSeconds(-1), TimeSpan.Zero), ready.GetProperty("readyUntil").GetDateTimeOffset());
        Assert.Equal(HttpStatusCode.Conflict, (await fixture.BorrowAsync(book, token: secondToken)).StatusCode);

        // After the pickup deadline the first reader has not come: the copy passes to the second.
        fixture.Clock.Advance(ready.GetProperty("readyUntil").GetDateTimeOffset() - fixture.Clock.GetUtcNow() + TimeSpan.FromMinutes(2));
        await LendingFixture.WaitUntilAsync(async () =>
            await fixture.InLendingAsync(db => db.Holds.AnyAsync(h => h.BookId == book && h.UserId == secondId && h.Status == HoldStatus.Ready, Ct)), "hold passed on");
        Assert.Equal(HoldStatus.Expired, await fixture.InLendingAsync(db => db.Holds.Where(h => h.Id == firstHold.GetProperty("id").GetGuid()).Select(h => h.Status).SingleAsync(Ct)));
        Assert.Equal(HttpStatusCode.Conflict, (await fixture.BorrowAsync(book, token: firstToken)).StatusCode);

        // The second reader cancels: nobody waits, the copy goes back on the shelf.
        Assert.Equal(HttpStatusCode.Forbidden, (await fixture.Client(firstToken).DeleteAsync($"/api/holds/{secondHold.GetProperty("id").GetGuid()}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await fixture.Client(secondToken).DeleteAsync($"/api/holds/{secondHold.GetProperty("id").GetGuid()}", Ct)).StatusCode);
        var title = await TitleRow(book);
        Assert.Equal((0, 0), (title.OnLoan, title.Held));
        Assert.Equal(HttpStatusCode.Created, (await fixture.BorrowAsync(book, token: firstToken)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await fixture.Librarian().DeleteAsync($"/api/holds/{Guid.CreateVersion7()}", Ct)).StatusCode);
    }

    [Fact]
    public async Task An_overdue_loan_is_announced_once()
    {
        var (_, token) = await fixture.ReaderAsync();
        var loan = await (await fixture.BorrowAsync(await fixture.TitleAsync(1), token: token, days: 1)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        var id = loan.GetProperty("id").GetGuid();

        fixture.Clock.Advance(loan.GetProperty("dueAt").GetDateTimeOffset() - fixture.Clock.GetUtcNow() + TimeSpan.FromMinutes(2));
        await LendingFixture.WaitUntilAsync(async () =>
            await fixture.InLendingAsync(db => db.Loans.AnyAsync(l => l.Id == id && l.OverdueNotifiedAt != null, Ct)), "overdue noticed");
        fixture.Clock.Advance(TimeSpan.FromMinutes(5)); // more ticks

        var events = await fixture.InLendingAsync(db => db.Set<Library.EventBus.OutboxMessage>().Where(m => m.EventName == "loan.overdue").ToListAsync(Ct));
        Assert.Single(events, m => JsonDocument.Parse(m.Payload).RootElement.GetProperty("loanId").GetGuid() == id);
        Assert.Equal("overdue", (await fixture.Client(token).GetFromJsonAsync<JsonElement>($"/api/loans/{id}", Ct)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task After_a_burst_of_borrows_and_returns_the_catalog_shows_the_lending_truth()
    {
        var book = await fixture.TitleAsync(4, "Busy Title");
        var readers = await fixture.ReplicaReadersAsync(6);
        var loans = new List<Guid>();
        foreach (var reader in readers)
        {
            using var response = await fixture.BorrowAsync(book, reader, days: 5 + loans.Count);
            if (response.StatusCode == HttpStatusCode.Created)
            {
                loans.Add((await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetGuid());
            }
        }
        Assert.Equal(4, loans.Count);
        Assert.Equal(HttpStatusCode.OK, (await fixture.Librarian().PostAsync($"/api/loans/{loans[0]}/return", null, Ct)).StatusCode);
        var expectedNext = await fixture.InLendingAsync(db => db.Loans.Where(l => l.BookId == book && l.ReturnedAt == null).MinAsync(l => l.DueAt, Ct));

        // The catalog learns it through book.availability-changed (poll with a deadline).
        using var catalog = fixture.Catalog.CreateClient();
        await LendingFixture.WaitUntilAsync(async () =>
            (await catalog.GetFromJsonAsync<JsonElement>($"/api/books/{book}", Ct)).GetProperty("availableCopies").GetInt32() == 1, "catalog shows 1 on the shelf");

        foreach (var id in loans.Skip(1))
        {
            await fixture.Librarian().PostAsync($"/api/loans/{id}/return", null, Ct);
        }
        await fixture.BorrowAsync(book, readers[5], days: 3);
        await fixture.BorrowAsync(book, readers[4], days: 4);
        await fixture.BorrowAsync(book, readers[3], days: 5);
        await fixture.BorrowAsync(book, readers[2], days: 6);
        var nextBack = await fixture.InLendingAsync(db => db.Loans.Where(l => l.BookId == book && l.ReturnedAt == null).MinAsync(l => l.DueAt, Ct));
        await LendingFixture.WaitUntilAsync(async () =>
        {
            var b = await catalog.GetFromJsonAsync<JsonElement>($"/api/books/{book}", Ct);
            return b.GetProperty("availableCopies").GetInt32() == 0
                && b.GetProperty("nextAvailableAt").ValueKind != JsonValueKind.Null
                && Math.Abs((b.GetProperty("nextAvailableAt").GetDateTimeOffset() - nextBack).TotalSeconds) < 1;
        }, "catalog shows none on the shelf and the next due date");
        Assert.NotEqual(default, expectedNext);
    }
}
