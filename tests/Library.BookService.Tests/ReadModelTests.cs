using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Grpc.Core;
using Grpc.Net.Client;
using Library.Contracts.Catalog;
using Library.Contracts.Events;
using Library.TestSupport;

namespace Library.BookService.Tests;

/// <summary>What the catalog learns from the lending service's events, its cache, and its gRPC look-ups.</summary>
public sealed class ReadModelTests(CatalogFixture fixture) : IClassFixture<CatalogFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Task WaitUntilAsync(Func<Task<bool>> condition, string what) => Eventually.WaitUntilAsync(condition, what);

    private Task Publish(string name, object e, Guid id) => Broker.PublishAsync(fixture.Host.Exchange, name, e, id);

    private async Task<JsonElement> Book(Guid id) => await fixture.Client().GetFromJsonAsync<JsonElement>($"/api/books/{id}", Ct);

    [Fact]
    public async Task Availability_events_update_the_book_and_the_newest_version_wins_in_any_order()
    {
        var id = (await fixture.BookAsync("Availability", TestIsbn.Next(), [], [], copies: 3)).GetProperty("id").GetGuid();
        Assert.Equal(3, (await Book(id)).GetProperty("availableCopies").GetInt32()); // now cached
        var back = DateTimeOffset.UtcNow.AddDays(14);

        var v2 = new BookAvailabilityChanged(id, 3, 1, back, 2);
        var v1 = new BookAvailabilityChanged(id, 3, 2, back, 1);
        await Publish("book.availability-changed", v2, v2.Id);
        await Publish("book.availability-changed", v1, v1.Id); // late and older: ignored
        await Publish("book.availability-changed", v2, v2.Id); // re-delivered: nothing more

        await WaitUntilAsync(async () => (await Book(id)).GetProperty("availableCopies").GetInt32() == 1, "availability 1");
        var book = await Book(id);
        Assert.Equal(back.ToUnixTimeSeconds(), book.GetProperty("nextAvailableAt").GetDateTimeOffset().ToUnixTimeSeconds());

        // Lowered stock below the copies on loan shows as none on the shelf, never negative.
        var v3 = new BookAvailabilityChanged(id, 1, -1, back, 3);
        await Publish("book.availability-changed", v3, v3.Id);
        await WaitUntilAsync(async () => (await Book(id)).GetProperty("availableCopies").GetInt32() == 0, "availability 0");
        Assert.Equal(HttpStatusCode.Conflict, (await fixture.Librarian().DeleteAsync($"/api/books/{id}", Ct)).StatusCode);
    }

    [Fact]
    public async Task A_write_is_visible_on_the_very_next_read_through_the_cache()
    {
        var book = await fixture.BookAsync("Cached Title", TestIsbn.Next(), [], []);
        var id = book.GetProperty("id").GetGuid();
        var isbn = book.GetProperty("isbn").GetString();
        for (var i = 0; i < 3; i++)
        {
            await Book(id); // cached now
            await fixture.Client().GetFromJsonAsync<JsonElement>("/api/books?search=cached", Ct);
            using var update = await fixture.Librarian().PutAsJsonAsync($"/api/books/{id}", new { isbn, title = $"Cached Title {i}", publisher = "Ace" }, Ct);
            Assert.Equal(HttpStatusCode.OK, update.StatusCode);

            Assert.Equal($"Cached Title {i}", (await Book(id)).GetProperty("title").GetString());
            var page = await fixture.Client().GetFromJsonAsync<JsonElement>("/api/books?search=cached", Ct);
            Assert.Equal($"Cached Title {i}", page.GetProperty("items")[0].GetProperty("title").GetString());
        }
    }

    [Fact]
    public async Task With_Redis_gone_reads_still_answer_from_PostgreSQL_and_writes_still_work()
    {
        var id = (await fixture.BookAsync("Survivor", TestIsbn.Next(), [], [])).GetProperty("id").GetGuid();
        await Book(id);
        fixture.Redis.Cut();
        try
        {
            for (var i = 0; i < 5; i++)
            {
                using var read = await fixture.Client().GetAsync($"/api/books/{id}", Ct);
                Assert.Equal(HttpStatusCode.OK, read.StatusCode);
                using var search = await fixture.Client().GetAsync("/api/books?search=survivor", Ct);
                Assert.Equal(HttpStatusCode.OK, search.StatusCode);
                using var facets = await fixture.Client().GetAsync("/api/books/facets", Ct);
                Assert.Equal(HttpStatusCode.OK, facets.StatusCode);
            }
            using var stock = await fixture.Librarian().PutAsJsonAsync($"/api/books/{id}/stock", new { totalCopies = 7 }, Ct);
            Assert.Equal(HttpStatusCode.OK, stock.StatusCode);
            Assert.Equal(7, (await Book(id)).GetProperty("totalCopies").GetInt32());
            using var health = await fixture.Client().GetAsync("/health", Ct);
            Assert.Equal(HttpStatusCode.OK, health.StatusCode); // degraded, not down
        }
        finally
        {
            fixture.Redis.Restore();
        }
        // Back: nothing cached before the outage is served (the stock changed meanwhile).
        await WaitUntilAsync(async () => (await Book(id)).GetProperty("totalCopies").GetInt32() == 7, "fresh after Redis returns");
    }

    [Fact]
    public async Task Recommendations_follow_co_borrowing_then_author_then_category_and_skip_what_the_reader_borrowed()
    {
        var author = await fixture.AuthorAsync($"Author {Guid.NewGuid():N}");
        var category = await fixture.CategoryAsync($"Shelf {Guid.NewGuid():N}");
        async Task<Guid> NewBook(string title, Guid[] authors, Guid[] categories) =>
            (await fixture.BookAsync(title, TestIsbn.Next(), authors, categories)).GetProperty("id").GetGuid();
        var seed = await NewBook("Seed", [author], [category]);
        var coA = await NewBook("Co-borrowed by two", [], []);
        var coB = await NewBook("Co-borrowed by one", [], []);
        var sameAuthor = await NewBook("Same author", [author], []);
        var sameCategory = await NewBook("Same category", [], [category]);

        // Two readers borrowed the seed and coA, one of them coB too; the member borrowed the seed.
        var (r1, r2) = (Guid.CreateVersion7(), Guid.CreateVersion7());
        var loans = new (Guid Book, Guid Reader)[] { (seed, r1), (coA, r1), (coB, r1), (seed, r2), (coA, r2), (seed, fixture.MemberId) };
        foreach (var (book, reader) in loans)
        {
            var e = new LoanCreated(Guid.CreateVersion7(), book, reader, DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddDays(14));
            await Publish("loan.created", e, e.Id);
        }
        await WaitUntilAsync(async () =>
        {
            var r = await fixture.Client().GetFromJsonAsync<JsonElement>($"/api/books/{seed}/recommendations?limit=4", Ct);
            return r.GetArrayLength() == 4 && r[0].GetProperty("id").GetGuid() == coA && r[1].GetProperty("id").GetGuid() == coB;
        }, "co-borrowing recommendations");

        var forBook = await fixture.Client().GetFromJsonAsync<JsonElement>($"/api/books/{seed}/recommendations?limit=4", Ct);
        Assert.Equal([coA, coB, sameAuthor, sameCategory], forBook.EnumerateArray().Select(b => b.GetProperty("id").GetGuid()));

        var forReader = await fixture.Client(fixture.MemberToken).GetFromJsonAsync<JsonElement>("/api/recommendations?limit=4", Ct);
        var ids = forReader.EnumerateArray().Select(b => b.GetProperty("id").GetGuid()).ToList();
        Assert.Equal([coA, coB, sameAuthor, sameCategory], ids);
        Assert.DoesNotContain(seed, ids);

        Assert.Equal(HttpStatusCode.Unauthorized, (await fixture.Client().GetAsync("/api/recommendations", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await fixture.Client().GetAsync($"/api/books/{seed}/recommendations?limit=0", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await fixture.Client().GetAsync($"/api/books/{Guid.CreateVersion7()}/recommendations", Ct)).StatusCode);
    }

    [Fact]
    public async Task The_gRPC_look_up_answers_service_tokens_only()
    {
        var id = (await fixture.BookAsync("Looked Up", TestIsbn.Next(), [], [], copies: 4)).GetProperty("id").GetGuid();
        using var channel = GrpcChannel.ForAddress(fixture.Host.Server.BaseAddress, new GrpcChannelOptions
        {
            HttpHandler = new global::Grpc.Net.Client.Web.GrpcWebHandler(global::Grpc.Net.Client.Web.GrpcWebMode.GrpcWeb, fixture.Host.Server.CreateHandler()),
        });
        var catalog = new Catalog.CatalogClient(channel);
        var service = new Metadata { { "Authorization", $"Bearer {await fixture.Users.ServiceTokenAsync()}" } };

        var book = await catalog.GetBookAsync(new GetBookRequest { Id = id.ToString() }, service, cancellationToken: Ct);
        Assert.Equal("Looked Up", book.Title);
        Assert.Equal(4, book.TotalCopies);

        var many = await catalog.GetBooksAsync(new GetBooksRequest { Ids = { id.ToString(), Guid.CreateVersion7().ToString() } }, service, cancellationToken: Ct);
        Assert.Single(many.Books);

        var missing = await Assert.ThrowsAsync<RpcException>(() => catalog.GetBookAsync(new GetBookRequest { Id = Guid.CreateVersion7().ToString() }, service, cancellationToken: Ct).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
        var user = await Assert.ThrowsAsync<RpcException>(() => catalog.GetBookAsync(new GetBookRequest { Id = id.ToString() },
            new Metadata { { "Authorization", $"Bearer {fixture.LibrarianToken}" } }, cancellationToken: Ct).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, user.StatusCode);
    }
}
