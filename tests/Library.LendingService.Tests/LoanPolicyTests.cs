using Library.LendingService.Holds;
using Library.LendingService.Loans;
using Library.LendingService.Rules;

namespace Library.LendingService.Tests;

/// <summary>Who may borrow and renew what: every refusal of lending, as pure functions.</summary>
public sealed class LoanPolicyTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 23, 12, 0, 0, TimeSpan.Zero);
    private static readonly RuleSet Rules = RuleSet.Seed(maxLoanDays: 30, maxActiveLoans: 5, maxRenewals: 2, holdPickupDays: 3);
    private static readonly Guid Reader = Guid.CreateVersion7();

    private static RuleMatch Standard => Rules.Resolve(null, LoanTypes.Standard);

    [Theory]
    [InlineData(1, null, "active")]
    [InlineData(-1, null, "overdue")]
    [InlineData(-1, 0, "returned")]
    public void The_status_follows_the_due_date_and_the_return(int dueInDays, int? returnedDaysAgo, string expected) =>
        Assert.Equal(expected, LoanPolicy.Status(Now.AddDays(dueInDays), returnedDaysAgo is { } d ? Now.AddDays(-d) : null, Now));

    [Fact]
    public void A_deactivated_reader_is_refused_before_any_copy()
    {
        Assert.Null(LoanPolicy.ReaderRefusal(active: true));
        var inactive = LoanPolicy.ReaderRefusal(active: false)!;
        Assert.Equal((RefusalKind.Forbidden, true), (inactive.Kind, inactive.Reason.Contains("deactivated", StringComparison.Ordinal)));
    }

    [Fact]
    public void Lending_is_refused_for_reference_copies_and_beyond_the_rules_days()
    {
        Assert.Null(LoanPolicy.LendRefusal(Standard, LoanTypes.Standard, days: 30));
        var reference = LoanPolicy.LendRefusal(Rules.Resolve(null, LoanTypes.Reference), LoanTypes.Reference, 7)!;
        Assert.Equal(RefusalKind.Conflict, reference.Kind);
        Assert.Contains("reference", reference.Reason, StringComparison.Ordinal);
        var tooLong = LoanPolicy.LendRefusal(Standard, LoanTypes.Standard, days: 31)!;
        Assert.Equal((RefusalKind.Invalid, "days"), (tooLong.Kind, tooLong.Field));
        // A short-loan copy has its own, shorter maximum.
        Assert.Equal(RefusalKind.Invalid, LoanPolicy.LendRefusal(Rules.Resolve(null, LoanTypes.ShortLoan), LoanTypes.ShortLoan, 14)!.Kind);
    }

    [Fact]
    public void A_rule_that_does_not_lend_refuses_with_its_index()
    {
        var group = Guid.CreateVersion7();
        var noLoans = new RuleSet(3, [Rules.Rules[^1] with { PatronGroupId = group, Loanable = false }, Rules.Rules[^1]]);
        var refusal = LoanPolicy.LendRefusal(noLoans.Resolve(group, LoanTypes.Standard), LoanTypes.Standard, 7)!;
        Assert.Contains("Rule 0", refusal.Reason, StringComparison.Ordinal);
        Assert.Null(LoanPolicy.LendRefusal(noLoans.Resolve(Guid.CreateVersion7(), LoanTypes.Standard), LoanTypes.Standard, 7));
    }

    [Fact]
    public void A_copy_on_the_hold_shelf_goes_only_to_its_reader()
    {
        Assert.Null(LoanPolicy.CopyRefusal(Copies.CopyStatus.Available, null, Reader));
        Assert.Null(LoanPolicy.CopyRefusal(Copies.CopyStatus.AwaitingPickup, Reader, Reader));
        Assert.Equal("Held for another reader", LoanPolicy.CopyRefusal(Copies.CopyStatus.AwaitingPickup, Guid.CreateVersion7(), Reader)!.Title);
        Assert.Equal("Already checked out", LoanPolicy.CopyRefusal(Copies.CopyStatus.CheckedOut, null, Reader)!.Title);
        Assert.Contains("in-repair", LoanPolicy.CopyRefusal(Copies.CopyStatus.InRepair, null, Reader)!.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Renewals_are_refused_when_overdue_at_the_limit_or_awaited()
    {
        var rule = Standard.Rule;
        Assert.Null(LoanPolicy.RenewalRefusal(Now.AddDays(1), 0, false, Now, rule));
        Assert.Contains("overdue", LoanPolicy.RenewalRefusal(Now.AddDays(-1), 0, false, Now, rule)!.Reason, StringComparison.Ordinal);
        Assert.Contains("most allowed", LoanPolicy.RenewalRefusal(Now.AddDays(1), 2, false, Now, rule)!.Reason, StringComparison.Ordinal);
        Assert.Contains("waiting", LoanPolicy.RenewalRefusal(Now.AddDays(1), 0, true, Now, rule)!.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void The_next_copy_back_is_the_due_date_after_those_already_waiting()
    {
        DateTimeOffset[] dues = [Now.AddDays(1), Now.AddDays(3), Now.AddDays(9)];
        Assert.Equal(Now.AddDays(1), WaitingList.NextAvailableAt(dues, 0));
        Assert.Equal(Now.AddDays(3), WaitingList.NextAvailableAt(dues, 1));
        Assert.Equal(Now.AddDays(9), WaitingList.NextAvailableAt(dues, 5)); // more waiting than copies out: the last known
        Assert.Null(WaitingList.NextAvailableAt([], 0));
    }
}
