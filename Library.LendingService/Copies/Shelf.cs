using Library.Contracts.Events;
using Library.EventBus;
using Library.LendingService.Data;
using Library.LendingService.Loans;
using Library.LendingService.Rules;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;

namespace Library.LendingService.Copies;

/// <summary>A title's copies as the catalog shows them: the loanable ones it owns, and those on the shelf.</summary>
public sealed record ShelfCounts(int Total, int OnShelf);

/// <summary>
/// The copies of a title as stock: the one place that counts them, adds and withdraws them, and
/// tells the catalog (BookAvailabilityChanged, in the caller's transaction). <c>totalCopies</c> is
/// the loanable copies the library still has (not withdrawn, not lost, not marked surplus); a
/// copy is on the shelf when it is <c>available</c> and of a loanable type.
/// </summary>
public sealed class Shelf(LendingDbContext db, ILogger<Shelf> logger)
{
    private static readonly string[] Loanable = [.. LoanTypes.LoanableNames];

    /// <summary>
    /// A title's counts as its row keeps them (<see cref="Title.LoanableCopies"/>, <see cref="Title.CopiesOnShelf"/>):
    /// what committed before this statement began, with this transaction's own changes.
    /// </summary>
    public async Task<ShelfCounts> CountAsync(Guid bookId, CancellationToken ct) =>
        await db.Database.SqlQuery<ShelfCounts>($"SELECT loanable_copies AS total, copies_on_shelf AS on_shelf FROM titles WHERE id = {bookId}").SingleAsync(ct);

    /// <summary>A title's counts counted from its copies (what the kept counts must equal).</summary>
    public async Task<ShelfCounts> CountCopiesAsync(Guid bookId, CancellationToken ct) =>
        await db.Database.SqlQueryRaw<ShelfCounts>(CountCopiesSql, bookId).SingleAsync(ct);

    private static readonly string CountCopiesSql =
        $"SELECT coalesce(sum(total), 0)::int AS total, coalesce(sum(on_shelf), 0)::int AS on_shelf FROM ({CountedSql("copies", "+")}) AS counted WHERE book_id = {{0}}";

    /// <summary>
    /// The trigger function that keeps a title's counts, as the code defines it today; the database
    /// runs the one its migrations created (20261203085029_TitleCopyCounts, frozen there), and
    /// UpgradeTests fails when the two differ: a change here ships in a new migration.
    /// After each statement on <c>copies</c>, the
    /// change it made to each title's loanable copies and copies on the shelf is added to the title's
    /// row, in the statement's transaction. Before, every borrow and return counted the title's copies
    /// (a scan of all of them: 1,000 for a popular title in the bench, the borrow path's costliest
    /// statement); now the availability UPDATE reads them off the row it writes. One mechanism below
    /// every path that changes a copy (the desk, holds, stock, the API, raw SQL), so none can forget
    /// it. A copy counts when its loan type is loanable; it is in <c>total</c> unless withdrawn, lost
    /// or marked to be withdrawn at check-in, and on the shelf when available. Statement-level, with
    /// transition tables: a stock change adding a thousand copies updates its title once. The titles
    /// are updated in the order of their IDs, so two statements touching several titles cannot
    /// deadlock on them; a statement that changes no count writes no title; a TRUNCATE zeroes
    /// every title's counts.
    /// </summary>
    public static string CountsTriggerSql()
    {
        string Apply(string changes) => $"""
                FOR d IN SELECT book_id, sum(total)::int AS total, sum(on_shelf)::int AS on_shelf
                         FROM ({changes}) AS changes
                         GROUP BY book_id HAVING sum(total) <> 0 OR sum(on_shelf) <> 0 ORDER BY book_id LOOP
                    UPDATE titles SET loanable_copies = loanable_copies + d.total, copies_on_shelf = copies_on_shelf + d.on_shelf
                    WHERE id = d.book_id;
                END LOOP;
            """;
        var inserted = Apply(CountedSql("new_rows", "+"));
        var deleted = Apply(CountedSql("old_rows", "-"));
        var updated = Apply(CountedSql("new_rows", "+") + " UNION ALL " + CountedSql("old_rows", "-"));
        return $"""
            DECLARE
                d record;
            BEGIN
                IF TG_OP = 'TRUNCATE' THEN
                    UPDATE titles SET loanable_copies = 0, copies_on_shelf = 0 WHERE loanable_copies <> 0 OR copies_on_shelf <> 0;
                ELSIF TG_OP = 'INSERT' THEN
                {inserted}
                ELSIF TG_OP = 'DELETE' THEN
                {deleted}
                ELSE
                {updated}
                END IF;
                RETURN NULL;
            END;
            """;
    }

