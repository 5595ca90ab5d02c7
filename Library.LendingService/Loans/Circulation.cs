using Library.Contracts.Events;
using Library.EventBus;
using Library.LendingService.Data;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Loans;

public sealed record LoanResponse(Guid Id, Guid BookId, string Title, Guid UserId, DateTimeOffset BorrowedAt, DateTimeOffset DueAt,
    DateTimeOffset? ReturnedAt, int Renewals, string Status);

public sealed record HoldResponse(Guid Id, Guid BookId, string Title, Guid UserId, string Status, int? Position, DateTimeOffset PlacedAt, DateTimeOffset? ReadyUntil);

/// <summary>
/// Borrow, return, renew and the hold queue, each one local transaction (the caller's) that
/// changes the copies with conditional updates on the title's row, writes the loan or hold, and
/// puts the events in the outbox. Two borrowers can never take the same last copy: the second
/// UPDATE waits for the first's row lock and then finds no copy on the shelf.
/// </summary>
public sealed class Circulation(LendingDbContext db, LendingPolicyAccessor policy, TimeProvider time)
{
    private LendingPolicy Policy => policy.Current;

    /// <summary>Now, to the microsecond PostgreSQL keeps, so an answer equals what is read back later.</summary>
    private DateTimeOffset Now()
    {
        var now = time.GetUtcNow();
        return now.AddTicks(-(now.Ticks % 10));
    }

    public async Task<Outcome> BorrowAsync(Guid bookId, Guid userId, int days, CancellationToken ct)
    {
        var now = Now();
        // One borrow at a time per reader: the loan limit holds under concurrent requests.
        var reader = await db.Readers.FromSql($"SELECT * FROM readers WHERE id = {userId} FOR UPDATE").AsNoTracking().SingleOrDefaultAsync(ct);
        if (reader is null)
        {
            return Outcome.NotFound("reader");
        }
        if (!reader.Active)
        {
            return Outcome.Forbidden("This reader's account is deactivated.");
        }
        var active = await db.Loans.Where(l => l.UserId == userId && l.ReturnedAt == null).Select(l => l.DueAt).ToListAsync(ct);
        if (active.Any(due => due < now))
        {
            return Outcome.Forbidden("The reader has an overdue loan: return it first.");
        }
        if (active.Count >= Policy.MaxActiveLoans)
        {
            return Outcome.Forbidden($"The reader already has {active.Count} loans, the most allowed.");
        }

        var title = await db.Titles.AsNoTracking().SingleOrDefaultAsync(t => t.Id == bookId, ct);
        if (title is null || title.Deleted)
        {
            return Outcome.NotFound("book");
        }

        // The reader's own ready hold, if any, is the copy set aside for them.
        var fulfilled = await db.Holds
            .Where(h => h.BookId == bookId && h.UserId == userId && h.Status == HoldStatus.Ready)
            .ExecuteUpdateAsync(s => s.SetProperty(h => h.Status, HoldStatus.Fulfilled).SetProperty(h => h.ClosedAt, now), ct);
        var taken = fulfilled > 0
            ? await db.Database.ExecuteSqlAsync($"""
                UPDATE titles SET held = held - 1, on_loan = on_loan + 1
                WHERE id = {bookId}
                """, ct)
            : await db.Database.ExecuteSqlAsync($"""
                UPDATE titles SET on_loan = on_loan + 1
                WHERE id = {bookId} AND NOT deleted AND total_copies - on_loan - held > 0
                """, ct);
        if (taken == 0)
        {
            return Outcome.Conflict("No copy left",
                "Every copy of this title is on loan or set aside for a reader whose hold is ready. Place a hold to be next.");
        }

        // A reader still waiting in the queue for this title is served now: their hold is done.
        await db.Holds.Where(h => h.BookId == bookId && h.UserId == userId && h.Status == HoldStatus.Waiting)
            .ExecuteUpdateAsync(s => s.SetProperty(h => h.Status, HoldStatus.Fulfilled).SetProperty(h => h.ClosedAt, now), ct);
        var loan = new Loan { BookId = bookId, UserId = userId, Days = days, BorrowedAt = now, DueAt = LoanRules.DueAt(now, days) };
        db.Loans.Add(loan);
        db.AddEvent(new LoanCreated(loan.Id, bookId, userId, loan.BorrowedAt, loan.DueAt));
        await db.SaveChangesAsync(ct);
        await PublishAvailabilityAsync(bookId, ct);
        return Outcome.Created($"/api/loans/{loan.Id}", ToResponse(loan, title.Name, now));
    }

    public async Task<Outcome> ReturnAsync(Loan loan, CancellationToken ct)
    {
        var now = Now();
        var closed = await db.Loans.Where(l => l.Id == loan.Id && l.ReturnedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(l => l.ReturnedAt, now), ct);
        if (closed == 0)
        {
            return Outcome.Conflict("Already returned", "This loan was returned before.");
        }
        await db.Database.ExecuteSqlAsync($"""
            UPDATE titles SET on_loan = on_loan - 1 WHERE id = {loan.BookId}
            """, ct);
        db.AddEvent(new LoanReturned(loan.Id, loan.BookId, loan.UserId, now));
        // The copy goes to the first reader waiting, if the stock still has room for it.
        await ServeWaitingHoldsAsync(loan.BookId, ct);
        await db.SaveChangesAsync(ct);
        await PublishAvailabilityAsync(loan.BookId, ct);
        loan.ReturnedAt = now;
        return Outcome.Ok(ToResponse(loan, await TitleNameAsync(loan.BookId, ct), now));
    }

