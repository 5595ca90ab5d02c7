using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Library.TestSupport;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Tests;

/// <summary>
/// A lending service that reaches the real catalog through a proxy the test cuts, and that hears
/// no events (an exchange of its own): every title it is asked about is looked up over gRPC.
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
