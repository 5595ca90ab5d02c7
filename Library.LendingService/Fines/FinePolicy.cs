using Library.LendingService.Calendar;
using Library.LendingService.Rules;

namespace Library.LendingService.Fines;

/// <summary>
/// Configuration (section <c>Circulation</c>) of the reader's account: the currency fines are
/// counted in (minor units of it) and the balance at which a reader may no longer borrow, renew
/// or place holds.
/// </summary>
public sealed class FineOptions
{
    public const string SectionName = "Circulation";

    /// <summary>ISO 4217 code; amounts everywhere are integers in its minor unit (cents for EUR).</summary>
    public string Currency { get; set; } = "EUR";

    /// <summary>
    /// An open balance at or over this (minor units) blocks the reader: 10.00 by default, Koha's
    /// <c>noissuescharge</c> order of magnitude, so a day or two of overdue fines alone does not.
    /// </summary>
    public long BlockThreshold { get; set; } = 1000;
}

/// <summary>What a fine is for, and where it stands; the same words as the <c>fines</c> table's CHECKs.</summary>
public static class FineKinds
{
    public const string Overdue = "overdue";
    public const string Lost = "lost";
    public static readonly string[] All = [Overdue, Lost];
}

public static class FineStatus
{
    public const string Open = "open";
    public const string Paid = "paid";
    public const string Waived = "waived";
    public static readonly string[] All = [Open, Paid, Waived];
}

/// <summary>
/// The money side of circulation as plain functions (no clock, no I/O): what an overdue loan owes
/// and what a payment may be.
/// </summary>
public static class FinePolicy
{
    /// <summary>
    /// The overdue fine of a loan due at <paramref name="dueAt"/> and back (or still out) at
    /// <paramref name="until"/>: <c>finePerDay</c> for every OPEN library day after the due date
    /// (closed days never count, <see cref="LibraryCalendar.OpenDaysBetween"/>), capped at
    /// <c>maxFinePerLoan</c>. The grace period forgives a loan late by at most that many open days;
    /// past it every late open day is charged, as Koha and FOLIO do (the grace is a courtesy for a
    /// day or two, not a discount on long delays). A cap of 0 means no cap: the rules' seed has
    /// <c>finePerDay</c> 0 too, and a librarian who sets a rate without a cap wants the rate.
    /// </summary>
    public static long OverdueFine(DateTimeOffset dueAt, DateTimeOffset until, CirculationRule rule, LibraryCalendar calendar) =>
        OverdueFine(calendar.OpenDaysBetween(dueAt, until), rule.GracePeriodDays, rule.FinePerDay, rule.MaxFinePerLoan);

    /// <summary>The same from the count of late open days.</summary>
    public static long OverdueFine(int lateOpenDays, int graceDays, long finePerDay, long maxFinePerLoan)
    {
        if (lateOpenDays <= 0 || lateOpenDays <= graceDays || finePerDay <= 0)
        {
            return 0;
        }
        // Rates and caps are validated to at most 10^8 and days to a few thousand: no overflow,
        // but saturate anyway rather than wrap if a rule ever slips through.
        var amount = lateOpenDays > long.MaxValue / finePerDay ? long.MaxValue : lateOpenDays * finePerDay;
        return maxFinePerLoan > 0 ? Math.Min(amount, maxFinePerLoan) : amount;
    }

    /// <summary>What is still owed on a fine.</summary>
    public static long Outstanding(long amount, long paidAmount) => amount - paidAmount;

    /// <summary>Why a payment of <paramref name="payment"/> on a fine owing <paramref name="outstanding"/> is refused, or null.</summary>
    public static string? PaymentRefusal(long? payment, long outstanding) =>
        payment is null or <= 0 ? "amount must be a positive whole number of minor units (cents)."
        : payment > outstanding ? $"amount {payment} is over the balance of this fine ({outstanding}); partial payments are allowed, overpayments are not."
        : null;
}
