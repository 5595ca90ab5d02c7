using Library.Contracts.Events;
using Library.EventBus;
using Library.LendingService.Blocks;
using Library.LendingService.Calendar;
using Library.LendingService.Data;
using Library.LendingService.Desk;
using Library.LendingService.Loans;
using Library.LendingService.Rules;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Library.LendingService.Fines;

public sealed record FineResponse(Guid Id, Guid? UserId, Guid? LoanId, Guid BookId, string Title, string Kind, long Amount, long PaidAmount,
    string Status, DateTimeOffset CreatedAt)
{
    public static FineResponse From(Fine f) => new(f.Id, f.UserId, f.LoanId, f.BookId, f.Title, f.Kind, f.Amount, f.PaidAmount, f.Status, f.CreatedAt);
}

/// <summary>An overdue loan still out: the fine it would be charged if it came back now (not yet owed).</summary>
public sealed record AccruingFine(Guid LoanId, Guid BookId, string Title, DateTimeOffset DueAt, long Amount);

/// <summary>
/// <c>GET /api/users/{id}/account</c>: the open balance (charged fines still owed), those fines, the
/// fines still growing on overdue loans, and every block, as each refusal names them.
/// </summary>
public sealed record AccountResponse(Guid UserId, long Balance, IReadOnlyList<FineResponse> OpenFines, string Currency, long BlockThreshold,
    IReadOnlyList<ReaderBlock> Blocks, IReadOnlyList<AccruingFine> Accruing);

/// <summary>
/// A reader's money and standing: charging fines (each with its <see cref="FineCharged"/> in the
/// caller's transaction), and the blocks computed from the data at the moment of asking.
/// </summary>
public sealed class ReaderAccounts(LendingDbContext db, IOptionsMonitor<FineOptions> options)
{
    public string Currency => options.CurrentValue.Currency;

    /// <summary>
    /// Adds a fine and its event to the caller's unit of work (saved with the caller's other
    /// changes, so the fine, the loan's end and the event commit or fail together).
    /// </summary>
    public Fine Charge(Guid userId, Guid? loanId, Guid bookId, string title, string kind, long amount, DateTimeOffset now)
    {
        var fine = new Fine { UserId = userId, LoanId = loanId, BookId = bookId, Title = title, Kind = kind, Amount = amount, CreatedAt = now };
        db.Fines.Add(fine);
        db.AddEvent(new FineCharged(fine.Id, userId, loanId, bookId, kind, amount, Currency, now));
        return fine;
    }

    /// <summary>The overdue fine of <paramref name="loan"/> back at <paramref name="now"/>, charged if there is one.</summary>
    public Fine? ChargeOverdue(Loan loan, string title, CirculationRule rule, LibraryCalendar calendar, DateTimeOffset now)
    {
        var amount = FinePolicy.OverdueFine(loan.DueAt, now, rule, calendar);
        return amount > 0 ? Charge(loan.UserId!.Value, loan.Id, loan.BookId, title, FineKinds.Overdue, amount, now) : null;
    }

    /// <summary>
    /// The reader's standing at <paramref name="now"/>; <paramref name="maxActiveLoans"/> is the loan limit in question (null: none).
    /// One round trip for the counts (every borrow, renewal and hold asks), a second only when the reader has manual blocks.
    /// </summary>
    public async Task<ReaderStanding> StandingAsync(Guid userId, int? maxActiveLoans, DateTimeOffset now, CancellationToken ct) =>
        await StandingAsync(await db.Database.SqlQueryRaw<StandingCounts>(StandingCountsSql, userId, now).SingleAsync(ct), userId, maxActiveLoans, now, ct);

    /// <summary>The standing from counts already read (<see cref="StandingCountsSql"/>, e.g. in a <see cref="RoundTrip"/>); a round trip more only for manual blocks.</summary>
    public async Task<ReaderStanding> StandingAsync(StandingCounts counts, Guid userId, int? maxActiveLoans, DateTimeOffset now, CancellationToken ct)
    {
        IReadOnlyList<ManualBlock> manual = counts.Manual == 0 ? [] : await db.Blocks.AsNoTracking()
            .Where(b => b.UserId == userId && (b.ExpiresAt == null || b.ExpiresAt > now))
            .Select(b => new ManualBlock(b.Id, b.Reason, b.ExpiresAt, b.Borrowing, b.Renewals, b.Holds, b.CreatedAt, b.CreatedBy)).ToListAsync(ct);
        return new ReaderStanding(counts.Balance, counts.Overdue, counts.Active, maxActiveLoans, manual);
    }

