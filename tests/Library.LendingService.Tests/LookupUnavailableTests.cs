using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Library.TestSupport;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Tests;

/// <summary>A lending service that reaches one of its servers through a proxy (<see cref="Proxy"/>) the test cuts.</summary>
public abstract class ProxiedLendingFixture : LendingFixture
{
    public TcpProxy Proxy { get; private set; } = null!;

    /// <summary>Opens the proxy in front of host:port and returns its port.</summary>
    protected int ProxyTo(string host, int port)
    {
        Proxy = new TcpProxy(host, port);
        Proxy.Restore();
        return Proxy.Port;
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await Proxy.DisposeAsync();
        GC.SuppressFinalize(this);
    }

    /// <summary>
    /// The answer is a 503 as ProblemDetailsDefaults writes it: problem details with the trace
    /// ID, Retry-After, a detail naming what did not answer, and nothing of the developer
    /// exception page (no stack trace, no request headers).
    /// </summary>
    public static async Task<string> AssertUnavailableAsync(HttpResponseMessage response, int retryAfterSeconds, string names, CancellationToken ct)
    {
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(TimeSpan.FromSeconds(retryAfterSeconds), response.Headers.RetryAfter?.Delta);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(ct);
        Assert.Equal(503, problem.GetProperty("status").GetInt32());
        Assert.Contains(names, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(problem.GetProperty("traceId").GetString()));
        Assert.False(problem.TryGetProperty("exception", out _), "the answer shows the exception");
        return await response.Content.ReadAsStringAsync(ct);
    }
}

/// <summary>
/// The catalog behind the proxy, and a lending service that hears no events (an exchange of its
/// own): every title it is asked about is looked up over gRPC. It runs in Development, as under
/// the AppHost, where ASP.NET Core's developer exception page sees an exception before the
/// exception handler does.
/// </summary>
public sealed class UnreachableCatalogFixture : ProxiedLendingFixture
{
    protected override void ConfigureLending(IDictionary<string, string?> settings)
    {
        settings["services:bookservice:http:0"] = $"http://127.0.0.1:{ProxyTo("127.0.0.1", Catalog.Address.Port)}";
        var deaf = $"test-deaf-{Guid.NewGuid():N}"[..22];
        settings["EventBus:Exchange"] = $"{deaf}.library.events";
        settings["EventBus:QueuePrefix"] = $"{deaf}.";
        settings["environment"] = "Development";
    }
}

/// <summary>The lending database behind the proxy (a failover that does not end), in the test environment (the exception handler's answer).</summary>
public sealed class UnreachableDatabaseFixture : ProxiedLendingFixture
{
    protected override void ConfigureLending(IDictionary<string, string?> settings)
    {
        var direct = new Npgsql.NpgsqlConnectionStringBuilder(settings["ConnectionStrings:lendingdb"]);
        settings["ConnectionStrings:lendingdb"] = new Npgsql.NpgsqlConnectionStringBuilder(direct.ConnectionString)
        {
            Host = "127.0.0.1",
            Port = ProxyTo(direct.Host!, direct.Port),
        }.ConnectionString;
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

        fixture.Proxy.Cut();
        try
        {
            using var refused = await WhileTheClockRunsAsync(fixture.BorrowAsync(book, token: token, days: 7));

            var body = await ProxiedLendingFixture.AssertUnavailableAsync(refused, 2, "catalog", Ct);
            Assert.DoesNotContain(token, body, StringComparison.Ordinal);
            Assert.False(await fixture.InLendingAsync(db => db.Titles.AnyAsync(t => t.Id == book, Ct)), "no title row was written");
            Assert.Equal(0, await fixture.InLendingAsync(db => db.Loans.CountAsync(l => l.BookId == book, Ct)));
        }
        finally
        {
            fixture.Proxy.Restore();
        }

        using var lent = await WhileTheClockRunsAsync(fixture.BorrowAsync(book, token: token, days: 7));
        Assert.Equal(HttpStatusCode.Created, lent.StatusCode);
        Assert.Equal(1, await fixture.InLendingAsync(db => db.Loans.CountAsync(l => l.BookId == book && l.UserId == reader, Ct)));
        Assert.Equal(new CopyCounts(2, 1, 0, 1), await fixture.CopyCountsAsync(book));
    }

    /// <summary>
    /// A catalog that accepts and never answers (its replicas gone behind a proxy that still
    /// listens, as under the AppHost): the look-up's tries time out within its 5 s, and the
    /// look-up is not tried again on top (3 connections at most, not 9).
    /// </summary>
    [Fact]
    public async Task A_look_up_that_times_out_is_a_503_without_being_tried_again()
    {
        var book = await fixture.TitleAsync(1, "Never Answered");
        var (_, token) = await fixture.ReaderAsync();

        // Connections pooled by an earlier look-up are dropped first: only new ones stall.
        fixture.Proxy.Cut();
        fixture.Proxy.Restore();
        fixture.Proxy.Stall();
        var before = fixture.Proxy.StalledTotal;
        try
        {
            using var refused = await WhileTheClockRunsAsync(fixture.BorrowAsync(book, token: token, days: 7));

            await ProxiedLendingFixture.AssertUnavailableAsync(refused, 2, "catalog", Ct);
            Assert.InRange(fixture.Proxy.StalledTotal - before, 1, 3);
        }
        finally
        {
            fixture.Proxy.Cut();
            fixture.Proxy.Restore();
        }
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

public sealed class DatabaseUnavailableTests(UnreachableDatabaseFixture fixture) : IClassFixture<UnreachableDatabaseFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// After the execution strategy's retries (about 20 s: longer than a failover) a request
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

        fixture.Proxy.Cut();
        try
        {
            using var refused = await librarian.GetAsync("/api/loans", Ct);
            await ProxiedLendingFixture.AssertUnavailableAsync(refused, 5, "database", Ct);
        }
        finally
        {
            fixture.Proxy.Restore();
        }

        using var after = await librarian.GetAsync("/api/loans", Ct);
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }
}
