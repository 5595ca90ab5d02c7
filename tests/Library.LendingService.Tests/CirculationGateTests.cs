using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Library.LendingService.Loans;
using Library.ServiceDefaults;
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

    /// <summary>
    /// A borrow whose database work waits to be retried (its session ended, as a failover ends
    /// them) gives its turn to the request behind it for the delay, and takes a turn again for
    /// its next attempt. Both turns are held by borrows waiting on the test's lock; a request for
    /// the loan types (no database work) waits for a turn behind them and is answered while
    /// their sessions are ended again and again. Without stepping aside it waited until the
    /// borrows gave up, about 20 s of retries later.
    /// </summary>
    [Fact]
    public async Task A_borrow_waiting_to_retry_lets_the_request_behind_it_have_its_turn()
    {
        var ct = TestContext.Current.CancellationToken;
        var book = await fixture.TitleAsync(copies: 4, "Turns Given Back");
        var first = await fixture.ReaderAsync();
        var second = await fixture.ReaderAsync();
        var gate = fixture.Lending.Services.GetRequiredService<CirculationGate>();

        await using var held = await HeldTransaction.BeginAsync(fixture.LendingDb, "LOCK TABLE loans IN ACCESS EXCLUSIVE MODE");
        var borrows = new[] { fixture.BorrowAsync(book, first.Id), fixture.BorrowAsync(book, second.Id) };
        await Eventually.WaitUntilAsync(
            async () => gate.Statistics!.CurrentAvailablePermits == 0 && await fixture.LendingDb.SessionsBlockedByAsync(held.ProcessId) == 2,
            "both turns held by borrows waiting on the lock");
        using var anonymous = fixture.Client();
        var behind = anonymous.GetAsync("/api/loan-types", ct);
        await Eventually.WaitUntilAsync(() => Task.FromResult(gate.Statistics!.CurrentQueuedCount == 1), "the loan types waiting for a turn");

        long ended = 0;
        await Eventually.WaitUntilAsync(async () =>
        {
            if (behind.IsCompleted)
            {
                return true;
            }
            ended += await fixture.LendingDb.EndSessionsBlockedByAsync(held.ProcessId);
            return false;
        }, "the request behind the borrows answered while they wait to retry", seconds: 10);
        using (var answered = await behind)
        {
            Assert.Equal(HttpStatusCode.OK, answered.StatusCode);
        }
        Assert.True(ended >= 2, $"{ended} sessions ended");
        // Their next attempts took turns again before they went back to the database.
        await Eventually.WaitUntilAsync(
            async () => gate.Statistics!.CurrentAvailablePermits == 0 && await fixture.LendingDb.SessionsBlockedByAsync(held.ProcessId) == 2,
            "both borrows retried, each holding a turn again");

        await held.CommitAsync();
        foreach (var borrow in borrows)
        {
            using var answer = await borrow;
            Assert.True(answer.StatusCode == HttpStatusCode.Created, $"{(int)answer.StatusCode} {await answer.Content.ReadAsStringAsync(ct)}");
        }
        Assert.Equal(2, (await fixture.CopyCountsAsync(book)).OnLoan);
        Assert.Equal(2, gate.Statistics!.CurrentAvailablePermits);
    }

    /// <summary>
    /// The turn <see cref="Library.ServiceDefaults.ConcurrencyGate.EnterAsync"/> gives is current
    /// in the awaiting method until disposed; stepping aside lets the next one in, resuming waits
    /// behind it.
    /// </summary>
    [Fact]
    public async Task A_turn_is_current_where_it_was_taken_and_steps_aside_for_the_next()
    {
        var ct = TestContext.Current.CancellationToken;
        using var meters = new ServiceCollection().AddMetrics().BuildServiceProvider();
        using var gate = new CirculationGate(
            Microsoft.Extensions.Options.Options.Create(new CirculationGateOptions { RequestConcurrency = 1, RequestQueue = 2 }),
            meters.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(),
            Microsoft.Extensions.Logging.Abstractions.NullLogger<CirculationGate>.Instance);

        Assert.Null(GateTurn.Current);
        var first = await gate.EnterAsync(ct);
        Assert.Same(first, GateTurn.Current);
        Assert.True(first!.Holds);

        var second = Task.Run(async () =>
        {
            using var turn = await gate.EnterAsync(ct);
            Assert.Same(turn, GateTurn.Current);
            await Task.Delay(100, ct);
        }, ct);
        await Eventually.WaitUntilAsync(() => Task.FromResult(gate.Statistics!.CurrentQueuedCount == 1), "the second waiting");

        first.StepAside();
        Assert.False(first.Holds);
        var resumed = first.ResumeAsync(ct).AsTask();
        await second;
        await resumed;
        Assert.True(first.Holds);
        Assert.Same(first, GateTurn.Current);

        first.Dispose();
        Assert.Null(GateTurn.Current);
        Assert.Equal(1, gate.Statistics!.CurrentAvailablePermits);
        await first.ResumeAsync(ct);
        Assert.False(first.Holds);
    }
}
