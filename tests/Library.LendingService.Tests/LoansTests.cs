extern alias BookService;

using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Library.LendingService.Tests;

public sealed class LoansTests(LendingFixture fixture) : IClassFixture<LendingFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_member_borrows_for_N_days_a_book_created_a_moment_ago_in_the_catalog()
    {
        var (readerId, token) = await fixture.ReaderAsync();
        var book = await fixture.TitleAsync(2, "Fresh From The Catalog");

        // No waiting for events: a title or reader not in the replicas yet is fetched over gRPC.
        using var response = await fixture.BorrowAsync(book, days: 10, token: token);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var loan = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(book, loan.GetProperty("bookId").GetGuid());
        Assert.Equal(readerId, loan.GetProperty("userId").GetGuid());
        Assert.Equal("Fresh From The Catalog", loan.GetProperty("title").GetString());
        Assert.Equal("active", loan.GetProperty("status").GetString());
        Assert.Equal(0, loan.GetProperty("renewals").GetInt32());
        // Due at the end of the library's day (UTC, every day open, by default) ten days on.
        var borrowedAt = loan.GetProperty("borrowedAt").GetDateTimeOffset();
        Assert.Equal(new DateTimeOffset(borrowedAt.UtcDateTime.Date.AddDays(10).AddDays(1).AddSeconds(-1), TimeSpan.Zero), loan.GetProperty("dueAt").GetDateTimeOffset());
        Assert.NotNull(loan.GetProperty("copyId").GetString());
        Assert.StartsWith("LIB", loan.GetProperty("barcode").GetString(), StringComparison.Ordinal);
        Assert.Equal($"/api/loans/{loan.GetProperty("id").GetGuid()}", response.Headers.Location?.OriginalString);
    }

    [Fact]
    public async Task A_title_whose_event_never_arrived_is_fetched_once_over_gRPC_and_kept()
    {
        // Written straight into the catalog's database: no book.created event will ever come.
        var bookId = Guid.CreateVersion7();
        await using (var scope = fixture.Catalog.Services.CreateAsyncScope())
        {
            var catalog = scope.ServiceProvider.GetRequiredService<BookService::Library.BookService.Data.CatalogDbContext>();
            catalog.Books.Add(new BookService::Library.BookService.Data.Book
            {
                Id = bookId, Isbn = Library.TestSupport.TestIsbn.Next(), Title = "Silent Title", Publisher = "Quiet Press",
                TotalCopies = 2, AvailableCopies = 2, CreatedAt = DateTimeOffset.UtcNow, UpdatedAt = DateTimeOffset.UtcNow,
            });
            await catalog.SaveChangesAsync(Ct);
        }
        Assert.False(await fixture.InLendingAsync(db => db.Titles.AnyAsync(t => t.Id == bookId, Ct)));
        var (_, token) = await fixture.ReaderAsync();

        using var response = await fixture.BorrowAsync(bookId, token: token);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal("Silent Title", (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("title").GetString());
        var title = await fixture.CopyCountsAsync(bookId);
        Assert.Equal((2, 1), (title.Total, title.OnLoan));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(31)]
    [InlineData(-5)]
    public async Task Days_outside_1_to_30_are_a_400_and_lend_nothing(int days)
    {
        var (_, token) = await fixture.ReaderAsync();
        var book = await fixture.TitleAsync(1);
        using var response = await fixture.BorrowAsync(book, days: days, token: token);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(0, await fixture.InLendingAsync(db => db.Loans.CountAsync(l => l.BookId == book, Ct)));
    }

    [Fact]
    public async Task Unknown_books_are_404_and_members_cannot_borrow_for_others()
    {
        var (_, token) = await fixture.ReaderAsync();
        var (otherId, _) = await fixture.ReaderAsync();
        using var unknown = await fixture.BorrowAsync(Guid.CreateVersion7(), token: token);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);

        var book = await fixture.TitleAsync(1);
        using var forOther = await fixture.BorrowAsync(book, userId: otherId, token: token);
        Assert.Equal(HttpStatusCode.Forbidden, forOther.StatusCode);
        using var byLibrarian = await fixture.BorrowAsync(book, userId: otherId);
        Assert.Equal(HttpStatusCode.Created, byLibrarian.StatusCode);
        using var anonymous = await fixture.Client().PostAsJsonAsync("/api/loans", new { bookId = book, days = 3 }, Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
    }

    [Fact]
    public async Task No_copy_left_is_a_409()
    {
        var book = await fixture.TitleAsync(1);
        var (_, first) = await fixture.ReaderAsync();
        var (_, second) = await fixture.ReaderAsync();
        var firstBorrow = await fixture.BorrowAsync(book, token: first);
        Assert.True(firstBorrow.StatusCode == HttpStatusCode.Created, await firstBorrow.Content.ReadAsStringAsync(Ct));
        using var refused = await fixture.BorrowAsync(book, token: second);
        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task A_reader_at_the_loan_limit_or_with_an_overdue_loan_or_deactivated_is_refused_with_403()
    {
        var (readerId, token) = await fixture.ReaderAsync();
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.Created, (await fixture.BorrowAsync(await fixture.TitleAsync(1), token: token)).StatusCode);
        }
        Assert.Equal(HttpStatusCode.Forbidden, (await fixture.BorrowAsync(await fixture.TitleAsync(1), token: token)).StatusCode);

        var (lateId, lateToken) = await fixture.ReaderAsync();
        var loan = await (await fixture.BorrowAsync(await fixture.TitleAsync(1), token: lateToken, days: 1)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        await fixture.InLendingAsync(db => db.Loans.Where(l => l.Id == loan.GetProperty("id").GetGuid())
            .ExecuteUpdateAsync(s => s.SetProperty(l => l.DueAt, DateTimeOffset.UtcNow.AddDays(-2)), Ct));
        Assert.Equal(HttpStatusCode.Forbidden, (await fixture.BorrowAsync(await fixture.TitleAsync(1), token: lateToken)).StatusCode);

        var (goneId, goneToken) = await fixture.ReaderAsync();
        await fixture.BorrowAsync(await fixture.TitleAsync(1), token: goneToken); // reader replica now exists
        using var admin = new HttpClient { BaseAddress = fixture.Users.Host.Address };
        admin.DefaultRequestHeaders.Authorization = new("Bearer", await fixture.Users.AdminTokenAsync());
        (await admin.PostAsync($"/api/users/{goneId}/deactivate", null, Ct)).EnsureSuccessStatusCode();
        // The deactivation reaches lending as an event; the still-valid token then borrows nothing.
        await LendingFixture.WaitUntilAsync(async () => !await fixture.InLendingAsync(db => db.Readers.Where(r => r.Id == goneId).Select(r => r.Active).SingleAsync(Ct)), "deactivation event");
        Assert.Equal(HttpStatusCode.Forbidden, (await fixture.BorrowAsync(await fixture.TitleAsync(1), token: goneToken)).StatusCode);
    }

    [Fact]
    public async Task Return_and_renew_belong_to_the_borrower_or_a_librarian()
    {
        var (_, owner) = await fixture.ReaderAsync();
        var (_, stranger) = await fixture.ReaderAsync();
        var book = await fixture.TitleAsync(1);
        var loan = await (await fixture.BorrowAsync(book, token: owner, days: 7)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        var id = loan.GetProperty("id").GetGuid();

        Assert.Equal(HttpStatusCode.Forbidden, (await fixture.Client(stranger).GetAsync($"/api/loans/{id}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await fixture.Client(stranger).PostAsync($"/api/loans/{id}/renew", null, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await fixture.Client(stranger).PostAsync($"/api/loans/{id}/return", null, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await fixture.Client(stranger).GetAsync($"/api/loans?userId={loan.GetProperty("userId").GetGuid()}", Ct)).StatusCode);
        var strangersList = await fixture.Client(stranger).GetFromJsonAsync<JsonElement>("/api/loans", Ct);
        Assert.DoesNotContain(strangersList.GetProperty("items").EnumerateArray(), l => l.GetProperty("id").GetGuid() == id);

        using var renewed = await fixture.Client(owner).PostAsync($"/api/loans/{id}/renew", null, Ct);
        Assert.Equal(HttpStatusCode.OK, renewed.StatusCode);
        var after = await renewed.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(1, after.GetProperty("renewals").GetInt32());
        // The catch-all rule renews for 14 days from the due date, to the end of that day.
        Assert.Equal(loan.GetProperty("dueAt").GetDateTimeOffset().AddDays(14), after.GetProperty("dueAt").GetDateTimeOffset());
        Assert.Equal(HttpStatusCode.OK, (await fixture.Librarian().PostAsync($"/api/loans/{id}/renew", null, Ct)).StatusCode);
        using var third = await fixture.Client(owner).PostAsync($"/api/loans/{id}/renew", null, Ct);
        Assert.Equal(HttpStatusCode.Conflict, third.StatusCode); // at the renewal limit (2)

        Assert.Equal(HttpStatusCode.OK, (await fixture.Client(owner).GetAsync($"/api/loans/{id}", Ct)).StatusCode);
        using var returned = await fixture.Client(owner).PostAsync($"/api/loans/{id}/return", null, Ct);
        Assert.Equal(HttpStatusCode.OK, returned.StatusCode);
        Assert.Equal("returned", (await returned.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("status").GetString());
        Assert.Equal(HttpStatusCode.Conflict, (await fixture.Librarian().PostAsync($"/api/loans/{id}/return", null, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await fixture.Librarian().PostAsync($"/api/loans/{Guid.CreateVersion7()}/return", null, Ct)).StatusCode);
    }

    [Fact]
    public async Task Loans_are_listed_by_status_and_librarians_see_borrowers_and_unavailable_titles()
    {
        var (readerId, token) = await fixture.ReaderAsync();
        var book = await fixture.TitleAsync(1, "Only Copy");
        var late = await fixture.TitleAsync(1, "Late One");
        var loan = await (await fixture.BorrowAsync(book, token: token)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        var lateLoan = await (await fixture.BorrowAsync(late, token: token, days: 1)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        await fixture.InLendingAsync(db => db.Loans.Where(l => l.Id == lateLoan.GetProperty("id").GetGuid())
            .ExecuteUpdateAsync(s => s.SetProperty(l => l.DueAt, fixture.Clock.GetUtcNow().AddHours(-1)), Ct));

        var overdue = await fixture.Client(token).GetFromJsonAsync<JsonElement>("/api/loans?status=overdue", Ct);
        Assert.Equal(["Late One"], overdue.GetProperty("items").EnumerateArray().Select(l => l.GetProperty("title").GetString()));
        var active = await fixture.Client(token).GetFromJsonAsync<JsonElement>("/api/loans?status=active", Ct);
        Assert.Equal(["Only Copy"], active.GetProperty("items").EnumerateArray().Select(l => l.GetProperty("title").GetString()));
        Assert.Equal(HttpStatusCode.BadRequest, (await fixture.Client(token).GetAsync("/api/loans?status=lost", Ct)).StatusCode);
        var byBook = await fixture.Librarian().GetFromJsonAsync<JsonElement>($"/api/loans?bookId={book}", Ct);
        Assert.Equal(1, byBook.GetProperty("totalCount").GetInt64());

        Assert.Equal(HttpStatusCode.Forbidden, (await fixture.Client(token).GetAsync("/api/borrowers", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await fixture.Client(token).GetAsync("/api/unavailable-books", Ct)).StatusCode);
        var borrowers = await fixture.Librarian().GetFromJsonAsync<JsonElement>("/api/borrowers?pageSize=100", Ct);
        var me = borrowers.GetProperty("items").EnumerateArray().Single(b => b.GetProperty("userId").GetGuid() == readerId);
        Assert.Equal(2, me.GetProperty("loans").GetArrayLength());
        Assert.False(string.IsNullOrEmpty(me.GetProperty("email").GetString()));

        var unavailable = await fixture.Librarian().GetFromJsonAsync<JsonElement>("/api/unavailable-books?pageSize=100", Ct);
        var only = unavailable.GetProperty("items").EnumerateArray().Single(b => b.GetProperty("bookId").GetGuid() == book);
        Assert.Equal(1, only.GetProperty("onLoan").GetInt32());
        Assert.Equal(loan.GetProperty("dueAt").GetDateTimeOffset(), only.GetProperty("nextAvailableAt").GetDateTimeOffset());
    }

    [Fact]
    public async Task The_same_Idempotency_Key_answers_the_first_answer_even_under_concurrent_retries()
    {
        var (_, token) = await fixture.ReaderAsync();
        var book = await fixture.TitleAsync(3);
        var key = Guid.NewGuid().ToString();

        var responses = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => fixture.BorrowAsync(book, token: token, idempotencyKey: key)));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.Created, r.StatusCode));
        var ids = await Task.WhenAll(responses.Select(async r => (await r.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetGuid()));
        Assert.Single(ids.Distinct());
        Assert.Equal(1, await fixture.InLendingAsync(db => db.Loans.CountAsync(l => l.BookId == book, Ct)));

        // A new key borrows again; a refusal is remembered too.
        Assert.Equal(HttpStatusCode.Created, (await fixture.BorrowAsync(book, token: token, idempotencyKey: Guid.NewGuid().ToString())).StatusCode);
    }

    [Fact]
    public async Task Return_renew_and_cancelling_a_hold_answer_a_repeated_Idempotency_Key_with_the_first_answer()
    {
        // What the gateway relies on to send a keyed write again to another replica.
        var (_, token) = await fixture.ReaderAsync();
        var book = await fixture.TitleAsync(1);
        var loan = (await (await fixture.BorrowAsync(book, token: token)).Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetGuid();
        async Task<(HttpStatusCode Status, string Body)> SendAsync(HttpMethod method, string path, string key)
        {
            using var request = new HttpRequestMessage(method, path);
            request.Headers.Add("Idempotency-Key", key);
            using var response = await fixture.Client(token).SendAsync(request, Ct);
            return (response.StatusCode, await response.Content.ReadAsStringAsync(Ct));
        }
        static void AssertSameAnswer((HttpStatusCode Status, string Body) first, (HttpStatusCode Status, string Body) again)
        {
            // The same JSON (the stored answer's properties may come back in another order).
            Assert.Equal(first.Status, again.Status);
            Assert.True(first.Body.Length == 0 ? again.Body.Length == 0
                : System.Text.Json.Nodes.JsonNode.DeepEquals(System.Text.Json.Nodes.JsonNode.Parse(first.Body), System.Text.Json.Nodes.JsonNode.Parse(again.Body)),
                $"{first.Body} <> {again.Body}");
        }

        var renewKey = Guid.NewGuid().ToString();
        var renewed = await SendAsync(HttpMethod.Post, $"/api/loans/{loan}/renew", renewKey);
        Assert.Equal(HttpStatusCode.OK, renewed.Status);
        AssertSameAnswer(renewed, await SendAsync(HttpMethod.Post, $"/api/loans/{loan}/renew", renewKey));
        Assert.Equal(1, await fixture.InLendingAsync(db => db.Loans.Where(l => l.Id == loan).Select(l => l.Renewals).SingleAsync(Ct)));

        var returnKey = Guid.NewGuid().ToString();
        var returned = await SendAsync(HttpMethod.Post, $"/api/loans/{loan}/return", returnKey);
        Assert.Equal(HttpStatusCode.OK, returned.Status);
        // The retry answers the first answer (not 409 "already returned").
        AssertSameAnswer(returned, await SendAsync(HttpMethod.Post, $"/api/loans/{loan}/return", returnKey));
        // The same key on another kind of request, or another loan, is refused: 422.
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await SendAsync(HttpMethod.Post, $"/api/loans/{loan}/renew", returnKey)).Status);

        var taken = await fixture.TitleAsync(1);
        Assert.Equal(HttpStatusCode.Created, (await fixture.BorrowAsync(taken)).StatusCode);
        using var placed = await fixture.PlaceHoldAsync(taken, token: token);
        var hold = (await placed.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetGuid();
        var cancelKey = Guid.NewGuid().ToString();
        var cancelled = await SendAsync(HttpMethod.Delete, $"/api/holds/{hold}", cancelKey);
        Assert.True(cancelled.Status is HttpStatusCode.OK or HttpStatusCode.NoContent, $"{cancelled.Status} {cancelled.Body}");
        AssertSameAnswer(cancelled, await SendAsync(HttpMethod.Delete, $"/api/holds/{hold}", cancelKey));
        Assert.Equal(HttpStatusCode.BadRequest, (await SendAsync(HttpMethod.Post, $"/api/loans/{loan}/return", new string('k', 101))).Status);
    }
}
