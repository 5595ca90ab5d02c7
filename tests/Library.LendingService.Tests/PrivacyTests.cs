using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Library.Contracts.Events;
using Library.EventBus;
using Library.LendingService.Data;
using Library.LendingService.Loans;
using Library.LendingService.Privacy;
using Library.TestSupport;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;

namespace Library.LendingService.Tests;

/// <summary>Returned loans forget their reader: after Circulation:AnonymiseAfterDays (30), or at once for a reader keeping no history.</summary>
public sealed class PrivacyTests(LendingFixture fixture) : IClassFixture<LendingFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<JsonElement> Send(HttpMethod method, string path, string token, object? body = null, string? key = null)
    {
        using var request = new HttpRequestMessage(method, path) { Content = body is null ? null : JsonContent.Create(body) };
        if (key is not null)
        {
            request.Headers.Add(Idempotency.Header, key);
        }
        using var response = await fixture.Client(token).SendAsync(request, Ct);
        Assert.True(response.IsSuccessStatusCode, $"{method} {path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        return await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
    }

    /// <summary>Every place in lendingdb that could tie <paramref name="userId"/> to these loans, counted.</summary>
    private Task<long> TracesAsync(Guid userId, Guid[] loanIds) => fixture.InLendingAsync(db =>
    {
        var texts = loanIds.Select(id => id.ToString()).ToArray();
        var user = userId.ToString();
        var noDashes = loanIds.Select(id => id.ToString("N")).ToArray();
        return db.Database.SqlQuery<long>($"""
            SELECT (SELECT count(*) FROM loans WHERE id = ANY({loanIds}) AND user_id IS NOT NULL)
                 + (SELECT count(*) FROM holds h JOIN loans l ON h.book_id = l.book_id AND h.closed_at = l.borrowed_at
                    WHERE l.id = ANY({loanIds}) AND h.status = 'fulfilled' AND h.user_id = {userId})
                 + (SELECT count(*) FROM idempotent_requests WHERE (response::text LIKE '%' || {user} || '%' OR user_id = {userId})
                    AND (EXISTS (SELECT 1 FROM unnest({texts}) t WHERE response::text LIKE '%' || t || '%')
                         OR EXISTS (SELECT 1 FROM unnest({noDashes}) t WHERE operation LIKE '%' || t)))
                 + (SELECT count(*) FROM outbox_messages WHERE payload->>'loanId' = ANY({texts}) AND payload::text LIKE '%' || {user} || '%')
                 + (SELECT count(*) FROM outbox_messages o JOIN holds h ON o.payload->>'holdId' = h.id::text
                    JOIN loans l ON h.book_id = l.book_id AND h.closed_at = l.borrowed_at AND h.status = 'fulfilled'
                    WHERE l.id = ANY({loanIds}) AND o.payload::text LIKE '%' || {user} || '%')
                 AS "Value"
            """).SingleAsync(Ct);
    });

    [Fact]
    public async Task Returned_loans_lose_their_reader_after_the_configured_days_everywhere_in_lending()
    {
        var (holder, holderToken) = await fixture.ReaderAsync();
        var (reader, token) = await fixture.ReaderAsync();
        var book = await fixture.TitleAsync(1, "Privacy One Copy");
        var other = await fixture.TitleAsync(2, "Privacy Two Copies");

        // The reader waits for the one copy, gets it through their hold (a fulfilled hold), and
        // borrows and returns another title with Idempotency-Keys (answers naming them are kept).
        var first = await Send(HttpMethod.Post, "/api/loans", holderToken, new { bookId = book, days = 7 });
        await Send(HttpMethod.Post, "/api/holds", token, new { bookId = book });
        await Send(HttpMethod.Post, $"/api/loans/{first.GetProperty("id").GetGuid()}/return", holderToken);
        var held = await Send(HttpMethod.Post, "/api/loans", token, new { bookId = book, days = 7 }, key: $"k-{Guid.NewGuid():N}");
        var kept = await Send(HttpMethod.Post, "/api/loans", token, new { bookId = other, days = 7 }, key: $"k-{Guid.NewGuid():N}");
        var loans = new[] { held.GetProperty("id").GetGuid(), kept.GetProperty("id").GetGuid() };
        foreach (var id in loans)
        {
            await Send(HttpMethod.Post, $"/api/loans/{id}/return", token, key: $"r-{Guid.NewGuid():N}");
        }
        Assert.Equal(1, await fixture.InLendingAsync(db => db.Holds.CountAsync(h => h.UserId == reader && h.BookId == book && h.Status == HoldStatus.Fulfilled, Ct)));
        await LendingFixture.WaitUntilAsync(async () =>
            await fixture.InLendingAsync(db => db.Set<OutboxMessage>().CountAsync(m => m.EventName == "loan.returned" && m.SentAt != null, Ct)) >= 3, "returns sent");
        Assert.True(await TracesAsync(reader, loans) >= 6, "before: the loans, the hold, the answers and the events name the reader");

        // A day short of 30: still theirs.
        fixture.Clock.Advance(TimeSpan.FromDays(29));
        await LendingFixture.WaitUntilAsync(async () =>
            await fixture.InLendingAsync(db => db.IdempotentRequests.CountAsync(r => r.UserId == reader, Ct)) == 0, "keys of a day ago forgotten");
        Assert.Equal(2, await fixture.InLendingAsync(db => db.Loans.CountAsync(l => loans.Contains(l.Id) && l.UserId == reader, Ct)));

        fixture.Clock.Advance(TimeSpan.FromDays(1) + TimeSpan.FromMinutes(2));
        await LendingFixture.WaitUntilAsync(async () =>
            await fixture.InLendingAsync(db => db.Loans.CountAsync(l => loans.Contains(l.Id) && l.AnonymisedAt != null, Ct)) == 2, "loans anonymised by the clock");
        Assert.Equal(0, await TracesAsync(reader, loans));
        Assert.Equal(0, await fixture.InLendingAsync(db => db.Holds.CountAsync(h => h.UserId == reader, Ct)));

        // Announced, so the catalog and others forget too.
        var announced = await fixture.InLendingAsync(db => db.Set<OutboxMessage>().Where(m => m.EventName == "loans.anonymised").Select(m => m.Payload).ToListAsync(Ct));
        var ids = announced.SelectMany(p => JsonSerializer.Deserialize<LoansAnonymised>(p, Outbox.Json)!.LoanIds).ToList();
        Assert.All(loans, id => Assert.Single(ids, id));

        // The reader's history no longer lists them; a librarian still sees the loans, with no reader.
        var mine = await fixture.Client(token).GetFromJsonAsync<JsonElement>("/api/loans?status=returned", Ct);
        Assert.DoesNotContain(mine.GetProperty("items").EnumerateArray(), l => loans.Contains(l.GetProperty("id").GetGuid()));
        var seen = await fixture.Librarian().GetFromJsonAsync<JsonElement>($"/api/loans/{loans[0]}", Ct);
        Assert.Equal(JsonValueKind.Null, seen.GetProperty("userId").ValueKind);
        Assert.Equal("returned", seen.GetProperty("status").GetString());
        using var theirs = await fixture.Client(token).GetAsync($"/api/loans/{loans[0]}", Ct);
        Assert.Equal(HttpStatusCode.Forbidden, theirs.StatusCode);
        var listed = await fixture.Librarian().GetFromJsonAsync<JsonElement>($"/api/loans?bookId={other}", Ct);
        Assert.Contains(listed.GetProperty("items").EnumerateArray(), l => l.GetProperty("id").GetGuid() == loans[1] && l.GetProperty("userId").ValueKind == JsonValueKind.Null);
        _ = holder;
    }

    [Fact]
    public async Task A_reader_who_keeps_no_history_loses_it_at_once_and_each_later_loan_at_its_return()
    {
        var (reader, token) = await fixture.ReaderAsync();
        var book = await fixture.TitleAsync(2, "Privacy Opt-out");
        var before = await Send(HttpMethod.Post, "/api/loans", token, new { bookId = book, days = 7 });
        var open = await Send(HttpMethod.Post, "/api/loans", token, new { bookId = await fixture.TitleAsync(1, "Privacy Still Out"), days = 7 });
        await Send(HttpMethod.Post, $"/api/loans/{before.GetProperty("id").GetGuid()}/return", token);

        // The user service's UserUpdated (keepLoanHistory: false), through the real bus.
        await fixture.InLendingAsync(async db =>
        {
            var r = await db.Readers.AsNoTracking().SingleAsync(x => x.Id == reader, Ct);
            db.AddEvent(new UserUpdated(reader, r.Email, r.FirstName, r.LastName, "member", true, r.Version + 1, r.PatronGroupId, KeepLoanHistory: false));
            return await db.SaveChangesAsync(Ct);
        });
        var returned = before.GetProperty("id").GetGuid();
        await LendingFixture.WaitUntilAsync(async () =>
            await fixture.InLendingAsync(db => db.Loans.AnyAsync(l => l.Id == returned && l.UserId == null && l.AnonymisedAt != null, Ct)), "returned loans anonymised at once");
        Assert.False(await fixture.InLendingAsync(db => db.Readers.Where(r => r.Id == reader).Select(r => r.KeepLoanHistory).SingleAsync(Ct)));
        // An open loan keeps its reader until it comes back.
        var stillOut = open.GetProperty("id").GetGuid();
        Assert.Equal(reader, await fixture.InLendingAsync(db => db.Loans.Where(l => l.Id == stillOut).Select(l => l.UserId).SingleAsync(Ct)));

        // At the desk's check-in, with a key: anonymised in the return's own transaction.
        var checkIn = await Send(HttpMethod.Post, "/api/circulation/check-in", fixture.LibrarianToken,
            new { barcode = open.GetProperty("barcode").GetString() }, key: $"c-{Guid.NewGuid():N}");
        Assert.Equal(JsonValueKind.Null, checkIn.GetProperty("loan").GetProperty("userId").ValueKind);
        var loan = await fixture.InLendingAsync(db => db.Loans.AsNoTracking().SingleAsync(l => l.Id == stillOut, Ct));
        Assert.Null(loan.UserId);
        Assert.Equal(loan.ReturnedAt, loan.AnonymisedAt);

        // And by the reader's own return, with a key, of a loan that filled their hold.
        var wanted = await fixture.TitleAsync(1, "Privacy Wanted");
        var holder = (await fixture.ReplicaReadersAsync(1))[0];
        var holders = await Send(HttpMethod.Post, "/api/loans", fixture.LibrarianToken, new { bookId = wanted, days = 7, userId = holder });
        await Send(HttpMethod.Post, "/api/holds", token, new { bookId = wanted });
        await Send(HttpMethod.Post, $"/api/loans/{holders.GetProperty("id").GetGuid()}/return", fixture.LibrarianToken);
        var later = await Send(HttpMethod.Post, "/api/loans", token, new { bookId = wanted, days = 7 });
        var laterId = later.GetProperty("id").GetGuid();
        Assert.Equal(1, await fixture.InLendingAsync(db => db.Holds.CountAsync(h => h.UserId == reader && h.Status == HoldStatus.Fulfilled, Ct)));
        await LendingFixture.WaitUntilAsync(async () =>
            await fixture.InLendingAsync(db => db.Set<OutboxMessage>().CountAsync(m => m.SentAt == null, Ct)) == 0, "hold events sent");
        Assert.True(await TracesAsync(reader, [laterId]) >= 4, "the open loan, its hold, their sent events name the reader");
        var returnKey = $"r-{Guid.NewGuid():N}";
        var back = await Send(HttpMethod.Post, $"/api/loans/{laterId}/return", token, key: returnKey);
        Assert.Equal(JsonValueKind.Null, back.GetProperty("userId").ValueKind);
        // A retry of that return (the gateway's, after a replica died) still gets its first answer.
        var again = await Send(HttpMethod.Post, $"/api/loans/{laterId}/return", token, key: returnKey);
        Assert.Equal((laterId, JsonValueKind.Null, back.GetProperty("returnedAt").GetDateTimeOffset()),
            (again.GetProperty("id").GetGuid(), again.GetProperty("userId").ValueKind, again.GetProperty("returnedAt").GetDateTimeOffset()));

        // In the outbox LoanReturned (naming the reader) comes first, LoansAnonymised after it, so
        // a consumer applying them in order ends with no reader.
        foreach (var id in new[] { stillOut, laterId })
        {
            var order = await fixture.InLendingAsync(db => db.Set<OutboxMessage>().AsNoTracking()
                .Where(m => m.EventName == "loan.returned" || m.EventName == "loans.anonymised").OrderBy(m => m.Sequence).ToListAsync(Ct));
            var returnedAt = order.FindIndex(m => m.EventName == "loan.returned" && m.Payload.Contains(id.ToString(), StringComparison.Ordinal));
            var anonymisedAt = order.FindIndex(m => m.EventName == "loans.anonymised" && m.Payload.Contains(id.ToString(), StringComparison.Ordinal));
            Assert.True(returnedAt >= 0 && anonymisedAt > returnedAt, $"loan.returned ({returnedAt}) before loans.anonymised ({anonymisedAt})");
        }

        // Once sent, the clock's next tick scrubs the reader from those events and forgets the keyed answers.
        await LendingFixture.WaitUntilAsync(async () =>
            await fixture.InLendingAsync(db => db.Set<OutboxMessage>().CountAsync(m => m.SentAt == null, Ct)) == 0, "outbox sent");
        fixture.Clock.Advance(CirculationClock.Interval + TimeSpan.FromSeconds(1));
        var all = new[] { returned, stillOut, laterId };
        await LendingFixture.WaitUntilAsync(async () => await TracesAsync(reader, all) == 0, "no trace of the reader left for these loans");
        var history = await fixture.Client(token).GetFromJsonAsync<JsonElement>("/api/loans", Ct);
        Assert.Equal(0L, history.GetProperty("totalCount").GetInt64());
        Assert.Equal(0, await fixture.InLendingAsync(db => db.Holds.CountAsync(h => h.UserId == reader, Ct)));
    }

    [Fact]
    public async Task A_return_that_raced_the_opt_out_is_anonymised_by_the_next_tick()
    {
        var (reader, token) = await fixture.ReaderAsync();
        var loan = await Send(HttpMethod.Post, "/api/loans", token, new { bookId = await fixture.TitleAsync(1, "Privacy Race"), days = 7 });
        var id = loan.GetProperty("id").GetGuid();
        await Send(HttpMethod.Post, $"/api/loans/{id}/return", token);
        // As if the return had read the reader just before the UserUpdated handler committed, and
        // the handler had looked for returned loans just before the return committed.
        await fixture.InLendingAsync(db => db.Database.ExecuteSqlAsync($"UPDATE readers SET keep_loan_history = FALSE WHERE id = {reader}", Ct));
        Assert.Equal(reader, await fixture.InLendingAsync(db => db.Loans.Where(l => l.Id == id).Select(l => l.UserId).SingleAsync(Ct)));

        fixture.Clock.Advance(CirculationClock.Interval + TimeSpan.FromSeconds(1));
        await LendingFixture.WaitUntilAsync(async () =>
            await fixture.InLendingAsync(db => db.Loans.AnyAsync(l => l.Id == id && l.UserId == null && l.AnonymisedAt != null, Ct)), "anonymised by the clock");
    }

    [Fact]
    public async Task A_return_in_flight_when_the_opt_out_arrives_is_anonymised_by_the_handler_not_the_clock()
    {
        var (reader, token) = await fixture.ReaderAsync();
        var loan = await Send(HttpMethod.Post, "/api/loans", token, new { bookId = await fixture.TitleAsync(1, "Privacy In Flight"), days = 7 });
        var id = loan.GetProperty("id").GetGuid();

        // A return in its transaction: the loan's row updated and locked, the reader read as keeping
        // their history (the opt-out not committed yet), not committed.
        await using var returning = new NpgsqlConnection(fixture.LendingDb.ConnectionString);
        await returning.OpenAsync(Ct);
        await using var transaction = await returning.BeginTransactionAsync(Ct);
        await using (var close = new NpgsqlCommand("UPDATE loans SET returned_at = now() WHERE id = @id AND returned_at IS NULL", returning, transaction))
        {
            close.Parameters.AddWithValue("id", id);
            Assert.Equal(1, await close.ExecuteNonQueryAsync(Ct));
        }
        await using (var keeps = new NpgsqlCommand("SELECT keep_loan_history FROM readers WHERE id = @id", returning, transaction))
        {
            keeps.Parameters.AddWithValue("id", reader);
            Assert.Equal(true, await keeps.ExecuteScalarAsync(Ct));
        }

        // The opt-out arrives through the real bus. Its handler must wait for that return instead of
        // looking only at loans already returned in its snapshot.
        await fixture.InLendingAsync(async db =>
        {
            var r = await db.Readers.AsNoTracking().SingleAsync(x => x.Id == reader, Ct);
            db.AddEvent(new UserUpdated(reader, r.Email, r.FirstName, r.LastName, "member", true, r.Version + 1, r.PatronGroupId, KeepLoanHistory: false));
            return await db.SaveChangesAsync(Ct);
        });
        await LendingFixture.WaitUntilAsync(async () => await fixture.LendingDb.ScalarAsync<long>($"""
            SELECT count(*) FROM pg_stat_activity WHERE datname = '{fixture.LendingDb.Name}' AND wait_event_type = 'Lock' AND query LIKE '%FOR UPDATE%'
            """) > 0, "the handler waits for the return's loan");
        await transaction.CommitAsync(Ct);

        // Anonymised by the handler once the return committed; the clock (fake here) has not ticked.
        await LendingFixture.WaitUntilAsync(async () =>
            await fixture.InLendingAsync(db => db.Loans.AnyAsync(l => l.Id == id && l.UserId == null && l.AnonymisedAt != null, Ct)), "the in-flight return anonymised");
        Assert.False(await fixture.InLendingAsync(db => db.Readers.Where(r => r.Id == reader).Select(r => r.KeepLoanHistory).SingleAsync(Ct)));
    }

    /// <summary>
    /// Only the change to "keep no history" sweeps the reader's loans. A later update of a reader who
    /// already keeps none (a new name) locked every loan of theirs too, so it waited for a return in
    /// flight (which holds its title), and their returns waited for it.
    /// </summary>
    [Fact]
    public async Task A_later_update_of_a_reader_who_keeps_no_history_waits_for_none_of_their_loans()
    {
        var (reader, token) = await fixture.ReaderAsync();
        await LendingFixture.WaitUntilAsync(() => fixture.InLendingAsync(db => db.Readers.AnyAsync(r => r.Id == reader, Ct)), "the reader's replica");
        await PublishUserUpdatedAsync(reader, firstName: null);
        await LendingFixture.WaitUntilAsync(async () => !await fixture.InLendingAsync(db => db.Readers.Where(r => r.Id == reader).Select(r => r.KeepLoanHistory).SingleAsync(Ct)),
            "the opt-out applied");
        var loan = await Send(HttpMethod.Post, "/api/loans", token, new { bookId = await fixture.TitleAsync(1, "Privacy Rename"), days = 7 });
        var id = loan.GetProperty("id").GetGuid();

        // A return in its transaction: the loan's row locked, not committed.
        await using var returning = await HeldTransaction.BeginAsync(fixture.LendingDb, "SELECT id FROM loans WHERE id = @id FOR UPDATE", ("id", id));

        // A new name, through the real bus: applied while the return still holds its loan.
        await PublishUserUpdatedAsync(reader, firstName: "Renamed");
        await LendingFixture.WaitUntilAsync(async () => await fixture.InLendingAsync(db => db.Readers.Where(r => r.Id == reader).Select(r => r.FirstName).SingleAsync(Ct)) == "Renamed",
            "the new name applied while a return of theirs is in flight", seconds: 15);
        await returning.RollbackAsync();
    }

    /// <summary>The user service's UserUpdated for <paramref name="reader"/>, keepLoanHistory false, the next version, through the real bus.</summary>
    private Task PublishUserUpdatedAsync(Guid reader, string? firstName) => fixture.InLendingAsync(async db =>
    {
        var r = await db.Readers.AsNoTracking().SingleAsync(x => x.Id == reader, Ct);
        db.AddEvent(new UserUpdated(reader, r.Email, firstName ?? r.FirstName, r.LastName, "member", true, r.Version + 1, r.PatronGroupId, KeepLoanHistory: false));
        return await db.SaveChangesAsync(Ct);
    });

    [Fact]
    public async Task Two_anonymisation_runs_at_once_share_the_work_and_anonymise_each_loan_once()
    {
        var readers = await fixture.ReplicaReadersAsync(20);
        var book = await fixture.TitleAsync(1, "Privacy Crowd");
        await LendingFixture.WaitUntilAsync(async () => await fixture.InLendingAsync(db => db.Titles.AnyAsync(t => t.Id == book, Ct)), "title known to lending");
        var now = fixture.Clock.GetUtcNow();
        const int count = 1300;
        await fixture.InLendingAsync(db => db.Database.ExecuteSqlAsync($"""
            INSERT INTO loans (id, book_id, user_id, days, borrowed_at, due_at, returned_at, renewals)
            SELECT gen_random_uuid(), {book}, ({readers.ToArray()}::uuid[])[1 + i % 20], 14,
                   {now} - interval '60 days', {now} - interval '46 days', {now} - interval '45 days' + i * interval '1 second', 0
            FROM generate_series(1, {count}) i
            """, Ct));
        var marker = await fixture.InLendingAsync(db => db.Set<OutboxMessage>().MaxAsync(m => (long?)m.Sequence, Ct)) ?? 0;
        var clock = fixture.Lending.Services.GetServices<IHostedService>().OfType<CirculationClock>().Single();

        var start = new TaskCompletionSource();
        var runs = Enumerable.Range(0, 2).Select(async _ =>
        {
            await start.Task;
            await using var scope = fixture.Lending.Services.CreateAsyncScope();
            return await clock.AnonymiseDueAsync(scope.ServiceProvider.GetRequiredService<LendingDbContext>(),
                scope.ServiceProvider.GetRequiredService<LoanAnonymiser>(), now, Ct);
        }).ToList();
        start.SetResult();
        var done = await Task.WhenAll(runs);

        Assert.Equal(0, await fixture.InLendingAsync(db => db.Loans.CountAsync(l => readers.Contains(l.UserId!.Value) && l.ReturnedAt != null, Ct)));
        var announced = await fixture.InLendingAsync(db => db.Set<OutboxMessage>()
            .Where(m => m.EventName == "loans.anonymised" && m.Sequence > marker).Select(m => m.Payload).ToListAsync(Ct));
        var ids = announced.SelectMany(p => JsonSerializer.Deserialize<LoansAnonymised>(p, Outbox.Json)!.LoanIds).ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count());
        Assert.True(ids.Count >= count, $"{ids.Count} announced");
        Assert.True(done.Sum() <= ids.Count);
    }
}
