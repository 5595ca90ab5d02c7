using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Library.LendingService.Loans;
using Library.TestSupport;
using Microsoft.Extensions.DependencyInjection;

namespace Library.LendingService.Tests;

/// <summary>The lending service with 2 API requests at once and 2 waiting (Lending:RequestConcurrency, Lending:RequestQueue).</summary>
public sealed class GatedLendingFixture : LendingFixture
{
    protected override void ConfigureLending(IDictionary<string, string?> settings)
    {
        settings["Lending:RequestConcurrency"] = "2";
        settings["Lending:RequestQueue"] = "2";
    }
}

public sealed class CirculationGateTests(GatedLendingFixture fixture) : IClassFixture<GatedLendingFixture>
{
    /// <summary>
    /// With the loans table locked by a transaction of the test's, borrows that reach PostgreSQL
    /// wait there: 2 of 4 hold the turns, 2 wait in the service, and a fifth is answered 503 at
    /// once and lends nothing; once the lock goes, the four are lent. A report does not wait.
    /// </summary>
    [Fact]
    public async Task Borrows_take_turns_and_one_past_the_queue_is_a_503_that_lends_nothing()
    {
        var ct = TestContext.Current.CancellationToken;
        var book = await fixture.TitleAsync(copies: 8, "Turns Taken");
        var readers = new List<Guid>();
        for (var i = 0; i < 6; i++)
        {
            readers.Add((await fixture.ReaderAsync()).Id);
        }
        using (var first = await fixture.BorrowAsync(book, readers[0]))
        {
            Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        }
        var gate = fixture.Lending.Services.GetRequiredService<CirculationGate>();

        await using var held = await HeldTransaction.BeginAsync(fixture.LendingDb, "LOCK TABLE loans IN ACCESS EXCLUSIVE MODE");
        var pending = readers.Skip(1).Take(4).Select(reader => fixture.BorrowAsync(book, reader)).ToList();
        await Eventually.WaitUntilAsync(
            async () => gate.Statistics!.CurrentAvailablePermits == 0 && gate.Statistics.CurrentQueuedCount == 2
                        && await fixture.LendingDb.SessionsBlockedByAsync(held.ProcessId) >= 2,
            "two borrows waiting on the lock in PostgreSQL and two in the service's queue");

        using (var refused = await fixture.BorrowAsync(book, readers[5]))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(2), refused.Headers.RetryAfter?.Delta);
            var problem = await refused.Content.ReadFromJsonAsync<JsonElement>(ct);
            Assert.Contains("requests running", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
            Assert.False(string.IsNullOrEmpty(problem.GetProperty("traceId").GetString()));
        }
        // A report is not gated: with the queue full it is not refused, it waits on the lock as
        // any reader of loans would, and answers after it.
        using var librarian = fixture.Librarian();
        var report = librarian.GetAsync("/api/reports/popular?from=2026-01-01&to=2026-01-31", ct);
        await Eventually.WaitUntilAsync(async () => await fixture.LendingDb.SessionsBlockedByAsync(held.ProcessId) >= 3, "the report waiting on the lock too");
        Assert.Equal(2, gate.Statistics!.CurrentQueuedCount);

        await held.CommitAsync();
        using (var answered = await report)
        {
            Assert.Equal(HttpStatusCode.OK, answered.StatusCode);
        }
        foreach (var borrow in pending)
        {
            using var answer = await borrow;
            Assert.True(answer.StatusCode == HttpStatusCode.Created, $"{(int)answer.StatusCode} {await answer.Content.ReadAsStringAsync(ct)}");
        }
        Assert.Equal(5, (await fixture.CopyCountsAsync(book)).OnLoan);
        Assert.Equal(0, gate.Statistics!.CurrentQueuedCount);
        Assert.Equal(2, gate.Statistics.CurrentAvailablePermits);
    }
}
