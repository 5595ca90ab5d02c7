using Library.Contracts.Events;
using Library.EventBus;
using Library.LendingService.Blocks;
using Library.LendingService.Copies;
using Library.LendingService.Data;
using Library.LendingService.Fines;
using Library.LendingService.Holds;
using Library.LendingService.Loans;
using Library.LendingService.Privacy;
using Library.LendingService.Rules;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Desk;

/// <summary>The desk's check-in answer; <see cref="Fine"/> is the overdue fine charged, if the copy came back late.</summary>
public sealed record CheckInResponse(LoanResponse Loan, CopyResponse Copy, string RoutedTo, HoldResponse? Hold, FineResponse? Fine);

/// <summary>
/// What a borrow reads before its transaction, in one round trip and without a lock: whether the
/// title and reader replicas exist (null: not known here yet), whether any copy of the title is on
/// the shelf (status available, of any loan type) and whether the reader's own hold on it is ready.
/// </summary>
public sealed record BorrowGlance(bool? TitleDeleted, bool? ReaderActive, bool AnyOnShelf, bool OwnHoldReady)
{
    public bool TitleKnown => TitleDeleted is not null;
    public bool ReaderKnown => ReaderActive is not null;

    /// <summary>Nothing the lock path could lend: no copy on the shelf and no copy set aside for this reader.</summary>
    public bool NothingToLend => TitleKnown && ReaderKnown && !AnyOnShelf && !OwnHoldReady;
}

/// <summary>
/// The circulation desk: lending a copy (by title or by barcode), taking it back and routing it,
/// renewing, charging the overdue fine or lost fee. Each use case runs in the caller's transaction;
/// every decision is taken by the pure <see cref="LoanPolicy"/>, <see cref="BlockPolicy"/>,
/// <see cref="FinePolicy"/>, <see cref="RuleSet"/>, calendar and <see cref="CheckInRouting"/>
/// before anything is written, so a refusal changes nothing. Desks never deadlock each other
/// because of one rule: the reader first (a borrow), then the title, before any hold, copy or loan
/// of it. A borrow or check-out takes the title FOR KEY SHARE (borrows of one title run side by
/// side, on disjoint rows: their own holds, copies taken with SKIP LOCKED, new loans); everything
/// else that changes a title's holds, copies or loans takes it FOR UPDATE (a renewal: FOR NO KEY
/// UPDATE, which still excludes those), so they run one at a time per title and their order
/// among hold, copy and loan below the title does not matter (a return: loan, copy, holds). The
/// exceptions never wait for a title once they hold a loan: the clock's overdue and anonymising
/// sweeps (loans with SKIP LOCKED) and a reader's opt-out from loan history (their loans).
/// </summary>
public sealed class CirculationDesk(LendingDbContext db, Shelf shelf, WaitingList holds, CirculationSettings settings, ReaderAccounts accounts, LoanAnonymiser anonymiser)
{
    /// <summary>The borrow's look before its transaction (see <see cref="BorrowGlance"/>).</summary>
    public Task<BorrowGlance> GlanceAsync(Guid bookId, Guid userId, CancellationToken ct) =>
        db.Database.SqlQuery<BorrowGlance>($"""
            SELECT (SELECT deleted FROM titles WHERE id = {bookId}) AS title_deleted,
                   (SELECT active FROM readers WHERE id = {userId}) AS reader_active,
                   EXISTS (SELECT 1 FROM copies WHERE book_id = {bookId} AND status = 'available') AS any_on_shelf,
                   EXISTS (SELECT 1 FROM holds WHERE book_id = {bookId} AND user_id = {userId} AND status = 'ready') AS own_hold_ready
            """).SingleAsync(ct);

