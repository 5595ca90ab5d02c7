using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Library.LendingService.Copies;
using Library.LendingService.Data;
using Library.LendingService.Rules;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Tests;

/// <summary>The contract's copies and desk rows, against the real servers: who may do what, every status code, the routing of a check-in.</summary>
public sealed class CopiesAndDeskTests(LendingFixture fixture) : IClassFixture<LendingFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<List<JsonElement>> CopiesAsync(Guid book, string? token = null)
    {
        using var client = fixture.Client(token);
        return (await client.GetFromJsonAsync<JsonElement>($"/api/books/{book}/copies", Ct)).EnumerateArray().ToList();
    }

    private async Task<HttpResponseMessage> CheckOutAsync(string barcode, Guid userId, int? days = null) =>
        await fixture.Librarian().PostAsJsonAsync("/api/circulation/check-out", new { barcode, userId, days }, Ct);

    private async Task<HttpResponseMessage> CheckInAsync(string barcode) =>
        await fixture.Librarian().PostAsJsonAsync("/api/circulation/check-in", new { barcode }, Ct);

    private static string NewBarcode() => "T-" + Guid.NewGuid().ToString("N")[..12];

    [Fact]
    public async Task A_titles_copies_are_listed_to_anyone_and_who_has_one_only_to_librarians()
    {
        var book = await fixture.TitleAsync(2, "Listed Copies");
        var (readerId, token) = await fixture.ReaderAsync();
        var copies = await CopiesAsync(book);
        Assert.Equal(2, copies.Count);
        Assert.All(copies, c => Assert.Equal(("available", "standard"), (c.GetProperty("status").GetString(), c.GetProperty("loanType").GetString())));
        Assert.All(copies, c => Assert.StartsWith("LIB", c.GetProperty("barcode").GetString(), StringComparison.Ordinal));

        Assert.Equal(HttpStatusCode.Created, (await fixture.BorrowAsync(book, token: token)).StatusCode);
        var anonymous = (await CopiesAsync(book)).Single(c => c.GetProperty("status").GetString() == "checked-out");
        Assert.Equal(JsonValueKind.Null, anonymous.GetProperty("userId").ValueKind);
        Assert.NotEqual(JsonValueKind.Null, anonymous.GetProperty("dueAt").ValueKind);
        var librarian = (await CopiesAsync(book, fixture.LibrarianToken)).Single(c => c.GetProperty("status").GetString() == "checked-out");
        Assert.Equal(readerId, librarian.GetProperty("userId").GetGuid());
        Assert.Equal(HttpStatusCode.NotFound, (await fixture.Client().GetAsync($"/api/books/{Guid.CreateVersion7()}/copies", Ct)).StatusCode);
    }

    [Fact]
    public async Task Librarians_add_copies_with_unique_barcodes_whatever_the_case()
    {
        var book = await fixture.TitleAsync(1, "Added Copies");
        var (_, member) = await fixture.ReaderAsync();
        var barcode = NewBarcode();
        using var created = await fixture.Librarian().PostAsJsonAsync($"/api/books/{book}/copies", new { barcode, callNumber = "823.914 ADD", location = "Stacks 2", loanType = "short-loan" }, Ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var copy = await created.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal((barcode, "short-loan", "available", "823.914 ADD"), (copy.GetProperty("barcode").GetString(), copy.GetProperty("loanType").GetString(),
            copy.GetProperty("status").GetString(), copy.GetProperty("callNumber").GetString()));

        using var taken = await fixture.Librarian().PostAsJsonAsync($"/api/books/{book}/copies", new { barcode = barcode.ToLowerInvariant() }, Ct);
        Assert.Equal(HttpStatusCode.Conflict, taken.StatusCode);
        foreach (var bad in new object[] { new { barcode = "" }, new { barcode = "has space" }, new { barcode = new string('9', 33) }, new { barcode = NewBarcode(), loanType = "forever" } })
        {
            using var refused = await fixture.Librarian().PostAsJsonAsync($"/api/books/{book}/copies", bad, Ct);
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        }
        Assert.Equal(HttpStatusCode.Forbidden, (await fixture.Client(member).PostAsJsonAsync($"/api/books/{book}/copies", new { barcode = NewBarcode() }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await fixture.Client().PostAsJsonAsync($"/api/books/{book}/copies", new { barcode = NewBarcode() }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await fixture.Librarian().PostAsJsonAsync($"/api/books/{Guid.CreateVersion7()}/copies", new { barcode = NewBarcode() }, Ct)).StatusCode);
        Assert.Equal(2, (await CopiesAsync(book)).Count);

        // The catalog follows: two loanable copies now.
        await LendingFixture.WaitUntilAsync(async () =>
        {
            using var client = fixture.Catalog.CreateClient();
            return (await client.GetFromJsonAsync<JsonElement>($"/api/books/{book}", Ct)).GetProperty("totalCopies").GetInt32() == 2;
        }, "the catalog's totalCopies follows the copies");
    }

    [Fact]
    public async Task The_desk_checks_out_an_exact_copy_and_checks_it_back_in_to_the_shelf()
    {
        var book = await fixture.TitleAsync(2, "At The Desk");
        var (readerId, _) = await fixture.ReaderAsync();
        var barcode = (await CopiesAsync(book))[1].GetProperty("barcode").GetString()!;

        using var lent = await CheckOutAsync(barcode.ToLowerInvariant(), readerId, 5);
        Assert.Equal(HttpStatusCode.Created, lent.StatusCode);
        var loan = await lent.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal((barcode, readerId), (loan.GetProperty("barcode").GetString(), loan.GetProperty("userId").GetGuid()));

        using var again = await CheckOutAsync(barcode, (await fixture.ReaderAsync()).Id);
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        Assert.Contains("checked out", (await again.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("detail").GetString(), StringComparison.Ordinal);

        using var byBarcode = await fixture.Librarian().GetAsync($"/api/copies/by-barcode/{barcode}", Ct);
        var detail = await byBarcode.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(loan.GetProperty("id").GetGuid(), detail.GetProperty("loan").GetProperty("id").GetGuid());

        using var back = await CheckInAsync(barcode);
        Assert.Equal(HttpStatusCode.OK, back.StatusCode);
        var checkIn = await back.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(("shelf", "available", "returned"), (checkIn.GetProperty("routedTo").GetString(), checkIn.GetProperty("copy").GetProperty("status").GetString(),
            checkIn.GetProperty("loan").GetProperty("status").GetString()));

        using var notOut = await CheckInAsync(barcode);
        Assert.Equal(HttpStatusCode.Conflict, notOut.StatusCode);
        Assert.Contains("available", (await notOut.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await CheckInAsync(NewBarcode())).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await CheckOutAsync(NewBarcode(), readerId)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await CheckInAsync("no spaces allowed")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await fixture.Librarian().PostAsJsonAsync("/api/circulation/check-out", new { barcode }, Ct)).StatusCode);
        var (_, member) = await fixture.ReaderAsync();
        Assert.Equal(HttpStatusCode.Forbidden, (await fixture.Client(member).PostAsJsonAsync("/api/circulation/check-in", new { barcode }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await fixture.Client(member).GetAsync($"/api/copies/by-barcode/{barcode}", Ct)).StatusCode);
    }

    [Fact]
    public async Task A_check_in_goes_to_the_first_hold_whose_reader_alone_may_then_take_the_copy()
    {
        var book = await fixture.TitleAsync(1, "Routed To A Hold");
        var (firstId, firstToken) = await fixture.ReaderAsync();
        var (holderId, holderToken) = await fixture.ReaderAsync();
        var (otherId, _) = await fixture.ReaderAsync();
        var barcode = (await CopiesAsync(book))[0].GetProperty("barcode").GetString()!;
        Assert.Equal(HttpStatusCode.Created, (await CheckOutAsync(barcode, firstId)).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await fixture.PlaceHoldAsync(book, token: holderToken)).StatusCode);

        var checkIn = await (await CheckInAsync(barcode)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(("hold-shelf", "awaiting-pickup"), (checkIn.GetProperty("routedTo").GetString(), checkIn.GetProperty("copy").GetProperty("status").GetString()));
        Assert.Equal((holderId, "ready"), (checkIn.GetProperty("hold").GetProperty("userId").GetGuid(), checkIn.GetProperty("hold").GetProperty("status").GetString()));

        using var someoneElse = await CheckOutAsync(barcode, otherId);
        Assert.Equal(HttpStatusCode.Conflict, someoneElse.StatusCode);
        Assert.Contains("another reader", (await someoneElse.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Created, (await CheckOutAsync(barcode, holderId)).StatusCode);
        var hold = await fixture.InLendingAsync(db => db.Holds.SingleAsync(h => h.BookId == book && h.UserId == holderId, Ct));
        Assert.Equal(HoldStatus.Fulfilled, hold.Status);
        _ = firstToken;
    }

    [Fact]
    public async Task Copy_status_changes_follow_the_allowed_transitions()
    {
        var book = await fixture.TitleAsync(2, "Repaired And Withdrawn");
        var (readerId, _) = await fixture.ReaderAsync();
        var copies = await CopiesAsync(book);
        var lentId = copies[0].GetProperty("id").GetGuid();
        var shelfId = copies[1].GetProperty("id").GetGuid();
        Assert.Equal(HttpStatusCode.Created, (await CheckOutAsync(copies[0].GetProperty("barcode").GetString()!, readerId)).StatusCode);

        using var withdrawLent = await fixture.Librarian().PatchAsJsonAsync($"/api/copies/{lentId}", new { status = "withdrawn" }, Ct);
        Assert.Equal(HttpStatusCode.Conflict, withdrawLent.StatusCode);
        using var repair = await fixture.Librarian().PatchAsJsonAsync($"/api/copies/{shelfId}", new { status = "in-repair", location = "Bindery" }, Ct);
        Assert.Equal(HttpStatusCode.OK, repair.StatusCode);
        Assert.Equal(("in-repair", "Bindery"), ((await repair.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("status").GetString(),
            (await CopiesAsync(book)).Single(c => c.GetProperty("id").GetGuid() == shelfId).GetProperty("location").GetString()));
        Assert.Equal(HttpStatusCode.BadRequest, (await fixture.Librarian().PatchAsJsonAsync($"/api/copies/{shelfId}", new { status = "checked-out" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await fixture.Librarian().PatchAsJsonAsync($"/api/copies/{Guid.CreateVersion7()}", new { status = "missing" }, Ct)).StatusCode);
        // Nothing on the shelf now: borrowing by title is refused, a hold may be placed.
        var (_, token) = await fixture.ReaderAsync();
        Assert.Equal(HttpStatusCode.Conflict, (await fixture.BorrowAsync(book, token: token)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await fixture.Librarian().PatchAsJsonAsync($"/api/copies/{shelfId}", new { status = "available" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await fixture.BorrowAsync(book, token: token)).StatusCode);

        // The database refuses a transition the table does not allow, whatever the code does.
        var refused = await Assert.ThrowsAnyAsync<Exception>(() => fixture.InLendingAsync(db =>
            db.Database.ExecuteSqlAsync($"UPDATE copies SET status = 'missing' WHERE id = {lentId}", Ct)));
        Assert.Contains("cannot change from checked-out to missing", refused.ToString(), StringComparison.Ordinal);
    }

    /// <summary>
    /// A title's row keeps its counts of loanable copies and copies on the shelf (a trigger on
    /// copies), which every borrow and return now publish instead of counting the copies. After
    /// each kind of write to copies (the API's, circulation's, the stock's, and raw SQL over several
    /// titles at once, deletes included), the kept counts equal a count of the copies.
    /// </summary>
    [Fact]
    public async Task Every_kind_of_change_to_copies_keeps_the_titles_counts_equal_to_a_count_of_its_copies()
    {
        var book = await fixture.TitleAsync(3, "Counted Copies");
        var other = await fixture.TitleAsync(2, "Counted Copies Too");
        await LendingFixture.WaitUntilAsync(async () => (await fixture.CopyCountsAsync(book)).OnShelf == 3 && (await fixture.CopyCountsAsync(other)).OnShelf == 2,
            "both titles' copies");
        async Task Agree(string after, CopyCounts? expected = null)
        {
            Assert.True((await fixture.TitlesCountedWrongAsync()) is [], $"After {after}: {string.Join("; ", await fixture.TitlesCountedWrongAsync())}");
            if (expected is not null)
            {
                Assert.Equal(expected, await fixture.CopyCountsAsync(book));
            }
        }
        await Agree("the stock's copies", new CopyCounts(3, 0, 0, 3));

        string shortLoan = NewBarcode(), reference = NewBarcode();
        Assert.Equal(HttpStatusCode.Created, (await fixture.Librarian().PostAsJsonAsync($"/api/books/{book}/copies", new { barcode = shortLoan, loanType = "short-loan" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await fixture.Librarian().PostAsJsonAsync($"/api/books/{book}/copies", new { barcode = reference, loanType = "reference" }, Ct)).StatusCode);
        await Agree("copies added, one for reference", new CopyCounts(4, 0, 0, 4));

        var (readerId, token) = await fixture.ReaderAsync();
        using var borrowed = await fixture.BorrowAsync(book, token: token);
        Assert.Equal(HttpStatusCode.Created, borrowed.StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await CheckOutAsync(shortLoan, readerId)).StatusCode);
        await Agree("a borrow and a check-out", new CopyCounts(4, 2, 0, 2));

        var referenceId = (await CopiesAsync(book)).Single(c => c.GetProperty("barcode").GetString() == reference).GetProperty("id").GetGuid();
        Assert.Equal(HttpStatusCode.OK, (await fixture.Librarian().PatchAsJsonAsync($"/api/copies/{referenceId}", new { loanType = "standard" }, Ct)).StatusCode);
        await Agree("a reference copy made loanable", new CopyCounts(5, 2, 0, 3));
        Assert.Equal(HttpStatusCode.OK, (await fixture.Librarian().PatchAsJsonAsync($"/api/copies/{referenceId}", new { status = "missing" }, Ct)).StatusCode);
        await Agree("a copy gone missing", new CopyCounts(5, 2, 0, 2));
        Assert.Equal(HttpStatusCode.OK, (await fixture.Librarian().PatchAsJsonAsync($"/api/copies/{referenceId}", new { status = "lost" }, Ct)).StatusCode);
        await Agree("a copy lost", new CopyCounts(4, 2, 0, 2));

        // The stock lowered below the loans: copies on the shelf withdrawn, one on loan marked for withdrawal.
        using var catalog = fixture.Catalog.CreateClient();
        catalog.DefaultRequestHeaders.Authorization = new("Bearer", fixture.LibrarianToken);
        Assert.Equal(HttpStatusCode.OK, (await catalog.PutAsJsonAsync($"/api/books/{book}/stock", new { totalCopies = 1 }, Ct)).StatusCode);
        await LendingFixture.WaitUntilAsync(async () => (await fixture.CopyCountsAsync(book)).Total == 1, "the lowered stock");
        await Agree("the stock lowered below the loans", new CopyCounts(1, 2, 0, 0));

        // A hold, then a check-in that sets the copy aside for it.
        var (_, waiter) = await fixture.ReaderAsync();
        using (var hold = await fixture.Client(waiter).PostAsJsonAsync("/api/holds", new { bookId = book }, Ct))
        {
            Assert.Equal(HttpStatusCode.Created, hold.StatusCode);
        }
        var lent = (await CopiesAsync(book, fixture.LibrarianToken)).Where(c => c.GetProperty("status").GetString() == "checked-out"
            && !c.GetProperty("withdrawOnCheckIn").GetBoolean()).Select(c => c.GetProperty("barcode").GetString()!).Single();
        Assert.Equal("hold-shelf", (await (await CheckInAsync(lent)).Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("routedTo").GetString());
        await Agree("a check-in to the hold shelf", new CopyCounts(1, 1, 1, 0));

        // The stock raised again: the copy marked for withdrawal keeps its place; checked in, it goes to the shelf.
        Assert.Equal(HttpStatusCode.OK, (await catalog.PutAsJsonAsync($"/api/books/{book}/stock", new { totalCopies = 2 }, Ct)).StatusCode);
        await LendingFixture.WaitUntilAsync(async () => (await fixture.CopyCountsAsync(book)).Total == 2, "the raised stock");
        await Agree("the stock raised over a copy marked for withdrawal", new CopyCounts(2, 1, 1, 0));
        var stillOut = (await CopiesAsync(book, fixture.LibrarianToken)).Where(c => c.GetProperty("status").GetString() == "checked-out")
            .Select(c => c.GetProperty("barcode").GetString()!).Single();
        using (var checkedIn = await CheckInAsync(stillOut))
        {
            var body = await checkedIn.Content.ReadAsStringAsync(Ct);
            Assert.True(checkedIn.StatusCode == HttpStatusCode.OK, body);
            Assert.Equal("shelf", JsonDocument.Parse(body).RootElement.GetProperty("routedTo").GetString());
        }
        await Agree("a check-in to the shelf", new CopyCounts(2, 0, 1, 1));

        // Raw SQL: one statement over both titles' copies, then deletes of both (copies never lent).
        await fixture.InLendingAsync(db => db.Database.ExecuteSqlAsync(
            $"UPDATE copies SET status = 'in-repair' WHERE book_id IN ({book}, {other}) AND status = 'available'", Ct));
        await Agree("one UPDATE over two titles", new CopyCounts(2, 0, 1, 0));
        await fixture.InLendingAsync(db => db.Database.ExecuteSqlAsync(
            $"UPDATE copies SET status = 'available' WHERE book_id IN ({book}, {other}) AND status = 'in-repair'", Ct));
        Assert.Equal(2, (await fixture.CopyCountsAsync(other)).OnShelf);
        await Agree("back on the shelves", new CopyCounts(2, 0, 1, 1));
        await fixture.InLendingAsync(db => db.Database.ExecuteSqlAsync(
            $"DELETE FROM copies c WHERE (c.book_id = {other} OR (c.book_id = {book} AND c.status = 'withdrawn')) AND NOT EXISTS (SELECT 1 FROM loans l WHERE l.copy_id = c.id)", Ct));
        Assert.Equal(new CopyCounts(0, 0, 0, 0), await fixture.CopyCountsAsync(other));
        await Agree("a DELETE over two titles", new CopyCounts(2, 0, 1, 1));
    }

    [Fact]
    public async Task Reference_copies_are_never_lent()
    {
        var book = await fixture.TitleAsync(0, "Reference Only");
        var barcode = NewBarcode();
        Assert.Equal(HttpStatusCode.Created, (await fixture.Librarian().PostAsJsonAsync($"/api/books/{book}/copies", new { barcode, loanType = "reference" }, Ct)).StatusCode);
        var (readerId, token) = await fixture.ReaderAsync();
        using var byTitle = await fixture.BorrowAsync(book, token: token);
        Assert.Equal(HttpStatusCode.Conflict, byTitle.StatusCode);
        Assert.Contains("reference", (await byTitle.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("detail").GetString(), StringComparison.Ordinal);
        using var atDesk = await CheckOutAsync(barcode, readerId);
        Assert.Equal(HttpStatusCode.Conflict, atDesk.StatusCode);
        Assert.Contains("never lent", (await atDesk.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("detail").GetString(), StringComparison.Ordinal);
        var types = await fixture.Client().GetFromJsonAsync<JsonElement>("/api/loan-types", Ct);
        Assert.Contains(types.EnumerateArray(), t => t.GetProperty("name").GetString() == "reference" && !t.GetProperty("loanable").GetBoolean());
    }

    [Fact]
    public async Task Lowering_the_stock_withdraws_from_the_shelf_first_and_a_surplus_copy_on_loan_at_check_in()
    {
        var book = await fixture.TitleAsync(2, "Fewer Copies");
        var (readerId, _) = await fixture.ReaderAsync();
        var copies = await CopiesAsync(book);
        var lent = copies[0].GetProperty("barcode").GetString()!;
        Assert.Equal(HttpStatusCode.Created, (await CheckOutAsync(lent, readerId)).StatusCode);

        using var catalog = fixture.Catalog.CreateClient();
        catalog.DefaultRequestHeaders.Authorization = new("Bearer", fixture.LibrarianToken);
        Assert.Equal(HttpStatusCode.OK, (await catalog.PutAsJsonAsync($"/api/books/{book}/stock", new { totalCopies = 0 }, Ct)).StatusCode);
        await LendingFixture.WaitUntilAsync(async () => (await fixture.CopyCountsAsync(book)).Total == 0, "the stock applied to the copies");
        var after = await CopiesAsync(book);
        Assert.Equal("withdrawn", after.Single(c => c.GetProperty("barcode").GetString() != lent).GetProperty("status").GetString());
        Assert.True(after.Single(c => c.GetProperty("barcode").GetString() == lent).GetProperty("withdrawOnCheckIn").GetBoolean());

        var checkIn = await (await CheckInAsync(lent)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(("withdrawn", "withdrawn"), (checkIn.GetProperty("routedTo").GetString(), checkIn.GetProperty("copy").GetProperty("status").GetString()));

        // Raising it again adds copies with generated barcodes.
        Assert.Equal(HttpStatusCode.OK, (await catalog.PutAsJsonAsync($"/api/books/{book}/stock", new { totalCopies = 3 }, Ct)).StatusCode);
        await LendingFixture.WaitUntilAsync(async () => (await fixture.CopyCountsAsync(book)) == new CopyCounts(3, 0, 0, 3), "three copies on the shelf");
    }

    /// <summary>
    /// A title's kept counts that drifted from its copies (here by raw SQL: as triggers disabled
    /// by hand or a data-only restore would leave them) are set to the count by the next stock
    /// change (Shelf.ReconcileAsync), which also decides its copies from the count, not the row:
    /// afterwards the row, the copies and the catalog agree.
    /// </summary>
    [Fact]
    public async Task A_stock_change_repairs_a_titles_drifted_counts()
    {
        var book = await fixture.TitleAsync(2, "Drifted Counts");
        await LendingFixture.WaitUntilAsync(async () => (await fixture.CopyCountsAsync(book)).OnShelf == 2, "the title's copies in lending");
        await fixture.InLendingAsync(db => db.Database.ExecuteSqlAsync($"UPDATE titles SET loanable_copies = 7, copies_on_shelf = 5 WHERE id = {book}", Ct));

        using var catalog = fixture.Catalog.CreateClient();
        catalog.DefaultRequestHeaders.Authorization = new("Bearer", fixture.LibrarianToken);
        Assert.Equal(HttpStatusCode.OK, (await catalog.PutAsJsonAsync($"/api/books/{book}/stock", new { totalCopies = 3 }, Ct)).StatusCode);
        // Three copies, not 7 - 4: the copies decide how many are added.
        await LendingFixture.WaitUntilAsync(async () => (await CopiesAsync(book)).Count == 3, "a third copy");
        Assert.Equal(new CopyCounts(3, 0, 0, 3), await fixture.CopyCountsAsync(book)); // its row agrees (checked inside)
        await LendingFixture.WaitUntilAsync(async () =>
        {
            var shown = await catalog.GetFromJsonAsync<JsonElement>($"/api/books/{book}", Ct);
            return (shown.GetProperty("totalCopies").GetInt32(), shown.GetProperty("availableCopies").GetInt32()) == (3, 3);
        }, "the catalog shows the repaired counts");
    }

    [Fact]
    public async Task Two_librarians_checking_out_one_barcode_at_once_make_one_loan()
    {
        var book = await fixture.TitleAsync(1, "One Barcode Two Desks");
        var barcode = (await CopiesAsync(book))[0].GetProperty("barcode").GetString()!;
        var readers = await fixture.ReplicaReadersAsync(20);
        var start = new TaskCompletionSource();
        var attempts = readers.Select(async reader =>
        {
            await start.Task;
            using var response = await CheckOutAsync(barcode, reader);
            return response.StatusCode;
        }).ToList();
        start.SetResult();
        var results = await Task.WhenAll(attempts);
        Assert.Equal(1, results.Count(s => s == HttpStatusCode.Created));
        Assert.Equal(19, results.Count(s => s == HttpStatusCode.Conflict));
        Assert.Equal(1, await fixture.InLendingAsync(db => db.Loans.CountAsync(l => l.BookId == book, Ct)));
    }

    [Fact]
    public async Task A_check_in_racing_a_check_out_of_the_same_copy_leaves_a_consistent_copy()
    {
        var book = await fixture.TitleAsync(1, "Racing At The Desk");
        var barcode = (await CopiesAsync(book))[0].GetProperty("barcode").GetString()!;
        var readers = await fixture.ReplicaReadersAsync(10);
        for (var round = 0; round < 10; round++)
        {
            var start = new TaskCompletionSource();
            var checkOut = Task.Run(async () => { await start.Task; using var r = await CheckOutAsync(barcode, readers[round]); return r.StatusCode; }, Ct);
            var checkIn = Task.Run(async () => { await start.Task; using var r = await CheckInAsync(barcode); return r.StatusCode; }, Ct);
            start.SetResult();
            await Task.WhenAll(checkOut, checkIn);
            // Whatever the order, the copy's status and its open loans agree.
            var (status, open) = await fixture.InLendingAsync(async db =>
            {
                var copy = await db.Copies.AsNoTracking().SingleAsync(c => c.BookId == book, Ct);
                return (copy.Status, await db.Loans.CountAsync(l => l.CopyId == copy.Id && l.ReturnedAt == null, Ct));
            });
            Assert.True((status, open) is ("checked-out", 1) or ("available", 0), $"round {round}: copy {status} with {open} open loans");
            if (status == "checked-out")
            {
                Assert.Equal(HttpStatusCode.OK, (await CheckInAsync(barcode)).StatusCode);
            }
        }
    }

    [Fact]
    public async Task A_copy_taken_from_the_shelf_is_not_tracked_so_its_status_statement_is_its_one_write()
    {
        // The borrow changes the taken copy's status by its own UPDATE (WaitingList.SetStatus); a
        // tracked copy was written a second time by the same transaction's SaveChanges.
        var book = await fixture.TitleAsync(1, "Untracked Take");
        await LendingFixture.WaitUntilAsync(async () => (await fixture.CopyCountsAsync(book)).OnShelf == 1, "the title's copy in lending");
        var tracked = await fixture.InLendingAsync(db => db.Database.CreateExecutionStrategy().ExecuteAsync(async () =>
        {
            await using var transaction = await db.Database.BeginTransactionAsync(Ct);
            var copy = await new Shelf(db, Microsoft.Extensions.Logging.Abstractions.NullLogger<Shelf>.Instance).TakeFromShelfAsync(book, [LoanTypes.Standard], Ct);
            Assert.NotNull(copy);
            var entries = db.ChangeTracker.Entries<Copy>().Count();
            await transaction.RollbackAsync(Ct);
            return entries;
        }));
        Assert.Equal(0, tracked);
    }

    [Fact]
    public async Task A_borrow_takes_a_standard_copy_first_then_another_type_the_reader_may_borrow_then_finds_none_left()
    {
        // The two takes and the types on the shelf are one round trip (Shelf.TakeFromShelfOrSayWhyAsync):
        // each branch of it in turn.
        var book = await fixture.TitleAsync(1, "Two Kinds On The Shelf");
        var standard = (await CopiesAsync(book)).Single().GetProperty("barcode").GetString();
        var shortLoan = NewBarcode();
        Assert.Equal(HttpStatusCode.Created, (await fixture.Librarian().PostAsJsonAsync($"/api/books/{book}/copies", new { barcode = shortLoan, loanType = "short-loan" }, Ct)).StatusCode);
        await LendingFixture.WaitUntilAsync(async () => (await fixture.CopyCountsAsync(book)).OnShelf == 2, "both copies in lending");

        var lent = new List<string?>();
        foreach (var _ in Enumerable.Range(0, 2))
        {
            using var borrowed = await fixture.BorrowAsync(book, (await fixture.ReaderAsync()).Id, days: 1);
            Assert.Equal(HttpStatusCode.Created, borrowed.StatusCode);
            lent.Add((await borrowed.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("barcode").GetString());
        }
        Assert.Equal([standard, shortLoan], lent);

        using var none = await fixture.BorrowAsync(book, (await fixture.ReaderAsync()).Id, days: 1);
        Assert.Equal(HttpStatusCode.Conflict, none.StatusCode);
        Assert.Equal("No copy left", (await none.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("title").GetString());
    }
}