    /// <summary>What a reader's standing is counted from ({0}: the reader's ID, {1}: now): open balance, open loans, overdue loans, manual blocks in force.</summary>
    public const string StandingCountsSql = """
        SELECT (SELECT coalesce(sum(amount - paid_amount), 0) FROM fines WHERE user_id = {0} AND status = 'open')::bigint AS balance,
               (SELECT count(*) FROM loans WHERE user_id = {0} AND returned_at IS NULL)::int AS active,
               (SELECT count(*) FROM loans WHERE user_id = {0} AND returned_at IS NULL AND due_at < {1})::int AS overdue,
               (SELECT count(*) FROM blocks WHERE user_id = {0} AND (expires_at IS NULL OR expires_at > {1}))::int AS manual
        """;

    /// <summary><see cref="StandingCountsSql"/> with positional parameters, for a <see cref="RoundTrip"/>.</summary>
    public static readonly string StandingCountsSqlPositional = RoundTrip.Positional(StandingCountsSql);

    public sealed record StandingCounts(long Balance, int Active, int Overdue, int Manual)
    {
        /// <summary>A row of <see cref="StandingCountsSql"/>.</summary>
        public static StandingCounts Read(System.Data.Common.DbDataReader row) => new(row.GetInt64(0), row.GetInt32(1), row.GetInt32(2), row.GetInt32(3));
    }

    public IReadOnlyList<ReaderBlock> Blocks(ReaderStanding standing, DateTimeOffset now) =>
        BlockPolicy.Blocks(standing, options.CurrentValue.BlockThreshold, Currency, now);

    /// <summary>The 403 naming every block that stops <paramref name="action"/>, or null.</summary>
    public Refusal? Refusal(ReaderStanding standing, BlockedAction action, DateTimeOffset now) =>
        BlockPolicy.Refusal(Blocks(standing, now), action);

    public async Task<Refusal?> RefusalAsync(Guid userId, BlockedAction action, DateTimeOffset now, CancellationToken ct) =>
        Refusal(await StandingAsync(userId, maxActiveLoans: null, now, ct), action, now);

    /// <summary>The account: balance, open fines, what overdue loans would owe now, and the blocks (the loan limit of the reader's standard-copy rule).</summary>
    public async Task<AccountResponse> AccountAsync(Reader reader, CirculationSettingsSnapshot current, CirculationDesk desk, DateTimeOffset now, CancellationToken ct)
    {
        var limit = current.Rules.Resolve(reader.PatronGroupId, LoanTypes.Standard).Rule.MaxActiveLoans;
        var standing = await StandingAsync(reader.Id, limit, now, ct);
        var open = await db.Fines.AsNoTracking().Where(f => f.UserId == reader.Id && f.Status == FineStatus.Open)
            .OrderBy(f => f.CreatedAt).ThenBy(f => f.Id).ToListAsync(ct);
        var overdue = await db.Loans.AsNoTracking().Where(l => l.UserId == reader.Id).Where(LoanPolicy.OverdueAt(now))
            .Join(db.Titles, l => l.BookId, t => t.Id, (l, t) => new { Loan = l, t.Name }).OrderBy(x => x.Loan.DueAt).ToListAsync(ct);
        var accruing = new List<AccruingFine>();
        foreach (var row in overdue)
        {
            var rule = await desk.RuleOfAsync(row.Loan, current, ct);
            accruing.Add(new AccruingFine(row.Loan.Id, row.Loan.BookId, row.Name, row.Loan.DueAt, FinePolicy.OverdueFine(row.Loan.DueAt, now, rule, current.Calendar)));
        }
        return new AccountResponse(reader.Id, standing.Balance, open.Select(FineResponse.From).ToList(), Currency, options.CurrentValue.BlockThreshold,
            Blocks(standing, now), accruing);
    }
}