    /// <summary>
    /// The answer of a borrow whose glance saw nothing to lend (<see cref="BorrowGlance.NothingToLend"/>),
    /// without a transaction or a lock: a title with nothing on the shelf that readers keep asking for
    /// costs two reads per request instead of a write transaction with row locks. (In a burst for the
    /// last copies it rarely applies: the glances run before the winners commit.) Deciding on a committed snapshot is
    /// still correct: at that instant no copy was on the shelf or set aside for this reader, so the
    /// borrow is ordered before any return that commits later, which is what a concurrent request
    /// may see; it writes nothing, so no copy can be lent twice. It answers exactly what the lock path
    /// answers in that state, in its order: a deactivated or blocked reader (403), a deleted title
    /// (404), then "No copy left" (409; the loan limit is only checked once a copy is found, and with
    /// no copy available at all "Not loanable" cannot arise). Requests with an Idempotency-Key take
    /// the lock path (their refusal is stored, a replay answers the first answer).
    /// </summary>
    public async Task<Outcome> RefuseNothingToLendAsync(BorrowGlance glance, Guid userId, DateTimeOffset now, CancellationToken ct)
    {
        if (!glance.NothingToLend)
        {
            throw new InvalidOperationException("The glance saw something to lend: the borrow takes the lock path.");
        }
        if (LoanPolicy.ReaderRefusal(glance.ReaderActive!.Value) is { } inactive)
        {
            return Outcome.Refused(inactive);
        }
        var standing = await accounts.StandingAsync(userId, maxActiveLoans: null, now, ct);
        if (accounts.Refusal(standing, BlockedAction.Borrowing, now) is { } blocked)
        {
            return Outcome.Refused(blocked);
        }
        return glance.TitleDeleted == true ? Outcome.NotFound("book") : NoCopyLeft;
    }

    private static Outcome NoCopyLeft => Outcome.Conflict("No copy left",
        "Every copy of this title is on loan or set aside for a reader whose hold is ready. Place a hold to be next.");

    /// <summary><c>POST /api/loans</c>: a copy of the title the reader's rule allows (theirs if a hold set one aside).</summary>
    public async Task<Outcome> BorrowTitleAsync(Guid bookId, Guid userId, int? days, DateTimeOffset now, CancellationToken ct)
    {
        // What the borrow reads before it picks a copy, in one round trip and in the lock order: the
        // reader (locked), their standing (counted once that lock is held: see ReaderTrip), the title
        // (key-share locked: see below), which rules are in force, and the reader's own hold on the
        // title (at most one waiting or ready: a unique index), locked: ready, it names the copy set
        // aside for them; waiting, this loan fulfils it. Last, whether any copy is on the shelf, read
        // once those locks are held (each statement of the batch sees what committed before it began).
        // The title's lock comes before any copy's, as in a return (title, then its copy): a borrow
        // that took a copy and only then met the title (the loan's foreign key, its availability
        // version) could hold the very copy a return of the title was about to lock: its take's FOR
        // UPDATE SKIP LOCKED keeps the lock on a copy that another borrow lent just before the
        // recheck, and PostgreSQL breaks that cycle only after deadlock_timeout (1 s) and a retry. KEY
        // SHARE does not stop other borrows of the title (they take it too); it waits for a return of
        // the title in progress, and a return waits for the borrows in progress. It comes before the
        // reader's own hold too: a return locks the title, then the holds waiting for it.
        Reader? reader;
        ReaderAccounts.StandingCounts? counts;
        Title? title;
        List<SettingsVersion> newest;
        Hold? own;
        bool anyOnShelf;
        await using (var results = await ReaderTrip(userId, now)
            .Add("SELECT * FROM titles WHERE id = $1 FOR KEY SHARE", bookId)
            .Add(CirculationSettings.NewestSql)
            .Add("SELECT * FROM holds WHERE book_id = $1 AND user_id = $2 AND status IN ('ready', 'waiting') FOR UPDATE", bookId, userId)
            .Add("SELECT EXISTS (SELECT 1 FROM copies WHERE book_id = $1 AND status = 'available')", bookId)
            .RunAsync(ct))
        {
            reader = await results.EntityAsync<Reader>(ct);
            counts = await results.RowAsync(ReaderAccounts.StandingCounts.Read, ct);
            title = await results.EntityAsync<Title>(ct);
            newest = await results.RowsAsync(SettingsVersion.Read, ct);
            own = await results.EntityAsync<Hold>(ct);
            anyOnShelf = await results.RowAsync(r => r.GetBoolean(0), ct);
        }
        var (standing, refusal) = await CheckReaderAsync(reader, counts!, now, ct);
        if (refusal is not null)
        {
            return refusal;
        }
        if (title is null || title.Deleted)
        {
            return Outcome.NotFound("book");
        }
        var ready = own?.Status == HoldStatus.Ready ? own : null;
        if (ready?.CopyId is null && !anyOnShelf)
        {
            // No copy set aside for this reader and none on the shelf: what the take below would
            // come to ("Not loanable" needs a copy on the shelf), without the takes and the query
            // of the types on the shelf: 3 round trips, not 6. In the 500-reader burst only the
            // refusals that come after the winners have committed end here (78-163 of 495 in
            // bench/lending-ab.sh); the rest still read the winners' copies as available.
            return NoCopyLeft;
        }
        var current = await settings.CurrentAsync(newest, ct);
        var waiting = new OwnWaitingHold(Known: true, own?.Status == HoldStatus.Waiting ? own.Id : null);
        Copy? copy;
        if (ready?.CopyId is { } setAside)
        {
            copy = await holds.LockCopyAsync(setAside, ct);
        }
        else
        {
            var allowed = LoanTypes.All.Where(t => current.Rules.IsLoanable(reader!.PatronGroupId, t.Name)).Select(t => t.Name).ToList();
            (copy, var typesOnShelf) = await shelf.TakeFromShelfOrSayWhyAsync(bookId, allowed, ct);
            if (copy is null)
            {
                // None free for this reader: either all are being lent right now, or the ones on
                // the shelf are of a type the reader's rule does not lend (reference copies).
                return typesOnShelf.Count > 0 && !typesOnShelf.Intersect(allowed).Any()
                    ? Outcome.Conflict("Not loanable", $"The copies on the shelf ({string.Join(", ", typesOnShelf)}) are not lent to this reader: use them in the library.")
                    : NoCopyLeft;
            }
        }
        return await LendAsync(reader!, standing!, title, copy, ready, waiting, current, days, now, ct);
    }