    /// <summary>
    /// Each loanable copy of <paramref name="rows"/> as what it adds to its title's counts (with
    /// <paramref name="sign"/> "-", what it takes away): the one definition of what counts.
    /// </summary>
    public static string CountedSql(string rows, string sign)
    {
        var loanable = string.Join(", ", LoanTypes.LoanableNames.Select(CopyStatus.Literal));
        return $"""
            SELECT book_id, {sign}(status NOT IN ({CopyStatus.Literal(CopyStatus.Withdrawn)}, {CopyStatus.Literal(CopyStatus.Lost)}) AND NOT withdraw_on_check_in)::int AS total,
                   {sign}(status = {CopyStatus.Literal(CopyStatus.Available)})::int AS on_shelf
            FROM {rows} WHERE loan_type IN ({loanable})
            """;
    }

    /// <summary>
    /// A new availability version for the title, with its copy counts as they are after this
    /// transaction's changes: one statement, after the caller's writes in <paramref name="first"/>
    /// if any, in the same round trip. Every change of a title's availability gets a new version,
    /// so the catalog keeps the newest. The counts come off the row the UPDATE writes: when it had
    /// to wait for another transaction's lock on the title, it goes on with the row that transaction
    /// committed, counts included (a count of the copies in the same statement read the snapshot
    /// taken before the wait and missed that transaction's copies).
    /// </summary>
    private async Task<(long Version, ShelfCounts Counts)> BumpVersionAndCountAsync(Guid bookId, RoundTrip? first, CancellationToken ct)
    {
        var trip = (first ?? new RoundTrip(db)).Add(
            "UPDATE titles SET availability_version = availability_version + 1 WHERE id = $1 RETURNING availability_version, loanable_copies, copies_on_shelf",
            bookId);
        await using var results = await trip.RunAsync(ct);
        return await results.RowAsync(row => ((long, ShelfCounts)?)(row.GetInt64(0), new ShelfCounts(row.GetInt32(1), row.GetInt32(2))), ct)
            ?? throw new InvalidOperationException($"No title {bookId} to publish the availability of.");
    }

    /// <summary>Titles with no loanable copy on the shelf (for the unavailable-books list).</summary>
    public IQueryable<Title> TitlesWithNoneOnShelf() =>
        db.Titles.Where(t => !t.Deleted && t.CopiesOnShelf == 0);

    /// <summary>A copy on the shelf of one of <paramref name="loanTypes"/>, locked for this transaction; standard copies first, oldest first.</summary>
    public async Task<Copy?> TakeFromShelfAsync(Guid bookId, IReadOnlyCollection<string> loanTypes, CancellationToken ct) =>
        (await TakeAsync(bookId, loanTypes, typesOnShelf: false, ct)).Copy;

    /// <summary>
    /// <see cref="TakeFromShelfAsync"/>, and in the same round trip the loan types of the copies on
    /// the shelf (read after the take), which tell a borrow that took none why: none left, or
    /// none of a type lent to this reader.
    /// </summary>
    public Task<(Copy? Copy, IReadOnlyList<string> TypesOnShelf)> TakeFromShelfOrSayWhyAsync(Guid bookId, IReadOnlyCollection<string> loanTypes, CancellationToken ct) =>
        TakeAsync(bookId, loanTypes, typesOnShelf: true, ct);

