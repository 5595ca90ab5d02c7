namespace Library.LendingService.Loans;

/// <summary>The library's lending rules (section <c>Lending</c>), with the contract's defaults.</summary>
public sealed class LendingPolicy
{
    public const string SectionName = "Lending";

    public int MaxLoanDays { get; set; } = 30;
    public int MaxActiveLoans { get; set; } = 5;
    public int MaxRenewals { get; set; } = 2;
    public int HoldPickupDays { get; set; } = 3;

    /// <summary>How long the first answer to an Idempotency-Key is kept.</summary>
    public TimeSpan IdempotencyWindow { get; set; } = TimeSpan.FromHours(24);
}

/// <summary>The rules as plain functions (no I/O), so they are tested on their own.</summary>
public static class LoanRules
{
    public const string Active = "active";
    public const string Overdue = "overdue";
    public const string Returned = "returned";

    public static readonly string[] Statuses = [Active, Overdue, Returned];

    public static DateTimeOffset DueAt(DateTimeOffset borrowedAt, int days) => borrowedAt.AddDays(days);

    public static string Status(DateTimeOffset dueAt, DateTimeOffset? returnedAt, DateTimeOffset now) =>
        returnedAt is not null ? Returned : dueAt < now ? Overdue : Active;

    /// <summary>A renewal adds the loan's period to its current due date.</summary>
    public static DateTimeOffset RenewedDueAt(DateTimeOffset dueAt, int days) => dueAt.AddDays(days);

    /// <summary>Why a renewal is refused, or null when it is allowed.</summary>
    public static string? RenewalRefusal(DateTimeOffset dueAt, int renewals, bool othersWaiting, DateTimeOffset now, LendingPolicy policy) =>
        dueAt < now ? "The loan is overdue: return it instead."
        : renewals >= policy.MaxRenewals ? $"The loan has been renewed {renewals} times, the most allowed."
        : othersWaiting ? "Other readers are waiting for this title."
        : null;

    /// <summary>
    /// When a copy is expected back for someone who joins the queue now: the (k+1)-th earliest
    /// due date, k being the readers already waiting; null if not that many copies are out.
    /// </summary>
    public static DateTimeOffset? NextAvailableAt(IReadOnlyList<DateTimeOffset> dueDatesAscending, int waiting) =>
        waiting < dueDatesAscending.Count ? dueDatesAscending[waiting] : dueDatesAscending.Count > 0 ? dueDatesAscending[^1] : null;

    public static int OnShelf(int total, int onLoan, int held) => Math.Max(0, total - onLoan - held);
}