    /// <summary>The reader's waiting hold on the title when the caller has read it (<c>Known</c>); else looked for by the loan's UPDATE.</summary>
    private readonly record struct OwnWaitingHold(bool Known, Guid? Id);

    /// <summary><c>POST /api/circulation/check-out</c>: that exact copy, for the reader.</summary>
    public async Task<Outcome> CheckOutAsync(string barcode, Guid userId, int? days, DateTimeOffset now, CancellationToken ct)
    {
        var (reader, standing, refusal) = await LockReaderAsync(userId, now, ct);
        if (refusal is not null)
        {
            return refusal;
        }
        var found = await FindByBarcodeAsync(barcode, ct);
        if (found is null)
        {
            return Outcome.NotFound("copy");
        }
        // The title before the copy, as in a borrow by title (see there).
        var title = await db.Titles.FromSql($"SELECT * FROM titles WHERE id = {found.BookId} FOR KEY SHARE").AsNoTracking().SingleAsync(ct);
        var ready = await db.Holds.FromSql($"SELECT * FROM holds WHERE copy_id = {found.Id} AND status = 'ready' FOR UPDATE").AsNoTracking().SingleOrDefaultAsync(ct);
        var copy = await holds.LockCopyAsync(found.Id, ct);
        if (LoanPolicy.CopyRefusal(copy.Status, ready?.UserId, userId) is { } refused)
        {
            return Outcome.Refused(refused);
        }
        return await LendAsync(reader!, standing!, title, copy, copy.Status == CopyStatus.AwaitingPickup ? ready : null, default, await settings.CurrentAsync(ct), days, now, ct);
    }

