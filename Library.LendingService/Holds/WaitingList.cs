using Library.Contracts.Events;
using Library.EventBus;
using Library.LendingService.Blocks;
using Library.LendingService.Copies;
using Library.LendingService.Data;
using Library.LendingService.Desk;
using Library.LendingService.Loans;
using Library.LendingService.Rules;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Holds;

public sealed record HoldResponse(Guid Id, Guid BookId, string Title, Guid? UserId, string Status, int? Position, DateTimeOffset PlacedAt, DateTimeOffset? ReadyUntil);

/// <summary>
/// The waiting list (hold queue) of a title, first come first served: a reader waits while no copy is on the
/// shelf; a copy that comes free goes to the first reader waiting and is set aside
/// (<c>awaiting-pickup</c>) until the pickup deadline of that reader's rule, over the calendar.
/// Every change runs in the caller's transaction with the title's row locked (FOR UPDATE; a borrow
/// that fulfils its own hold: FOR KEY SHARE, which the others' FOR UPDATE excludes), so returns,
/// new holds and the clock see one queue.
/// </summary>
public sealed class WaitingList(LendingDbContext db, Shelf shelf, Fines.ReaderAccounts accounts, CirculationSettings circulation)
{
    /// <summary>Locks the title's row for this transaction (queue changes of one title one at a time).</summary>
    public Task<Title?> LockTitleAsync(Guid bookId, CancellationToken ct) =>
        db.Titles.FromSql($"SELECT * FROM titles WHERE id = {bookId} FOR UPDATE").AsNoTracking().SingleOrDefaultAsync(ct);

    public async Task<Outcome> PlaceAsync(Guid bookId, Guid userId, DateTimeOffset now, CancellationToken ct)
    {
        var reader = await db.Readers.AsNoTracking().SingleOrDefaultAsync(r => r.Id == userId, ct);
        if (reader is null)
        {
            return Outcome.NotFound("reader");
        }
        if (LoanPolicy.ReaderRefusal(reader.Active) is { } refused)
        {
            return Outcome.Refused(refused);
        }
        if (await accounts.RefusalAsync(userId, BlockedAction.Holds, now, ct) is { } blocked)
        {
            return Outcome.Refused(blocked);
        }
        var title = await LockTitleAsync(bookId, ct);
        if (title is null || title.Deleted)
        {
            return Outcome.NotFound("book");
        }
        // Only what this reader may borrow counts: a copy of a type their rule does not lend (a
        // short loan for a group that may not take those) neither stops them waiting nor comes to them.
        var allowed = LendableTo(reader.PatronGroupId, (await circulation.CurrentAsync(ct)).Rules);
        var kinds = await db.Copies
            .Where(c => c.BookId == bookId && c.Status != CopyStatus.Withdrawn && c.Status != CopyStatus.Lost && !c.WithdrawOnCheckIn)
            .Select(c => new { c.LoanType, OnShelf = c.Status == CopyStatus.Available }).Distinct().ToListAsync(ct);
        if (kinds.Any(k => k.OnShelf && allowed.Contains(k.LoanType)))
        {
            return Outcome.Conflict("A copy is on the shelf", "A copy of this title is available: borrow it instead of placing a hold.");
        }
        if (kinds.Count > 0 && !kinds.Any(k => allowed.Contains(k.LoanType)))
        {
            return Outcome.Conflict("Not loanable", $"The copies of this title ({string.Join(", ", kinds.Select(k => k.LoanType).Distinct())}) are not lent to this reader: use them in the library.");
        }
        if (await db.Holds.AnyAsync(h => h.BookId == bookId && h.UserId == userId && (h.Status == HoldStatus.Waiting || h.Status == HoldStatus.Ready), ct))
        {
            return Outcome.Conflict("Already holding", "This reader already holds this title.");
        }

        var hold = new Hold { BookId = bookId, UserId = userId, Status = HoldStatus.Waiting, PlacedAt = now };
        db.Holds.Add(hold);
        db.AddEvent(new HoldPlaced(hold.Id, bookId, userId, now));
        await db.SaveChangesAsync(ct);
        await shelf.PublishAvailabilityAsync(bookId, ct); // the expected date moves back for those behind
        return Outcome.Created($"/api/holds/{hold.Id}", await ToResponseAsync(hold, title.Name, ct));
    }

