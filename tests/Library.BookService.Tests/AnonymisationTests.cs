using System.Net.Http.Json;
using System.Text.Json;
using Library.Contracts.Events;
using Library.BookService.Data;
using Library.BookService.IntegrationEvents;
using Library.EventBus;
using Microsoft.Extensions.DependencyInjection;
using Library.TestSupport;

namespace Library.BookService.Tests;

/// <summary>The catalog's copy of the loan history forgets the readers of anonymised loans, whatever order the events come in.</summary>
public sealed class AnonymisationTests(CatalogFixture fixture) : IClassFixture<CatalogFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Task WaitUntilAsync(Func<Task<bool>> condition, string what) => Eventually.WaitUntilAsync(condition, what);

    private Task Publish(string name, IntegrationEvent e) => Broker.PublishAsync(fixture.Host.Exchange, name, e, e.Id);

    private static string InList(IEnumerable<Guid> ids) => string.Join(", ", ids.Select(i => $"'{i}'"));

    private Task<long> WithReaderAsync(IEnumerable<Guid> loans) =>
        fixture.Database.ScalarAsync<long>($"SELECT count(*) FROM book_loans WHERE loan_id IN ({InList(loans)}) AND user_id IS NOT NULL");

    private Task<long> RowsAsync(IEnumerable<Guid> loans, string where = "true") =>
        fixture.Database.ScalarAsync<long>($"SELECT count(*) FROM book_loans WHERE loan_id IN ({InList(loans)}) AND {where}");

    [Fact]
    public async Task Anonymised_loans_lose_their_reader_late_events_do_not_bring_it_back_and_recommendations_still_answer()
    {
        async Task<Guid> NewBook(string title) => (await fixture.BookAsync(title, TestIsbn.Next(), [], [])).GetProperty("id").GetGuid();
        var seed = await NewBook("Anon seed");
        var other = await NewBook("Anon other");
        var (private1, kept) = (Guid.CreateVersion7(), Guid.CreateVersion7());
        var now = DateTimeOffset.UtcNow;

        // Two readers borrowed and returned both titles; the first asks to be forgotten.
        var loans = new List<(Guid Loan, Guid Book, Guid Reader)>();
        foreach (var reader in new[] { private1, kept })
        {
            foreach (var book in new[] { seed, other })
            {
                var created = new LoanCreated(Guid.CreateVersion7(), book, reader, now.AddDays(-20), now.AddDays(-6));
                await Publish("loan.created", created);
                await Publish("loan.returned", new LoanReturned(created.LoanId, book, reader, now.AddDays(-10)));
                loans.Add((created.LoanId, book, reader));
            }
        }
        var allLoans = loans.Select(l => l.Loan).ToList();
        await WaitUntilAsync(async () => await RowsAsync(allLoans, "returned_at IS NOT NULL") == 4, "the history of four returned loans");

        // A third loan's anonymisation overtakes its own LoanCreated and LoanReturned (reordered).
        var late = new LoanCreated(Guid.CreateVersion7(), seed, Guid.CreateVersion7(), now.AddDays(-3), now.AddDays(11));
        var forgotten = loans.Where(l => l.Reader == private1).Select(l => l.Loan).Append(late.LoanId).ToList();
        await Publish("loans.anonymised", new LoansAnonymised(forgotten));
        await WaitUntilAsync(async () => await WithReaderAsync(forgotten) == 0 && await RowsAsync(forgotten) == 2, "the private reader's loans forgotten");

        await Publish("loan.created", late);
        await Publish("loan.returned", new LoanReturned(late.LoanId, seed, late.UserId, now.AddDays(-1)));
        // A re-sent return of a forgotten loan (a new event id: not an inbox duplicate) changes nothing either.
        var first = loans.First(l => l.Reader == private1);
        var resent = new LoanReturned(first.Loan, first.Book, private1, now.AddDays(-10));
        await Publish("loan.returned", resent);
        await WaitUntilAsync(async () => await RowsAsync([late.LoanId], "returned_at IS NOT NULL") == 1, "the late loan recorded and returned");
        await WaitUntilAsync(async () => await fixture.Database.ScalarAsync<long>($"SELECT count(*) FROM inbox_messages WHERE event_id = '{resent.Id}'") == 1, "the re-sent return handled");

        Assert.Equal(0, await WithReaderAsync(forgotten));
        Assert.Equal(0, await fixture.Database.ScalarAsync<long>($"SELECT count(*) FROM book_loans WHERE user_id = '{private1}' OR user_id = '{late.UserId}'"));
        Assert.Equal(2, await WithReaderAsync(loans.Where(l => l.Reader == kept).Select(l => l.Loan)));
        Assert.Equal(3, await fixture.Database.ScalarAsync<long>($"SELECT count(*) FROM anonymised_loans WHERE loan_id IN ({InList(forgotten)})"));

        // Re-delivered anonymisation: nothing more, nothing fails.
        await Publish("loans.anonymised", new LoansAnonymised(forgotten));

        // Recommendations still answer: the kept reader still pairs the two titles; the forgotten
        // loans still count for popularity (three loans of the seed, two of the other).
        var recommended = await fixture.Client().GetFromJsonAsync<JsonElement>($"/api/books/{seed}/recommendations?limit=3", Ct);
        Assert.Equal(other, recommended[0].GetProperty("id").GetGuid());
        Assert.Equal(3, await fixture.Database.ScalarAsync<long>($"SELECT recent_loans FROM books WHERE id = '{seed}'"));
        var popular = await fixture.Client().GetFromJsonAsync<JsonElement>("/api/books?sort=popular&pageSize=100", Ct);
        Assert.Contains(popular.GetProperty("items").EnumerateArray(), b => b.GetProperty("id").GetGuid() == seed);

        // The hourly refresher drops the marks of loans whose history row already has no reader;
        // a mark whose loan the catalog has not heard of yet stays. Late events of the pruned
        // loans (new event ids) still cannot bring a reader back.
        var unheard = Guid.CreateVersion7();
        await Publish("loans.anonymised", new LoansAnonymised([unheard]));
        await WaitUntilAsync(async () => await fixture.Database.ScalarAsync<long>($"SELECT count(*) FROM anonymised_loans WHERE loan_id = '{unheard}'") == 1, "the unheard loan marked");
        await using (var scope = fixture.Host.Services.CreateAsyncScope())
        {
            Assert.True(await AnonymisedLoanMarks.PruneAsync(scope.ServiceProvider.GetRequiredService<CatalogDbContext>(), Ct) >= 3);
        }
        Assert.Equal(0, await fixture.Database.ScalarAsync<long>($"SELECT count(*) FROM anonymised_loans WHERE loan_id IN ({InList(forgotten)})"));
        Assert.Equal(1, await fixture.Database.ScalarAsync<long>($"SELECT count(*) FROM anonymised_loans WHERE loan_id = '{unheard}'"));
        var again = new LoanCreated(late.LoanId, seed, late.UserId, late.BorrowedAt, late.DueAt);
        var returnedAgain = new LoanReturned(first.Loan, first.Book, private1, now.AddDays(-10));
        await Publish("loan.created", again);
        await Publish("loan.returned", returnedAgain);
        await WaitUntilAsync(async () => await fixture.Database.ScalarAsync<long>(
            $"SELECT count(*) FROM inbox_messages WHERE event_id IN ('{again.Id}', '{returnedAgain.Id}')") == 2, "the late events after the prune handled");
        Assert.Equal(0, await WithReaderAsync(forgotten));
    }
}