    private async Task<Outcome> LendAsync(Reader reader, ReaderStanding standing, Title title, Copy copy, Hold? pickedUp, OwnWaitingHold waiting, CirculationSettingsSnapshot current, int? days, DateTimeOffset now, CancellationToken ct)
    {
        var match = current.Rules.Resolve(reader.PatronGroupId, copy.LoanType);
        var period = days ?? match.Rule.LoanDays;
        if (LoanPolicy.LendRefusal(match, copy.LoanType, period) is { } refused)
        {
            return Outcome.Refused(refused);
        }
        // The loan limit is the rule's, so known only now the copy (its loan type) is.
        if (accounts.Refusal(standing with { MaxActiveLoans = match.Rule.MaxActiveLoans }, BlockedAction.Borrowing, now) is { } blocked)
        {
            return Outcome.Refused(blocked);
        }

        // The loan's writes before the availability counts, in their round trip.
        var writes = new RoundTrip(db);
        if (pickedUp is not null)
        {
            writes.Add("UPDATE holds SET status = $1, closed_at = $2 WHERE id = $3", HoldStatus.Fulfilled, now, pickedUp.Id);
        }
        // A reader still waiting in the queue for this title is served now: their hold is done.
        // (No statement at all when the borrow has read that there is none: most borrows.)
        if (!waiting.Known || waiting.Id is not null)
        {
            writes.Add("UPDATE holds SET status = $1, closed_at = $2 WHERE book_id = $3 AND user_id = $4 AND status = $5",
                HoldStatus.Fulfilled, now, title.Id, reader.Id, HoldStatus.Waiting);
        }
        WaitingList.SetStatus(writes, copy, CopyStatus.CheckedOut, now);
        var loan = new Loan
        {
            BookId = title.Id, UserId = reader.Id, CopyId = copy.Id, Days = period, BorrowedAt = now,
            DueAt = current.Calendar.DueAt(now, period), RuleVersion = current.Rules.Version, RuleIndex = match.Index,
        };
        db.Loans.Add(loan);
        db.AddEvent(new LoanCreated(loan.Id, title.Id, reader.Id, loan.BorrowedAt, loan.DueAt));
        // Saved with the availability event and the request's record by the runner (Idempotency.RunAsync):
        // one SaveChanges, one round trip for the loan, both outbox rows and the record.
        await shelf.PublishAvailabilityAsync(title.Id, ct, writes, save: false);
        return Outcome.Created($"/api/loans/{loan.Id}", LoanResponse.From(loan, title.Name, copy.Barcode, now));
    }

    /// <summary><c>POST /api/circulation/check-in</c>: the copy comes back and goes where it is needed.</summary>
    public async Task<Outcome> CheckInAsync(string barcode, DateTimeOffset now, CancellationToken ct)
    {
        var found = await FindByBarcodeAsync(barcode, ct);
        if (found is null)
        {
            return Outcome.NotFound("copy");
        }
        var loan = await db.Loans.AsNoTracking().SingleOrDefaultAsync(l => l.CopyId == found.Id && l.ReturnedAt == null, ct);
        if (loan is null)
        {
            return Outcome.Conflict("Not checked out", $"This copy is {found.Status}, not checked out: nothing to check in.");
        }
        return await TakeBackAsync(loan, now, ct);
    }

    /// <summary><c>POST /api/loans/{id}/return</c>: the loan's copy is checked in.</summary>
    public async Task<Outcome> ReturnAsync(Loan loan, DateTimeOffset now, CancellationToken ct)
    {
        var outcome = await TakeBackAsync(loan, now, ct);
        return outcome.Body is CheckInResponse checkIn ? Outcome.Ok(checkIn.Loan) : outcome;
    }