    public async Task<Outcome> CancelAsync(Hold hold, CirculationSettingsSnapshot settings, DateTimeOffset now, CancellationToken ct)
    {
        await LockTitleAsync(hold.BookId, ct);
        var current = await db.Holds.AsNoTracking().SingleAsync(h => h.Id == hold.Id, ct);
        var cancelled = await db.Holds
            .Where(h => h.Id == hold.Id && (h.Status == HoldStatus.Waiting || h.Status == HoldStatus.Ready))
            .ExecuteUpdateAsync(s => s.SetProperty(h => h.Status, HoldStatus.Cancelled).SetProperty(h => h.ClosedAt, now), ct);
        if (cancelled > 0)
        {
            if (current.Status == HoldStatus.Ready && current.CopyId is { } copyId)
            {
                // The copy set aside passes to the next reader, or back to the shelf.
                await ReleaseAsync(await LockCopyAsync(copyId, ct), settings, now, ct);
            }
            await shelf.PublishAvailabilityAsync(hold.BookId, ct);
        }
        return Outcome.NoContent();
    }

    /// <summary>Ready holds of the title past their pickup deadline pass their copy on. Returns how many expired.</summary>
    public async Task<int> ExpireReadyAsync(Guid bookId, CirculationSettingsSnapshot settings, DateTimeOffset now, CancellationToken ct)
    {
        var expired = await db.Holds.FromSql($"""
            UPDATE holds SET status = 'expired', closed_at = {now}
            WHERE book_id = {bookId} AND status = 'ready' AND ready_until < {now}
            RETURNING *
            """).AsNoTracking().ToListAsync(ct);
        foreach (var hold in expired)
        {
            // The reader's hold-expired notice is fed from this event (same transaction).
            db.AddEvent(new HoldExpired(hold.Id, hold.BookId, hold.UserId!.Value, now));
        }
        foreach (var hold in expired.Where(h => h.CopyId is not null))
        {
            await ReleaseAsync(await LockCopyAsync(hold.CopyId!.Value, ct), settings, now, ct);
        }
        if (expired.Count > 0)
        {
            await shelf.PublishAvailabilityAsync(bookId, ct);
        }
        return expired.Count;
    }

    /// <summary>
    /// A copy that came free (checked in, or its hold ended) goes where <see cref="CheckInRouting"/>
    /// says: withdrawn if it was marked surplus, else to the first reader waiting, else the shelf.
    /// </summary>
    public async Task<(CheckInRoute Route, Hold? Readied)> ReleaseAsync(Copy copy, CirculationSettingsSnapshot settings, DateTimeOffset now, CancellationToken ct)
    {
        var first = copy.WithdrawOnCheckIn ? null : await FirstWaitingForAsync(copy, settings.Rules, ct);
        return await ReleaseAsync(copy, first, settings, now, writes: null, ct);
    }

    /// <summary>
    /// <see cref="ReleaseAsync(Copy, CirculationSettingsSnapshot, DateTimeOffset, CancellationToken)"/>
    /// with the title's waiting holds already read and locked (<see cref="WaitingSql"/>); a copy
    /// going back to the shelf has its status written in <paramref name="writes"/> (sent by the caller).
    /// </summary>
    public Task<(CheckInRoute Route, Hold? Readied)> ReleaseAsync(Copy copy, IReadOnlyList<(Hold Hold, Guid? Group)> waiting, CirculationSettingsSnapshot settings, DateTimeOffset now, RoundTrip writes, CancellationToken ct) =>
        ReleaseAsync(copy, copy.WithdrawOnCheckIn ? null : FirstFor(copy, waiting, settings.Rules), settings, now, writes, ct);

    private async Task<(CheckInRoute Route, Hold? Readied)> ReleaseAsync(Copy copy, Hold? first, CirculationSettingsSnapshot settings, DateTimeOffset now, RoundTrip? writes, CancellationToken ct)
    {
        var route = CheckInRouting.Route(copy.WithdrawOnCheckIn, first is not null);
        switch (route)
        {
            case CheckInRoute.Withdrawn:
                await SetStatusAsync(copy, CopyStatus.Withdrawn, now, ct);
                await db.Copies.Where(c => c.Id == copy.Id).ExecuteUpdateAsync(s => s.SetProperty(c => c.WithdrawOnCheckIn, false), ct);
                return (route, null);
            case CheckInRoute.HoldShelf:
                return (route, await SetAsideAsync(copy, first!, settings, now, ct));
            default:
                if (writes is null)
                {
                    await SetStatusAsync(copy, CopyStatus.Available, now, ct);
                }
                else
                {
                    SetStatus(writes, copy, CopyStatus.Available, now);
                }
                return (route, null);
        }
    }

