extern alias BookService;
extern alias UserService;

using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Library.Contracts.Events;
using Library.Gateway.Routing;
using Library.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using BookServiceProgram = BookService::Program;
using UserServiceProgram = UserService::Program;

namespace Library.Gateway.Tests;

/// <summary>A catalog service and a gateway sharing one cache prefix; the gateway reaches Redis through a proxy that can be cut.</summary>
public sealed class OutputCacheFixture : IAsyncLifetime
{
    public RealUserService<UserServiceProgram> Users { get; private set; } = null!;
    public TestDatabase BookDb { get; private set; } = null!;
    public ServiceHost<BookServiceProgram> Catalog { get; private set; } = null!;
    public ServiceHost<Program> Gateway { get; private set; } = null!;
    public TcpProxy GatewayRedis { get; private set; } = null!;
    public string LibrarianToken { get; private set; } = null!;
    public string MemberToken { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Users = await RealUserService<UserServiceProgram>.StartAsync();
        BookDb = await TestDatabase.CreateAsync("bookdb");
        var cachePrefix = $"test-{Guid.NewGuid():N}:";
        Catalog = new ServiceHost<BookServiceProgram>(new Dictionary<string, string?>
        {
            ["ConnectionStrings:bookdb"] = BookDb.ConnectionString,
            ["Auth:MetadataAddress"] = Users.MetadataAddress,
            ["Cache:KeyPrefix"] = cachePrefix,
        }).OnPort(Ports.FreePort());
        Catalog.StartServer();

        GatewayRedis = TcpProxy.ToTestRedis(out var redis);
        Gateway = new ServiceHost<Program>(new Dictionary<string, string?>
        {
            ["services:userservice:http:0"] = Users.Host.Address.ToString().TrimEnd('/'),
            ["services:bookservice:http:0"] = Catalog.Address.ToString().TrimEnd('/'),
            ["Auth:MetadataAddress"] = Users.MetadataAddress,
            ["ConnectionStrings:cache"] = redis,
            ["Cache:KeyPrefix"] = cachePrefix,
            ["RateLimiting:AnonymousPerMinute"] = "100000",
        }).OnPort(Ports.FreePort());
        Gateway.StartServer();
        await GatewayRedisConnectedAsync();
        LibrarianToken = (await Users.NewUserAsync("librarian")).Token;
        MemberToken = (await Users.NewUserAsync("member")).Token;
    }

    /// <summary>
    /// The gateway caches only while its Redis connection is up (fail-soft). A test that reads
    /// through the cache waits for it first: at the start, and after the test that cuts Redis
    /// (the reconnection comes a few seconds later, and test order is random).
    /// </summary>
    public async Task GatewayRedisConnectedAsync()
    {
        var multiplexer = Gateway.Services.GetRequiredService<StackExchange.Redis.IConnectionMultiplexer>();
        var store = Gateway.Services.GetRequiredService<Routing.CatalogAnswerStore>();
        await Eventually.WaitUntilAsync(() => Task.FromResult(multiplexer.IsConnected && store.IsLive),
            "the gateway (re)connected to Redis and its invalidation channel", seconds: 60);
    }