    private async Task<Outcome> TakeBackAsync(Loan found, DateTimeOffset now, CancellationToken ct)
    {
        // What the return reads and locks, in one round trip and in the lock order: the title
        // (locked); the loan, closed on the condition that it is open (a concurrent return of the
        // same loan finds it closed), as it is now, not as it was read before the lock (a renewal
        // committed meanwhile moved its due date, which the fine follows; a retried transaction
        // starts afresh); which rules are in force; whether the reader keeps a loan history; the
        // copy (locked) and the readers waiting for the title (locked, in queue order).
        Title? title;
        List<Loan> closed;
        List<SettingsVersion> newest;
        bool? keepsHistory;
        Copy? copy = null;
        List<(Hold Hold, Guid? Group)> waiting = [];
        var trip = new RoundTrip(db)
            .Add("SELECT * FROM titles WHERE id = $1 FOR UPDATE", found.BookId)
            .Add("UPDATE loans SET returned_at = $1 WHERE id = $2 AND returned_at IS NULL RETURNING *", now, found.Id)
            .Add(CirculationSettings.NewestSql)
            .Add("SELECT keep_loan_history FROM readers WHERE id = $1", found.UserId ?? Guid.Empty);
        if (found.CopyId is { } copyId)
        {
            trip.Add("SELECT * FROM copies WHERE id = $1 FOR UPDATE", copyId)
                .Add(WaitingList.WaitingSqlPositional, found.BookId);
        }
        await using (var results = await trip.RunAsync(ct))
        {
            title = await results.EntityAsync<Title>(ct);
            closed = await results.EntitiesAsync<Loan>(ct);
            newest = await results.RowsAsync(SettingsVersion.Read, ct);
            keepsHistory = await results.RowAsync(row => (bool?)row.GetBoolean(0), ct);
            if (found.CopyId is not null)
            {
                copy = await results.EntityAsync<Copy>(ct);
                waiting = await WaitingList.ReadWaiting(results, ct);
            }
        }
        if (closed.Count == 0)
        {
            return Outcome.Conflict("Already returned", "This loan was returned before.");
        }
        var loan = closed[0];
        db.AddEvent(new LoanReturned(loan.Id, loan.BookId, loan.UserId!.Value, now));
        var current = await settings.CurrentAsync(newest, ct);
        // Charged in the return's transaction: the copy is back, the fine is final.
        var fine = accounts.ChargeOverdue(loan, title!.Name, await RuleOfAsync(loan, current, ct), current.Calendar, now);
        var route = CheckInRoute.Shelf;
        Hold? readied = null;
        var writes = new RoundTrip(db);
        if (copy is not null)
        {
            (route, readied) = await holds.ReleaseAsync(copy, waiting, current, now, writes, ct);
        }
        // The fine and the events with the availability event (the copy's status written just before
        // its counts), saved by the runner with the request's record; saved now when the loan is
        // anonymised next, so LoanReturned is in the outbox before LoansAnonymised.
        await shelf.PublishAvailabilityAsync(loan.BookId, ct, writes, save: keepsHistory == false);
        // A reader who keeps no history: the loan forgets them now. LoanReturned is already in the
        // outbox, so LoansAnonymised follows it and consumers forget what it just told them.
        if (keepsHistory == false)
        {
            await anonymiser.AnonymiseAsync([loan.Id], now, ct);
            loan.UserId = null;
            loan.AnonymisedAt = now;
        }
        var response = LoanResponse.From(loan, title!.Name, copy?.Barcode, now);
        return Outcome.Ok(copy is null
            ? response
            : new CheckInResponse(response, CopyResponse.From(copy, null, includeBorrower: true), CheckInRouting.Name(route),
                readied is null ? null : await holds.ToResponseAsync(readied, title.Name, ct), fine is null ? null : FineResponse.From(fine)));
    }