    /// <summary>
    /// Copies on the shelf go to the readers waiting, first come first served (after new copies
    /// arrived), each reader a copy of a type their rule lends; one who may take none of those on the
    /// shelf keeps their place for the next copy.
    /// </summary>
    public async Task ServeAsync(Guid bookId, CirculationSettingsSnapshot settings, DateTimeOffset now, CancellationToken ct)
    {
        if ((await shelf.CountAsync(bookId, ct)).OnShelf == 0)
        {
            return;
        }
        foreach (var (hold, group) in await WaitingAsync(bookId, ct))
        {
            var copy = await shelf.TakeFromShelfAsync(bookId, LendableTo(group, settings.Rules), ct);
            if (copy is not null)
            {
                await SetAsideAsync(copy, hold, settings, now, ct);
            }
            else if ((await shelf.CountAsync(bookId, ct)).OnShelf == 0)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Whether another reader waits for the title who could take this loan's copy home when it comes
    /// back: only they stop a renewal. A reader whose rule does not lend the copy's type waits for
    /// another copy, so keeping this one longer takes nothing from them.
    /// </summary>
    public async Task<bool> AnyoneElseWaitsForAsync(Loan loan, RuleSet rules, CancellationToken ct)
    {
        var groups = await db.Holds
            .Where(h => h.BookId == loan.BookId && h.Status == HoldStatus.Waiting && h.UserId != loan.UserId)
            .Select(h => db.Readers.Where(r => r.Id == h.UserId).Select(r => r.PatronGroupId).FirstOrDefault())
            .Distinct().ToListAsync(ct);
        if (groups.Count == 0)
        {
            return false;
        }
        // A loan without a copy (made before copies had barcodes) is held back for anyone waiting.
        var loanType = loan.CopyId is { } copyId ? await db.Copies.Where(c => c.Id == copyId).Select(c => c.LoanType).SingleOrDefaultAsync(ct) : null;
        return loanType is null || groups.Any(group => rules.IsLoanable(group, loanType));
    }

    /// <summary>The loan types a reader of this group may borrow under the rules.</summary>
    private static List<string> LendableTo(Guid? patronGroupId, RuleSet rules) =>
        LoanTypes.All.Where(t => rules.IsLoanable(patronGroupId, t.Name)).Select(t => t.Name).ToList();

    private async Task<Hold> SetAsideAsync(Copy copy, Hold hold, CirculationSettingsSnapshot settings, DateTimeOffset now, CancellationToken ct)
    {
        var group = await db.Readers.Where(r => r.Id == hold.UserId).Select(r => r.PatronGroupId).SingleOrDefaultAsync(ct);
        var rule = settings.Rules.Resolve(group, copy.LoanType).Rule;
        var readyUntil = settings.Calendar.PickupDeadline(now, rule.HoldPickupDays);
        await SetStatusAsync(copy, CopyStatus.AwaitingPickup, now, ct);
        await db.Holds.Where(h => h.Id == hold.Id).ExecuteUpdateAsync(s => s
            .SetProperty(h => h.Status, HoldStatus.Ready).SetProperty(h => h.ReadyUntil, readyUntil).SetProperty(h => h.CopyId, copy.Id), ct);
        db.AddEvent(new HoldReady(hold.Id, hold.BookId, hold.UserId!.Value, readyUntil));
        hold.Status = HoldStatus.Ready;
        hold.ReadyUntil = readyUntil;
        hold.CopyId = copy.Id;
        return hold;
    }

    /// <summary>
    /// The title's waiting holds ({0}: its ID) in queue order, locked, each with its reader's patron
    /// group (<see cref="ReadWaiting"/> reads a row).
    /// </summary>
    public const string WaitingSql = """
        SELECT h.*, r.patron_group_id AS reader_patron_group_id
        FROM holds h LEFT JOIN readers r ON r.id = h.user_id
        WHERE h.book_id = {0} AND h.status = 'waiting' ORDER BY h.sequence FOR UPDATE OF h
        """;

    /// <summary><see cref="WaitingSql"/> with positional parameters, for a <see cref="RoundTrip"/>.</summary>
    public static readonly string WaitingSqlPositional = RoundTrip.Positional(WaitingSql);

    /// <summary>The title's waiting holds in queue order, locked, with each reader's patron group.</summary>
    private async Task<List<(Hold Hold, Guid? Group)>> WaitingAsync(Guid bookId, CancellationToken ct)
    {
        await using var results = await new RoundTrip(db).Add(WaitingSqlPositional, bookId).RunAsync(ct);
        return await ReadWaiting(results, ct);
    }

    /// <summary>The rows of <see cref="WaitingSql"/>, the next result of <paramref name="results"/>.</summary>
    public static Task<List<(Hold Hold, Guid? Group)>> ReadWaiting(RoundTripResults results, CancellationToken ct)
    {
        var hold = results.EntityMap<Hold>();
        return results.RowsAsync(row =>
        {
            var group = row.GetOrdinal("reader_patron_group_id");
            return (hold(row), row.IsDBNull(group) ? (Guid?)null : row.GetGuid(group));
        }, ct);
    }

    /// <summary>The first reader waiting whose rule lends this copy's loan type, if any.</summary>
    private async Task<Hold?> FirstWaitingForAsync(Copy copy, RuleSet rules, CancellationToken ct) =>
        FirstFor(copy, await WaitingAsync(copy.BookId, ct), rules);

    private static Hold? FirstFor(Copy copy, IReadOnlyList<(Hold Hold, Guid? Group)> waiting, RuleSet rules) =>
        waiting.FirstOrDefault(w => rules.IsLoanable(w.Group, copy.LoanType)).Hold;

    public Task<Copy> LockCopyAsync(Guid copyId, CancellationToken ct) =>
        db.Copies.FromSql($"SELECT * FROM copies WHERE id = {copyId} FOR UPDATE").AsNoTracking().SingleAsync(ct);

    /// <summary>The one write of a copy's status (the database's trigger refuses a transition the table does not allow).</summary>
    public async Task SetStatusAsync(Copy copy, string status, DateTimeOffset now, CancellationToken ct)
    {
        // The one text of a copy's status change (SetStatus), sent in a round trip of its own.
        await using var sent = await SetStatus(new RoundTrip(db), copy, status, now).RunAsync(ct);
    }

    /// <summary><see cref="SetStatusAsync"/> as a statement of <paramref name="trip"/>, written when the trip is sent.</summary>
    public static RoundTrip SetStatus(RoundTrip trip, Copy copy, string status, DateTimeOffset now)
    {
        CheckTransition(copy, status);
        copy.Status = status;
        copy.UpdatedAt = now;
        return trip.Add("UPDATE copies SET status = $1, updated_at = $2 WHERE id = $3", status, now, copy.Id);
    }

    private static void CheckTransition(Copy copy, string status)
    {
        if (copy.Status != status && !CopyStatus.CanChange(copy.Status, status))
        {
            throw new InvalidOperationException($"Copy {copy.Barcode} cannot go from {copy.Status} to {status}.");
        }
    }

    public async Task<HoldResponse> ToResponseAsync(Hold hold, string title, CancellationToken ct)
    {
        int? position = hold.Status == HoldStatus.Waiting
            ? await db.Holds.CountAsync(h => h.BookId == hold.BookId && h.Status == HoldStatus.Waiting && h.Sequence < hold.Sequence, ct) + 1
            : null;
        return new HoldResponse(hold.Id, hold.BookId, title, hold.UserId, hold.Status, position, hold.PlacedAt, hold.ReadyUntil);
    }

    /// <summary>
    /// When a copy is expected back for someone who joins the queue now: the (k+1)-th earliest
    /// due date, k being the readers already waiting; the last known when more wait than are out.
    /// </summary>
    public static DateTimeOffset? NextAvailableAt(IReadOnlyList<DateTimeOffset> dueDatesAscending, int waiting) =>
        waiting < dueDatesAscending.Count ? dueDatesAscending[waiting] : dueDatesAscending.Count > 0 ? dueDatesAscending[^1] : null;
}