    public HttpClient Client(string? token = null)
    {
        var client = new HttpClient { BaseAddress = Gateway.Address };
        if (token is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        await Gateway.DisposeAsync();
        await GatewayRedis.DisposeAsync();
        await Catalog.DisposeAsync();
        await BookDb.DisposeAsync();
        await Users.DisposeAsync();
    }
}

public sealed class OutputCacheTests(OutputCacheFixture fixture) : IClassFixture<OutputCacheFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<(Guid Id, string Isbn)> NewBookAsync(string title, int copies)
    {
        using var librarian = fixture.Client(fixture.LibrarianToken);
        var isbn = TestIsbn.Next();
        using var created = await librarian.PostAsJsonAsync("/api/books", new { isbn, title, publisher = "Ace", language = "en", authorIds = Array.Empty<Guid>(), categoryIds = Array.Empty<Guid>(), totalCopies = copies }, Ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        return ((await created.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetGuid(), isbn);
    }

    /// <summary>Reads through the gateway; true when the answer came from the gateway's cache (it carries <c>Age</c>).</summary>
    private static async Task<(JsonElement Body, bool FromCache, string RequestId)> ReadAsync(HttpClient client, string path)
    {
        using var response = await client.GetAsync(path, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>(Ct), response.Headers.Age is not null,
            response.Headers.GetValues("X-Request-Id").Single());
    }

    [Fact]
    public async Task An_anonymous_read_is_answered_at_the_door_until_the_catalog_commits_a_change()
    {
        await fixture.GatewayRedisConnectedAsync();
        var (id, isbn) = await NewBookAsync("Door Cached Title", copies: 3);
        using var anonymous = fixture.Client();

        var first = await ReadAsync(anonymous, $"/api/books/{id}");
        Assert.False(first.FromCache);
        var second = await ReadAsync(anonymous, $"/api/books/{id}");
        Assert.True(second.FromCache);
        Assert.Equal(3, second.Body.GetProperty("availableCopies").GetInt32());
        Assert.NotEqual(first.RequestId, second.RequestId); // a cached answer is not a replay of another request's headers

        // A librarian's change is on the very next anonymous read, on any gateway replica.
        using var librarian = fixture.Client(fixture.LibrarianToken);
        using (var stock = await librarian.PutAsJsonAsync($"/api/books/{id}/stock", new { totalCopies = 5 }, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, stock.StatusCode);
        }
        var afterStock = await ReadAsync(anonymous, $"/api/books/{id}");
        Assert.False(afterStock.FromCache);
        Assert.Equal(5, afterStock.Body.GetProperty("availableCopies").GetInt32());

        // Search pages too.
        Assert.Equal("Door Cached Title", (await ReadAsync(anonymous, "/api/books?search=door+cached")).Body.GetProperty("items")[0].GetProperty("title").GetString());
        Assert.True((await ReadAsync(anonymous, "/api/books?search=door+cached")).FromCache);
        using (var rename = await librarian.PutAsJsonAsync($"/api/books/{id}", new { isbn, title = "Door Cached Title Renamed", publisher = "Ace" }, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, rename.StatusCode);
        }
        Assert.Equal("Door Cached Title Renamed", (await ReadAsync(anonymous, "/api/books?search=door+cached")).Body.GetProperty("items")[0].GetProperty("title").GetString());

        // Lending's event: once the catalog has applied it, no read shows the old availability.
        await ReadAsync(anonymous, $"/api/books/{id}");
        Assert.True((await ReadAsync(anonymous, $"/api/books/{id}")).FromCache);
        var changed = new BookAvailabilityChanged(id, 5, 2, DateTimeOffset.UtcNow.AddDays(14), 1);
        await Broker.PublishAsync(fixture.Catalog.Exchange, "book.availability-changed", changed, changed.Id);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await ReadAsync(anonymous, $"/api/books/{id}")).Body.GetProperty("availableCopies").GetInt32() != 2)
        {
            Assert.True(DateTime.UtcNow < deadline, "the availability change never reached the gateway's readers");
            await Task.Delay(50, Ct);
        }
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(2, (await ReadAsync(anonymous, $"/api/books/{id}")).Body.GetProperty("availableCopies").GetInt32());
        }
        Assert.True((await ReadAsync(anonymous, $"/api/books/{id}")).FromCache);
    }

    /// <summary>
    /// A hit is answered before routing and the pipeline's middlewares (CatalogAnswers): it must
    /// still count against the anonymous budget and carry every header a forwarded answer has.
    /// </summary>
    [Fact]
    public async Task A_hit_counts_against_the_anonymous_budget_and_has_the_headers_of_a_forwarded_answer()
    {
        await fixture.GatewayRedisConnectedAsync();
        var (id, _) = await NewBookAsync("Door Counted Hit", copies: 1);
        using var anonymous = fixture.Client();
        using var forwarded = await anonymous.GetAsync($"/api/books/{id}", Ct);
        Assert.Null(forwarded.Headers.Age);
        using var hit = await anonymous.GetAsync($"/api/books/{id}", Ct);
        using var next = await anonymous.GetAsync($"/api/books/{id}", Ct);
        Assert.NotNull(hit.Headers.Age);
        Assert.NotNull(next.Headers.Age);

        static string[] Names(HttpResponseMessage r) =>
            [.. r.Headers.Concat(r.Content.Headers).Select(h => h.Key.ToLowerInvariant()).Where(n => n is not ("age" or "date" or "server" or "content-length" or "transfer-encoding")).Order()];
        Assert.Equal(Names(forwarded), Names(hit));
        foreach (var header in new[] { "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "Content-Security-Policy", "ETag" })
        {
            Assert.Equal(forwarded.Headers.GetValues(header), hit.Headers.GetValues(header));
        }
        Assert.Equal(forwarded.Content.Headers.ContentType, hit.Content.Headers.ContentType);
        Assert.Equal(await forwarded.Content.ReadAsStringAsync(Ct), await hit.Content.ReadAsStringAsync(Ct));

        // The same policy, and one permit less on each answer: hits are counted like any request.
        Assert.Equal(forwarded.Headers.GetValues(RateLimitHeaders.PolicyHeader), hit.Headers.GetValues(RateLimitHeaders.PolicyHeader));
        static int Left(HttpResponseMessage r) =>
            int.Parse(System.Text.RegularExpressions.Regex.Match(r.Headers.GetValues(RateLimitHeaders.Header).Single(), "r=([0-9]+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(Left(forwarded) - 1, Left(hit));
        Assert.Equal(Left(hit) - 1, Left(next));

        // The client's request ID is kept on a hit, as on a forwarded answer.
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/books/{id}");
        request.Headers.Add("X-Request-Id", "door-hit-1");
        using var tagged = await anonymous.SendAsync(request, Ct);
        Assert.NotNull(tagged.Headers.Age);
        Assert.Equal("door-hit-1", tagged.Headers.GetValues("X-Request-Id").Single());
    }

    [Fact]
    public async Task Many_readers_of_an_answer_not_yet_kept_all_get_it()
    {
        await fixture.GatewayRedisConnectedAsync();
        var (id, _) = await NewBookAsync("Door Many Readers", copies: 4);
        using var anonymous = fixture.Client();
        var reads = await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => ReadAsync(anonymous, $"/api/books/{id}")));
        Assert.All(reads, r => Assert.Equal(4, r.Body.GetProperty("availableCopies").GetInt32()));
        Assert.True((await ReadAsync(anonymous, $"/api/books/{id}")).FromCache);
    }

    [Theory]
    [InlineData("/api/authors")]
    [InlineData("/api/categories")]
    public async Task A_new_author_or_category_is_in_the_next_anonymous_list_and_its_count(string path)
    {
        await fixture.GatewayRedisConnectedAsync();
        using var anonymous = fixture.Client();
        await ReadAsync(anonymous, path + "?pageSize=1");
        var cached = await ReadAsync(anonymous, path + "?pageSize=1");
        Assert.True(cached.FromCache);
        var before = cached.Body.GetProperty("totalCount").GetInt32();

        using var librarian = fixture.Client(fixture.LibrarianToken);
        using (var created = await librarian.PostAsJsonAsync(path, new { name = $"Door {Guid.NewGuid():N}" }, Ct))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        // Found by reading the code (issue 15): creating one did not bump the catalog's version,
        // so the gateway answered the old totalCount for up to its cache lifetime.
        var after = await ReadAsync(anonymous, path + "?pageSize=1");
        Assert.False(after.FromCache);
        Assert.Equal(before + 1, after.Body.GetProperty("totalCount").GetInt32());
    }

    [Fact]
    public async Task Signed_in_reads_and_failures_are_never_answered_from_the_cache()
    {
        var (id, _) = await NewBookAsync("Door Private Read", copies: 1);
        using var member = fixture.Client(fixture.MemberToken);
        Assert.False((await ReadAsync(member, $"/api/books/{id}")).FromCache);
        Assert.False((await ReadAsync(member, $"/api/books/{id}")).FromCache);

        using var anonymous = fixture.Client();
        var missing = $"/api/books/{Guid.NewGuid()}";
        using (var first = await anonymous.GetAsync(missing, Ct))
        {
            Assert.Equal(HttpStatusCode.NotFound, first.StatusCode);
        }
        using var second = await anonymous.GetAsync(missing, Ct);
        Assert.Equal(HttpStatusCode.NotFound, second.StatusCode);
        Assert.Null(second.Headers.Age);
    }

    [Fact]
    public async Task With_Redis_gone_anonymous_reads_are_forwarded_and_still_answer()
    {
        var (id, _) = await NewBookAsync("Door Without Redis", copies: 2);
        using var anonymous = fixture.Client();
        await ReadAsync(anonymous, $"/api/books/{id}");
        Assert.True((await ReadAsync(anonymous, $"/api/books/{id}")).FromCache);

        fixture.GatewayRedis.Cut();
        try
        {
            // The replica stops answering from its memory as soon as it notices the channel is gone.
            var store = fixture.Gateway.Services.GetRequiredService<Routing.CatalogAnswerStore>();
            await Eventually.WaitUntilAsync(() => Task.FromResult(!store.IsLive), "the gateway noticed Redis was gone");
            for (var i = 0; i < 10; i++)
            {
                var read = await ReadAsync(anonymous, $"/api/books/{id}");
                Assert.False(read.FromCache);
                Assert.Equal(2, read.Body.GetProperty("availableCopies").GetInt32());
            }
        }
        finally
        {
            fixture.GatewayRedis.Restore();
        }
    }
}
