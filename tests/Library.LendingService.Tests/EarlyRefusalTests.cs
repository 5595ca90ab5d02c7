using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Tests;

/// <summary>
/// A borrow that finds nothing to lend is refused before its transaction (no lock, no write). Each
/// case puts one title in a state, then compares a keyless borrow (refused early) with a keyed one
/// (a fresh Idempotency-Key always takes the lock path): same status, title, detail and extensions.
/// </summary>
public sealed class EarlyRefusalTests(LendingFixture fixture) : IClassFixture<LendingFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A title whose one copy is lent to someone else: nothing on the shelf.</summary>
    private async Task<Guid> LentOutTitleAsync(string name)
    {
        var book = await fixture.TitleAsync(1, name);
        var other = (await fixture.ReplicaReadersAsync(1))[0];
        Assert.Equal(HttpStatusCode.Created, (await fixture.BorrowAsync(book, other)).StatusCode);
        return book;
    }

    /// <summary>The answer without the per-request traceId, as comparable text.</summary>
    private static async Task<(HttpStatusCode Status, string Body)> AnswerAsync(HttpResponseMessage response)
    {
        using (response)
        {
            var body = JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!.AsObject();
            body.Remove("traceId");
            return (response.StatusCode, body.ToJsonString());
        }
    }

    private async Task<(HttpStatusCode Status, string Body)> SameAnswerBothWaysAsync(Guid book, Guid reader)
    {
        var early = await AnswerAsync(await fixture.BorrowAsync(book, reader));
        var locked = await AnswerAsync(await fixture.BorrowAsync(book, reader, idempotencyKey: $"k-{Guid.NewGuid():N}"));
        Assert.Equal(locked, early);
        return early;
    }

    [Fact]
    public async Task No_copy_left_is_the_same_answer_early_and_on_the_lock_path()
    {
        var book = await LentOutTitleAsync("Early No Copy");
        var reader = (await fixture.ReplicaReadersAsync(1))[0];
        var (status, body) = await SameAnswerBothWaysAsync(book, reader);
        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Contains("No copy left", body, StringComparison.Ordinal);
        Assert.Equal(0, await fixture.InLendingAsync(db => db.Loans.CountAsync(l => l.UserId == reader, Ct)));
    }

    [Fact]
    public async Task A_reader_blocked_or_deactivated_is_refused_first_as_on_the_lock_path()
    {
        var book = await LentOutTitleAsync("Early Blocked");
        var blocked = (await fixture.ReplicaReadersAsync(1))[0];
        using (var block = await fixture.Librarian().PostAsJsonAsync($"/api/users/{blocked}/blocks", new { reason = "Card reported stolen", borrowing = true }, Ct))
        {
            Assert.Equal(HttpStatusCode.Created, block.StatusCode);
        }
        var (status, body) = await SameAnswerBothWaysAsync(book, blocked);
        Assert.Equal(HttpStatusCode.Forbidden, status);
        Assert.Contains("Card reported stolen", body, StringComparison.Ordinal); // the blocks extension, as the lock path names them

        var inactive = (await fixture.ReplicaReadersAsync(1))[0];
        await fixture.InLendingAsync(db => db.Readers.Where(r => r.Id == inactive).ExecuteUpdateAsync(s => s.SetProperty(r => r.Active, false), Ct));
        (status, body) = await SameAnswerBothWaysAsync(book, inactive);
        Assert.Equal(HttpStatusCode.Forbidden, status);
        Assert.Contains("deactivated", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_deleted_title_is_a_404_early_and_on_the_lock_path_after_the_readers_refusals()
    {
        var book = await LentOutTitleAsync("Early Deleted");
        await fixture.InLendingAsync(db => db.Titles.Where(t => t.Id == book).ExecuteUpdateAsync(s => s.SetProperty(t => t.Deleted, true), Ct));
        var (status, _) = await SameAnswerBothWaysAsync(book, (await fixture.ReplicaReadersAsync(1))[0]);
        Assert.Equal(HttpStatusCode.NotFound, status);

        var inactive = (await fixture.ReplicaReadersAsync(1))[0];
        await fixture.InLendingAsync(db => db.Readers.Where(r => r.Id == inactive).ExecuteUpdateAsync(s => s.SetProperty(r => r.Active, false), Ct));
        (status, _) = await SameAnswerBothWaysAsync(book, inactive);
        Assert.Equal(HttpStatusCode.Forbidden, status); // the reader's refusal comes before the title's, both ways
    }

    [Fact]
    public async Task A_reader_whose_hold_is_ready_gets_the_copy_set_aside_while_others_are_refused()
    {
        var book = await fixture.TitleAsync(1, "Early Ready Hold");
        var readers = await fixture.ReplicaReadersAsync(3);
        var loan = await (await fixture.BorrowAsync(book, readers[0])).Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(HttpStatusCode.Created, (await fixture.PlaceHoldAsync(book, readers[1])).StatusCode);
        using (var returned = await fixture.Librarian().PostAsync($"/api/loans/{loan.GetProperty("id").GetGuid()}/return", null, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, returned.StatusCode); // the copy goes to the hold shelf for readers[1]
        }

        var (status, _) = await SameAnswerBothWaysAsync(book, readers[2]);
        Assert.Equal(HttpStatusCode.Conflict, status);
        using var own = await fixture.BorrowAsync(book, readers[1]); // keyless: not on the shelf, but theirs
        Assert.Equal(HttpStatusCode.Created, own.StatusCode);
    }

    [Fact]
    public async Task A_keyed_borrow_replays_its_first_answer_even_when_nothing_is_left()
    {
        var book = await fixture.TitleAsync(1, "Early Replay");
        var reader = (await fixture.ReplicaReadersAsync(1))[0];
        var key = $"k-{Guid.NewGuid():N}";
        var first = await AnswerAsync(await fixture.BorrowAsync(book, reader, idempotencyKey: key));
        Assert.Equal(HttpStatusCode.Created, first.Status);
        Assert.Equal(first, await AnswerAsync(await fixture.BorrowAsync(book, reader, idempotencyKey: key)));
    }

    [Fact]
    public async Task A_refusal_with_nothing_to_lend_takes_no_lock()
    {
        var book = await LentOutTitleAsync("Early Lock Free");
        var reader = (await fixture.ReplicaReadersAsync(1))[0];
        // Another transaction holds the reader's row, as a concurrent borrow of theirs would: the lock
        // path would wait for it; the early refusal answers meanwhile.
        await fixture.InLendingAsync(async db =>
        {
            await using var holding = await db.Database.BeginTransactionAsync(Ct);
            await db.Database.ExecuteSqlAsync($"SELECT 1 FROM readers WHERE id = {reader} FOR UPDATE", Ct);
            using var answered = await fixture.BorrowAsync(book, reader).WaitAsync(TimeSpan.FromSeconds(20), Ct);
            Assert.Equal(HttpStatusCode.Conflict, answered.StatusCode);
            await holding.RollbackAsync(Ct);
            return 0;
        });
    }
}
