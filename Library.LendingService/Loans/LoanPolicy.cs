using System.Linq.Expressions;
using Library.LendingService.Data;
using Library.LendingService.Rules;

namespace Library.LendingService.Loans;

/// <summary>
/// Configuration (section <c>Lending</c>): it only seeds the catch-all circulation rule until an
/// admin saves rules of their own, and sets how long Idempotency-Key answers are kept.
/// </summary>
public sealed class LendingOptions
{
    public const string SectionName = "Lending";

    public int MaxLoanDays { get; set; } = 30;
    public int MaxActiveLoans { get; set; } = 5;
    public int MaxRenewals { get; set; } = 2;
    public int HoldPickupDays { get; set; } = 3;

    /// <summary>The library's time zone until an admin saves a calendar (an IANA name).</summary>
    public string TimeZone { get; set; } = "UTC";

    /// <summary>How long the first answer to an Idempotency-Key is kept.</summary>
    public TimeSpan IdempotencyWindow { get; set; } = TimeSpan.FromHours(24);
}

public enum RefusalKind
{
    Invalid,
    Forbidden,
    NotFound,
    Conflict,
}

/// <summary>Why the desk says no: its kind (the HTTP status follows from it), a title and the reason in words.</summary>
/// <remarks>A refusal by the reader's blocks names them (<paramref name="Blocks"/>): the 403 carries them as its <c>blocks</c> member.</remarks>
public sealed record Refusal(RefusalKind Kind, string Title, string Reason, string? Field = null, IReadOnlyList<Library.LendingService.Blocks.ReaderBlock>? Blocks = null);

/// <summary>
/// Who may borrow and renew what, and a loan's status, as plain functions (no I/O): every
/// refusal reason of lending about the copy and the loan is here, in the order the desk checks
/// them; the reader's blocks (fines, overdue loans, the loan limit, manual) are
/// <see cref="Library.LendingService.Blocks.BlockPolicy"/>'s.
/// </summary>
public static class LoanPolicy
{
    public const string Active = "active";
    public const string Overdue = "overdue";
    public const string Returned = "returned";

    public static readonly string[] Statuses = [Active, Overdue, Returned];

    /// <summary>The one definition of overdue: still out after its due date.</summary>
    public static bool IsOverdue(DateTimeOffset dueAt, DateTimeOffset? returnedAt, DateTimeOffset now) => returnedAt is null && dueAt < now;

    /// <summary>The same, for queries (translated to SQL).</summary>
    public static Expression<Func<Loan, bool>> OverdueAt(DateTimeOffset now) => l => l.ReturnedAt == null && l.DueAt < now;

    public static Expression<Func<Loan, bool>> ActiveAt(DateTimeOffset now) => l => l.ReturnedAt == null && l.DueAt >= now;

    public static string Status(DateTimeOffset dueAt, DateTimeOffset? returnedAt, DateTimeOffset now) =>
        returnedAt is not null ? Returned : IsOverdue(dueAt, returnedAt, now) ? Overdue : Active;

    /// <summary>
    /// A deactivated account, before any copy is looked at. Overdue loans, fines, the loan limit and
    /// manual blocks are the reader's blocks (<see cref="Library.LendingService.Blocks.BlockPolicy"/>), all named in one 403.
    /// </summary>
    public static Refusal? ReaderRefusal(bool active) =>
        !active ? new(RefusalKind.Forbidden, "Reader blocked", "This reader's account is deactivated.") : null;

    /// <summary>
    /// Refusals of lending a copy of <paramref name="loanType"/> under <paramref name="match"/>'s rule for
    /// <paramref name="days"/> days (the rule's loan limit is a block: <see cref="Library.LendingService.Blocks.BlockPolicy"/>).
    /// </summary>
    public static Refusal? LendRefusal(RuleMatch match, string loanType, int days)
    {
        var rule = match.Rule;
        if (!LoanTypes.IsLoanable(loanType) || !rule.Loanable)
        {
            return new(RefusalKind.Conflict, "Not loanable",
                !LoanTypes.IsLoanable(loanType)
                    ? $"This copy is a {loanType} copy: it is used in the library and never lent."
                    : $"Rule {match.Index} does not lend {loanType} copies to this reader's patron group.");
        }
        if (days < 1 || days > rule.MaxLoanDays)
        {
            return new(RefusalKind.Invalid, "Bad loan period", $"days must be between 1 and {rule.MaxLoanDays} (rule {match.Index}).", "days");
        }
        return null;
    }

    /// <summary>Why a copy in <paramref name="copyStatus"/> cannot be checked out to <paramref name="reader"/>, or null.</summary>
    public static Refusal? CopyRefusal(string copyStatus, Guid? setAsideFor, Guid reader) => copyStatus switch
    {
        Copies.CopyStatus.Available => null,
        Copies.CopyStatus.AwaitingPickup when setAsideFor == reader => null,
        Copies.CopyStatus.AwaitingPickup => new(RefusalKind.Conflict, "Held for another reader", "This copy is set aside for another reader's hold."),
        Copies.CopyStatus.CheckedOut => new(RefusalKind.Conflict, "Already checked out", "This copy is checked out: check it in first."),
        _ => new(RefusalKind.Conflict, "Copy not available", $"This copy is {copyStatus}: it cannot be lent."),
    };

    /// <summary>Why a renewal is refused, or null when it is allowed.</summary>
    public static Refusal? RenewalRefusal(DateTimeOffset dueAt, int renewals, bool othersWaiting, DateTimeOffset now, CirculationRule rule) =>
        dueAt < now ? new(RefusalKind.Conflict, "Cannot renew", "The loan is overdue: return it instead.")
        : renewals >= rule.MaxRenewals ? new(RefusalKind.Conflict, "Cannot renew", $"The loan has been renewed {renewals} times, the most allowed.")
        : othersWaiting ? new(RefusalKind.Conflict, "Cannot renew", "Other readers are waiting for this title.")
        : null;
}