    public async Task<Outcome> RenewAsync(Loan loan, CancellationToken ct)
    {
        var now = Now();
        if (loan.ReturnedAt is not null)
        {
            return Outcome.Conflict("Already returned", "A returned loan cannot be renewed.");
        }
        var othersWaiting = await db.Holds.AnyAsync(h => h.BookId == loan.BookId && h.Status == HoldStatus.Waiting && h.UserId != loan.UserId, ct);
        if (LoanRules.RenewalRefusal(loan.DueAt, loan.Renewals, othersWaiting, now, Policy) is { } refusal)
        {
            return Outcome.Conflict("Cannot renew", refusal);
        }
        var newDue = LoanRules.RenewedDueAt(loan.DueAt, loan.Days);
        // Conditional on what was checked: a concurrent renewal or return makes this one fail.
        var renewed = await db.Loans
            .Where(l => l.Id == loan.Id && l.ReturnedAt == null && l.Renewals == loan.Renewals)
            .ExecuteUpdateAsync(s => s.SetProperty(l => l.DueAt, newDue).SetProperty(l => l.Renewals, l => l.Renewals + 1), ct);
        if (renewed == 0)
        {
            return Outcome.Conflict("Changed meanwhile", "The loan was returned or renewed at the same moment. Read it again.");
        }
        loan.DueAt = newDue;
        loan.Renewals++;
        db.AddEvent(new LoanRenewed(loan.Id, loan.BookId, loan.UserId, newDue, loan.Renewals));
        await db.SaveChangesAsync(ct);
        await PublishAvailabilityAsync(loan.BookId, ct);
        return Outcome.Ok(ToResponse(loan, await TitleNameAsync(loan.BookId, ct), now));
    }

    public async Task<Outcome> PlaceHoldAsync(Guid bookId, Guid userId, CancellationToken ct)
    {
        var now = Now();
        var reader = await db.Readers.AsNoTracking().SingleOrDefaultAsync(r => r.Id == userId, ct);
        if (reader is null)
        {
            return Outcome.NotFound("reader");
        }
        if (!reader.Active)
        {
            return Outcome.Forbidden("This reader's account is deactivated.");
        }
        // Lock the title: a return that would serve the queue waits, so the queue is consistent.
        var title = await db.Titles.FromSql($"SELECT * FROM titles WHERE id = {bookId} FOR UPDATE").AsNoTracking().SingleOrDefaultAsync(ct);
        if (title is null || title.Deleted)
        {
            return Outcome.NotFound("book");
        }
        if (LoanRules.OnShelf(title.TotalCopies, title.OnLoan, title.Held) > 0)
        {
            return Outcome.Conflict("A copy is on the shelf", "A copy of this title is available: borrow it instead of placing a hold.");
        }
        if (await db.Holds.AnyAsync(h => h.BookId == bookId && h.UserId == userId && (h.Status == HoldStatus.Waiting || h.Status == HoldStatus.Ready), ct))
        {
            return Outcome.Conflict("Already holding", "This reader already holds this title.");
        }

        var hold = new Hold { BookId = bookId, UserId = userId, Status = HoldStatus.Waiting, PlacedAt = now };
        db.Holds.Add(hold);
        db.AddEvent(new HoldPlaced(hold.Id, bookId, userId, now));
        await db.SaveChangesAsync(ct);
        await PublishAvailabilityAsync(bookId, ct); // the expected date moves back for those behind
        return Outcome.Created($"/api/holds/{hold.Id}", await HoldResponseAsync(hold, title.Name, ct));
    }

    public async Task<Outcome> CancelHoldAsync(Hold hold, CancellationToken ct)
    {
        var now = Now();
        var cancelled = await db.Holds
            .Where(h => h.Id == hold.Id && (h.Status == HoldStatus.Waiting || h.Status == HoldStatus.Ready))
            .ExecuteUpdateAsync(s => s.SetProperty(h => h.Status, HoldStatus.Cancelled).SetProperty(h => h.ClosedAt, now), ct);
        if (cancelled > 0 && hold.Status == HoldStatus.Ready)
        {
            // The copy set aside passes to the next reader, or back to the shelf.
            await db.Database.ExecuteSqlAsync($"UPDATE titles SET held = held - 1 WHERE id = {hold.BookId}", ct);
            await ServeWaitingHoldsAsync(hold.BookId, ct);
        }
        await db.SaveChangesAsync(ct);
        if (cancelled > 0)
        {
            await PublishAvailabilityAsync(hold.BookId, ct);
        }
        return Outcome.NoContent();
    }