    /// <summary>
    /// SKIP LOCKED: concurrent borrowers of one title each lock a different copy instead of
    /// queueing on the same one; when every copy on the shelf is locked, there is none left.
    /// Standard copies (nearly all) first, read in ix_copies_on_shelf's order: one ORDER BY over
    /// every allowed type sorted all the title's copies on the shelf for each borrow (1.3 ms of
    /// PostgreSQL at 1,000 copies, its costliest statement); the other allowed types only when no
    /// standard copy was free (the second CTE's NOT EXISTS is a one-time test of the first). One
    /// statement: a borrow refused in a burst (every copy locked by the winners) sent the two
    /// takes and the types on the shelf as three round trips. Not tracked: the taker changes its
    /// status by its own statement (WaitingList.SetStatus); tracked, the context's SaveChanges
    /// wrote the row a second time (one more UPDATE per borrow, 0.56 ms).
    /// </summary>
    private async Task<(Copy? Copy, IReadOnlyList<string> TypesOnShelf)> TakeAsync(Guid bookId, IReadOnlyCollection<string> loanTypes, bool typesOnShelf, CancellationToken ct)
    {
        var trip = new RoundTrip(db).Add(TakeSql, bookId, loanTypes.ToArray());
        if (typesOnShelf)
        {
            // One probe of ix_copies_on_shelf per known type, not a DISTINCT over every copy on
            // the shelf (a thousand for a popular title): cheap for the borrows that took one.
            trip.Add(TypesOnShelfSql, bookId, LoanTypeNames);
        }
        await using var results = await trip.RunAsync(ct);
        var copy = await results.EntityAsync<Copy>(ct);
        return (copy, typesOnShelf ? await results.RowsAsync(r => r.GetString(0), ct) : []);
    }

    private static readonly string[] LoanTypeNames = LoanTypes.All.Select(t => t.Name).ToArray();

    private const string TypesOnShelfSql = """
        SELECT t.name FROM unnest($2::text[]) AS t(name)
        WHERE EXISTS (SELECT 1 FROM copies c WHERE c.book_id = $1 AND c.status = 'available' AND c.loan_type = t.name)
        ORDER BY 1
        """;

    private const string TakeSql = $"""
        WITH standard AS (
            SELECT * FROM copies
            WHERE book_id = $1 AND status = 'available' AND loan_type = '{LoanTypes.Standard}' AND '{LoanTypes.Standard}' = ANY($2)
            ORDER BY created_at, id
            LIMIT 1 FOR UPDATE SKIP LOCKED),
        other AS (
            SELECT * FROM copies
            WHERE book_id = $1 AND status = 'available' AND loan_type = ANY($2) AND loan_type <> '{LoanTypes.Standard}'
              AND NOT EXISTS (SELECT 1 FROM standard)
            ORDER BY created_at, id
            LIMIT 1 FOR UPDATE SKIP LOCKED)
        SELECT * FROM standard
        UNION ALL
        SELECT * FROM other
        """;

    /// <summary>Adds <paramref name="count"/> standard copies with generated barcodes.</summary>
    public Task<int> AddGeneratedAsync(Guid bookId, int count, DateTimeOffset now, CancellationToken ct) =>
        count <= 0 ? Task.FromResult(0) : db.Database.ExecuteSqlAsync($"""
            INSERT INTO copies (id, book_id, barcode, loan_type, status, withdraw_on_check_in, created_at, updated_at)
            SELECT uuid_v7(), {bookId}, next_copy_barcode(), 'standard', 'available', FALSE, {now}, {now}
            FROM generate_series(1, {count})
            """, ct);

