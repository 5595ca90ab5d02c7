using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Library.TestSupport;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Tests;

/// <summary>
/// A lending service that reaches the real catalog through a proxy the test cuts, and that hears
/// no events (an exchange of its own): every title it is asked about is looked up over gRPC. It
/// runs in Development, as under the AppHost, where ASP.NET Core's developer exception page sees
/// an exception before the exception handler does.
/// </summary>
public sealed class UnreachableCatalogFixture : LendingFixture
{
    public TcpProxy CatalogProxy { get; private set; } = null!;

    protected override void ConfigureLending(IDictionary<string, string?> settings)
    {
        CatalogProxy = new TcpProxy("127.0.0.1", Catalog.Address.Port);
        CatalogProxy.Restore();
        settings["services:bookservice:http:0"] = $"http://127.0.0.1:{CatalogProxy.Port}";
        var deaf = $"test-deaf-{Guid.NewGuid():N}"[..22];
        settings["EventBus:Exchange"] = $"{deaf}.library.events";
        settings["EventBus:QueuePrefix"] = $"{deaf}.";
        settings["environment"] = "Development";
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await CatalogProxy.DisposeAsync();
    }
}

public sealed class LookupUnavailableTests(UnreachableCatalogFixture fixture) : IClassFixture<UnreachableCatalogFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_borrow_whose_title_look_up_finds_no_catalog_is_a_503_that_changes_nothing_then_lends_once_it_is_back()
    {
        var book = await fixture.TitleAsync(2, "Out Of Reach");
        var (reader, token) = await fixture.ReaderAsync();

        fixture.CatalogProxy.Cut();
        try
        {
            using var refused = await WhileTheClockRunsAsync(fixture.BorrowAsync(book, token: token, days: 7));

            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
            Assert.Equal(TimeSpan.FromSeconds(2), refused.Headers.RetryAfter?.Delta);
            var problem = await refused.Content.ReadFromJsonAsync<JsonElement>(Ct);
            Assert.Equal(503, problem.GetProperty("status").GetInt32());
            Assert.Contains("catalog", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
            Assert.False(string.IsNullOrEmpty(problem.GetProperty("traceId").GetString()));
            // Not the developer exception page's answer: no stack trace, no request headers (the token).
            Assert.False(problem.TryGetProperty("exception", out _), "the answer shows the exception");
            Assert.DoesNotContain(token, await refused.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
            Assert.False(await fixture.InLendingAsync(db => db.Titles.AnyAsync(t => t.Id == book, Ct)), "no title row was written");
            Assert.Equal(0, await fixture.InLendingAsync(db => db.Loans.CountAsync(l => l.BookId == book, Ct)));
        }
        finally
        {
            fixture.CatalogProxy.Restore();
        }

        using var lent = await WhileTheClockRunsAsync(fixture.BorrowAsync(book, token: token, days: 7));
        Assert.Equal(HttpStatusCode.Created, lent.StatusCode);
        Assert.Equal(1, await fixture.InLendingAsync(db => db.Loans.CountAsync(l => l.BookId == book && l.UserId == reader, Ct)));
        Assert.Equal(new CopyCounts(2, 1, 0, 1), await fixture.CopyCountsAsync(book));
    }

    /// <summary>
    /// The lending service's clock is the fixture's fake, and the look-ups' resilience handler
    /// waits between tries on it: it is moved on, 100 ms every 20 ms, until the request is answered.
    /// </summary>
    private async Task<T> WhileTheClockRunsAsync<T>(Task<T> request)
    {
        while (!request.IsCompleted)
        {
            fixture.Clock.Advance(TimeSpan.FromMilliseconds(100));
            await Task.WhenAny(request, Task.Delay(20, Ct));
        }
        return await request;
    }
}

/// <summary>A lending service whose database is reached through a proxy the test cuts (a failover that does not end).</summary>
public sealed class UnreachableDatabaseFixture : LendingFixture
{
    public TcpProxy DatabaseProxy { get; private set; } = null!;

    protected override void ConfigureLending(IDictionary<string, string?> settings)
    {
        var direct = new Npgsql.NpgsqlConnectionStringBuilder(settings["ConnectionStrings:lendingdb"]);
        DatabaseProxy = new TcpProxy(direct.Host!, direct.Port);
        DatabaseProxy.Restore();
        settings["ConnectionStrings:lendingdb"] = new Npgsql.NpgsqlConnectionStringBuilder(direct.ConnectionString) { Host = "127.0.0.1", Port = DatabaseProxy.Port }.ConnectionString;
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await DatabaseProxy.DisposeAsync();
    }
}

public sealed class DatabaseUnavailableTests(UnreachableDatabaseFixture fixture) : IClassFixture<UnreachableDatabaseFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// After the execution strategy's retries (6, about 20 s: longer than a failover) a request
    /// whose database does not answer is a 503 with Retry-After, as documented for every
    /// operation, not a 500; and the service answers again once the database is back.
    /// </summary>
    [Fact]
    public async Task A_request_whose_database_does_not_answer_after_the_retries_is_a_503_with_retry_after()
    {
        using var librarian = fixture.Librarian();
        using (var before = await librarian.GetAsync("/api/loans", Ct))
        {
            Assert.Equal(HttpStatusCode.OK, before.StatusCode);
        }

        fixture.DatabaseProxy.Cut();
        try
        {
            using var refused = await librarian.GetAsync("/api/loans", Ct);

            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
            Assert.Equal(TimeSpan.FromSeconds(5), refused.Headers.RetryAfter?.Delta);
            var problem = await refused.Content.ReadFromJsonAsync<JsonElement>(Ct);
            Assert.Contains("database", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
            Assert.False(string.IsNullOrEmpty(problem.GetProperty("traceId").GetString()));
        }
        finally
        {
            fixture.DatabaseProxy.Restore();
        }

        using var after = await librarian.GetAsync("/api/loans", Ct);
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }
}