    /// <summary>
    /// A checked-out copy declared lost (<c>PATCH /api/copies/{id}</c> status lost, in the caller's
    /// transaction, title and copy locked): its loan ends and the reader is charged the rule's lost
    /// fee and, as a separate fine, the overdue fine accrued until now. Both, as Koha does by default
    /// (WhenLostForgiveFine off): the fee replaces the copy, the overdue fine is for keeping it past
    /// its due date, which happened either way; it stops growing here since the loan ends. FOLIO
    /// charges the fee and leaves the overdue fine to a return that, for a lost copy, never comes.
    /// The loan is announced returned (LoanReturned) since it is over for every consumer.
    /// </summary>
    public async Task<IReadOnlyList<Fine>> DeclareLostAsync(Copy copy, DateTimeOffset now, CancellationToken ct)
    {
        var loan = await db.Loans.FromSql($"SELECT * FROM loans WHERE copy_id = {copy.Id} AND returned_at IS NULL FOR UPDATE").AsNoTracking().SingleOrDefaultAsync(ct);
        if (loan is null)
        {
            return [];
        }
        await db.Loans.Where(l => l.Id == loan.Id).ExecuteUpdateAsync(s => s.SetProperty(l => l.ReturnedAt, now), ct);
        loan.ReturnedAt = now;
        // An open loan always names its reader (only returned loans are anonymised).
        db.AddEvent(new LoanReturned(loan.Id, loan.BookId, loan.UserId!.Value, now));
        var current = await settings.CurrentAsync(ct);
        var rule = await RuleOfAsync(loan, current, ct);
        var name = await db.Titles.Where(t => t.Id == loan.BookId).Select(t => t.Name).SingleAsync(ct);
        var fines = new List<Fine>();
        if (accounts.ChargeOverdue(loan, name, rule, current.Calendar, now) is { } overdue)
        {
            fines.Add(overdue);
        }
        if (rule.LostFee > 0)
        {
            fines.Add(accounts.Charge(loan.UserId.Value, loan.Id, loan.BookId, name, FineKinds.Lost, rule.LostFee, now));
        }
        await db.SaveChangesAsync(ct);
        return fines;
    }

    /// <summary><c>POST /api/loans/{id}/renew</c>, under the rule the loan was made under and the calendar in force.</summary>
    public async Task<Outcome> RenewAsync(Loan loan, DateTimeOffset now, CancellationToken ct)
    {
        if (loan.ReturnedAt is not null)
        {
            return Outcome.Conflict("Already returned", "A returned loan cannot be renewed.");
        }
        // The title before the loan, as a return and a declared loss lock them (title, then loan):
        // updating the loan first and the title's availability after it closed a cycle with a
        // return of the same loan. Taken before the checks: a hold placed meanwhile (it locks the
        // title FOR UPDATE) is then either seen below or placed after this renewal. The lock is
        // the one the availability UPDATE takes anyway.
        await db.Database.ExecuteSqlAsync($"SELECT 1 FROM titles WHERE id = {loan.BookId} FOR NO KEY UPDATE", ct);
        var current = await settings.CurrentAsync(ct);
        var rule = await RuleOfAsync(loan, current, ct);
        var othersWaiting = await holds.AnyoneElseWaitsForAsync(loan, current.Rules, ct);
        if (LoanPolicy.RenewalRefusal(loan.DueAt, loan.Renewals, othersWaiting, now, rule) is { } refusal)
        {
            return Outcome.Refused(refusal);
        }
        // The loan's own reasons (409) first, then the reader's blocks (403).
        if (await accounts.RefusalAsync(loan.UserId!.Value, BlockedAction.Renewals, now, ct) is { } blocked)
        {
            return Outcome.Refused(blocked);
        }
        var newDue = current.Calendar.RenewedDueAt(loan.DueAt, now, rule.RenewalDays);
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
        // When, for the circulation report (the loan keeps only the count).
        db.LoanRenewals.Add(new LoanRenewal { LoanId = loan.Id, BookId = loan.BookId, RenewedAt = now, DueAt = newDue });
        db.AddEvent(new LoanRenewed(loan.Id, loan.BookId, loan.UserId!.Value, newDue, loan.Renewals));
        // Saves the renewal and its event with the availability event.
        await shelf.PublishAvailabilityAsync(loan.BookId, ct);
        var name = await db.Titles.Where(t => t.Id == loan.BookId).Select(t => t.Name).SingleAsync(ct);
        var barcode = await db.Copies.Where(c => c.Id == loan.CopyId).Select(c => c.Barcode).SingleOrDefaultAsync(ct);
        return Outcome.Ok(LoanResponse.From(loan, name, barcode, now));
    }