    /// <summary>
    /// Ready holds past their pickup day pass their copy on: to the next reader waiting, or back
    /// to the shelf. Returns how many expired.
    /// </summary>
    public async Task<int> ExpireReadyHoldsAsync(Guid bookId, CancellationToken ct)
    {
        var now = Now();
        var expired = await db.Holds
            .Where(h => h.BookId == bookId && h.Status == HoldStatus.Ready && h.ReadyUntil < now)
            .ExecuteUpdateAsync(s => s.SetProperty(h => h.Status, HoldStatus.Expired).SetProperty(h => h.ClosedAt, now), ct);
        if (expired > 0)
        {
            await db.Database.ExecuteSqlAsync($"UPDATE titles SET held = held - {expired} WHERE id = {bookId}", ct);
            await ServeWaitingHoldsAsync(bookId, ct);
            await db.SaveChangesAsync(ct);
            await PublishAvailabilityAsync(bookId, ct);
        }
        return expired;
    }

    /// <summary>After the stock changed: new copies serve the queue first; the catalog learns the count.</summary>
    public async Task StockChangedAsync(Guid bookId, CancellationToken ct)
    {
        await ServeWaitingHoldsAsync(bookId, ct);
        await db.SaveChangesAsync(ct);
        await PublishAvailabilityAsync(bookId, ct);
    }

    /// <summary>Copies on the shelf go to the readers waiting, first come first served.</summary>
    private async Task ServeWaitingHoldsAsync(Guid bookId, CancellationToken ct)
    {
        var now = Now();
        var readyUntil = now.AddDays(Policy.HoldPickupDays);
        while (true)
        {
            var next = await db.Holds.FromSql($"""
                SELECT h.* FROM holds h
                WHERE h.book_id = {bookId} AND h.status = 'waiting'
                  AND EXISTS (SELECT 1 FROM titles t WHERE t.id = h.book_id AND t.total_copies - t.on_loan - t.held > 0)
                ORDER BY h.sequence
                LIMIT 1
                FOR UPDATE OF h
                """).AsNoTracking().SingleOrDefaultAsync(ct);
            if (next is null)
            {
                return;
            }
            await db.Holds.Where(h => h.Id == next.Id)
                .ExecuteUpdateAsync(s => s.SetProperty(h => h.Status, HoldStatus.Ready).SetProperty(h => h.ReadyUntil, readyUntil), ct);
            await db.Database.ExecuteSqlAsync($"UPDATE titles SET held = held + 1 WHERE id = {bookId}", ct);
            db.AddEvent(new HoldReady(next.Id, bookId, next.UserId, readyUntil));
        }
    }

    /// <summary>Puts the title's availability after this transaction's changes in the outbox.</summary>
    private async Task PublishAvailabilityAsync(Guid bookId, CancellationToken ct)
    {
        // Every change of a title's availability gets a new version, so the catalog keeps the newest.
        await db.Database.ExecuteSqlAsync($"UPDATE titles SET availability_version = availability_version + 1 WHERE id = {bookId}", ct);
        var title = await db.Titles.AsNoTracking().SingleAsync(t => t.Id == bookId, ct);
        var onShelf = title.TotalCopies - title.OnLoan - title.Held;
        DateTimeOffset? next = null;
        if (onShelf <= 0)
        {
            var waiting = await db.Holds.CountAsync(h => h.BookId == bookId && h.Status == HoldStatus.Waiting, ct);
            var dues = await db.Loans.Where(l => l.BookId == bookId && l.ReturnedAt == null).OrderBy(l => l.DueAt)
                .Select(l => l.DueAt).Take(waiting + 1).ToListAsync(ct);
            next = LoanRules.NextAvailableAt(dues, waiting);
        }
        db.AddEvent(new BookAvailabilityChanged(bookId, title.TotalCopies, onShelf, next, title.AvailabilityVersion));
        await db.SaveChangesAsync(ct);
    }

    private Task<string> TitleNameAsync(Guid bookId, CancellationToken ct) =>
        db.Titles.Where(t => t.Id == bookId).Select(t => t.Name).SingleAsync(ct);

    public LoanResponse ToResponse(Loan loan, string title, DateTimeOffset now) =>
        new(loan.Id, loan.BookId, title, loan.UserId, loan.BorrowedAt, loan.DueAt, loan.ReturnedAt, loan.Renewals, LoanRules.Status(loan.DueAt, loan.ReturnedAt, now));

    public async Task<HoldResponse> HoldResponseAsync(Hold hold, string title, CancellationToken ct)
    {
        int? position = hold.Status == HoldStatus.Waiting
            ? await db.Holds.CountAsync(h => h.BookId == hold.BookId && h.Status == HoldStatus.Waiting && h.Sequence < hold.Sequence, ct) + 1
            : null;
        return new HoldResponse(hold.Id, hold.BookId, title, hold.UserId, hold.Status, position, hold.PlacedAt, hold.ReadyUntil);
    }
}

/// <summary>The policy as configured now (reloads with configuration).</summary>
public sealed class LendingPolicyAccessor(Microsoft.Extensions.Options.IOptionsMonitor<LendingPolicy> options)
{
    public LendingPolicy Current => options.CurrentValue;
}