    /// <summary>
    /// Brings the title's loanable copies to <paramref name="target"/> (the catalog's stock):
    /// raising it first keeps copies marked surplus, then adds copies; lowering it withdraws
    /// copies from the shelf first (then missing, then in repair) and marks the surplus of those
    /// out (lent or set aside) for withdrawal when they come back. The title's row must be locked.
    /// </summary>
    public async Task ReconcileAsync(Guid bookId, int target, DateTimeOffset now, CancellationToken ct)
    {
        // Counted from the copies, not read off the title: a stock change decides how many copies
        // to add or withdraw, so a count that drifted (triggers disabled by hand, a data-only
        // restore) must not turn into wrong copies. Rare, and under the title's lock. A drift is
        // repaired here (the triggers then add this change's deltas to the right counts) and
        // logged, with the trace of the change that found it.
        var counted = await CountCopiesAsync(bookId, ct);
        var row = await CountAsync(bookId, ct);
        if (row != counted)
        {
            logger.LogWarning("Title {BookId}: its row kept {KeptLoanable} loanable / {KeptOnShelf} on the shelf, its copies count {Loanable} / {OnShelf}; the row is set to the count",
                bookId, row.Total, row.OnShelf, counted.Total, counted.OnShelf);
            await db.Database.ExecuteSqlAsync($"UPDATE titles SET loanable_copies = {counted.Total}, copies_on_shelf = {counted.OnShelf} WHERE id = {bookId}", ct);
        }
        var difference = target - counted.Total;
        if (difference > 0)
        {
            var kept = await db.Database.ExecuteSqlAsync($"""
                UPDATE copies SET withdraw_on_check_in = FALSE, updated_at = {now}
                WHERE id IN (SELECT id FROM copies WHERE book_id = {bookId} AND withdraw_on_check_in AND loan_type = ANY({Loanable})
                             ORDER BY created_at LIMIT {difference})
                """, ct);
            await AddGeneratedAsync(bookId, difference - kept, now, ct);
        }
        else if (difference < 0)
        {
            var withdrawn = await db.Database.ExecuteSqlAsync($"""
                UPDATE copies SET status = 'withdrawn', updated_at = {now}
                WHERE id IN (SELECT id FROM copies
                             WHERE book_id = {bookId} AND status IN ('available', 'missing', 'in-repair') AND loan_type = ANY({Loanable})
                             ORDER BY CASE status WHEN 'available' THEN 0 WHEN 'missing' THEN 1 ELSE 2 END, created_at DESC
                             LIMIT {-difference})
                """, ct);
            await db.Database.ExecuteSqlAsync($"""
                UPDATE copies SET withdraw_on_check_in = TRUE, updated_at = {now}
                WHERE id IN (SELECT id FROM copies
                             WHERE book_id = {bookId} AND status IN ('checked-out', 'awaiting-pickup') AND NOT withdraw_on_check_in AND loan_type = ANY({Loanable})
                             ORDER BY status = 'checked-out' DESC, created_at DESC
                             LIMIT {-difference - withdrawn})
                """, ct);
        }
    }

    /// <summary>
    /// Puts the title's availability after this transaction's changes in the outbox, and saves the
    /// caller's pending changes with it (one SaveChanges per use case: callers need not save first).
    /// <paramref name="first"/>: the caller's writes that change the counts (statements without
    /// results, e.g. a copy's new status), sent in the same round trip just before the counts.
    /// <paramref name="save"/> false: the caller saves (the desk's use cases leave it to
    /// <see cref="Idempotency.RunAsync"/>, which saves with the request's own record).
    /// </summary>
    public async Task PublishAvailabilityAsync(Guid bookId, CancellationToken ct, RoundTrip? first = null, bool save = true)
    {
        var (version, counts) = await BumpVersionAndCountAsync(bookId, first, ct);
        DateTimeOffset? next = null;
        if (counts.OnShelf == 0)
        {
            // The due dates read below include a loan this transaction has not saved yet.
            if (db.ChangeTracker.HasChanges())
            {
                await db.SaveChangesAsync(ct);
            }
            var waiting = await db.Holds.CountAsync(h => h.BookId == bookId && h.Status == HoldStatus.Waiting, ct);
            var dues = await db.Loans.Where(l => l.BookId == bookId && l.ReturnedAt == null).OrderBy(l => l.DueAt)
                .Select(l => l.DueAt).Take(waiting + 1).ToListAsync(ct);
            next = Holds.WaitingList.NextAvailableAt(dues, waiting);
        }
        db.AddEvent(new BookAvailabilityChanged(bookId, counts.Total, counts.OnShelf, next, version));
        if (save)
        {
            await db.SaveChangesAsync(ct);
        }
    }
}