    /// <summary>The rule a loan was made under (its version and index); the current match for a loan from before rules.</summary>
    public async Task<CirculationRule> RuleOfAsync(Loan loan, CirculationSettingsSnapshot current, CancellationToken ct)
    {
        if (loan.RuleVersion is { } version && loan.RuleIndex is { } index)
        {
            var rules = version == current.Rules.Version ? current.Rules : await settings.RulesAsync(version, ct);
            if (index < rules.Rules.Count)
            {
                return rules.Rules[index];
            }
        }
        var group = await db.Readers.Where(r => r.Id == loan.UserId).Select(r => r.PatronGroupId).SingleOrDefaultAsync(ct);
        var loanType = await db.Copies.Where(c => c.Id == loan.CopyId).Select(c => c.LoanType).SingleOrDefaultAsync(ct) ?? LoanTypes.Standard;
        return current.Rules.Resolve(group, loanType).Rule;
    }

    /// <summary>
    /// A round trip that locks the reader (one lending at a time per reader keeps the loan limit
    /// under concurrency) and then counts their standing: a statement of its own, so its snapshot
    /// is taken once the lock is held and counts a loan that another request for this reader
    /// committed while this one waited. The caller adds what else it reads, and reads these two first.
    /// </summary>
    private RoundTrip ReaderTrip(Guid userId, DateTimeOffset now) => new RoundTrip(db)
        .Add("SELECT * FROM readers WHERE id = $1 FOR UPDATE", userId)
        .Add(ReaderAccounts.StandingCountsSqlPositional, userId, now);

    /// <summary>Locks and checks the reader (<see cref="ReaderTrip"/>, alone).</summary>
    private async Task<(Reader? Reader, ReaderStanding? Standing, Outcome? Refusal)> LockReaderAsync(Guid userId, DateTimeOffset now, CancellationToken ct)
    {
        Reader? reader;
        ReaderAccounts.StandingCounts? counts;
        await using (var results = await ReaderTrip(userId, now).RunAsync(ct))
        {
            reader = await results.EntityAsync<Reader>(ct);
            counts = await results.RowAsync(ReaderAccounts.StandingCounts.Read, ct);
        }
        var (standing, refusal) = await CheckReaderAsync(reader, counts!, now, ct);
        return (reader, standing, refusal);
    }

    /// <summary>The reader's checks: unknown (404), deactivated, or blocked from borrowing by fines, overdue loans or a librarian (403).</summary>
    private async Task<(ReaderStanding? Standing, Outcome? Refusal)> CheckReaderAsync(Reader? reader, ReaderAccounts.StandingCounts counts, DateTimeOffset now, CancellationToken ct)
    {
        if (reader is null)
        {
            return (null, Outcome.NotFound("reader"));
        }
        if (LoanPolicy.ReaderRefusal(reader.Active) is { } inactive)
        {
            return (null, Outcome.Refused(inactive));
        }
        var standing = await accounts.StandingAsync(counts, reader.Id, maxActiveLoans: null, now, ct);
        return accounts.Refusal(standing, BlockedAction.Borrowing, now) is { } blocked
            ? (standing, Outcome.Refused(blocked))
            : (standing, null);
    }

    /// <summary>A copy by its barcode, whatever the case.</summary>
    public Task<Copy?> FindByBarcodeAsync(string barcode, CancellationToken ct)
    {
        var normalised = barcode.ToLowerInvariant();
        // lower(barcode) = lower(...): the expression of the unique index, so PostgreSQL uses it.
#pragma warning disable CA1862 // string.Equals(..., OrdinalIgnoreCase) has no SQL translation
        return db.Copies.AsNoTracking().SingleOrDefaultAsync(c => c.Barcode.ToLower() == normalised, ct);
#pragma warning restore CA1862
    }
}
