using Library.LendingService.Loans;

namespace Library.LendingService.Tests;

public sealed class LoanRulesTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 23, 12, 0, 0, TimeSpan.Zero);
    private static readonly LendingPolicy Policy = new();

    [Fact]
    public void A_loan_is_due_after_its_days_and_overdue_after_that() =>
        Assert.Equal(Now.AddDays(14), LoanRules.DueAt(Now, 14));

    [Theory]
    [InlineData(1, null, "active")]
    [InlineData(-1, null, "overdue")]
    [InlineData(-1, 0, "returned")]
    public void The_status_follows_the_due_date_and_the_return(int dueInDays, int? returnedDaysAgo, string expected) =>
        Assert.Equal(expected, LoanRules.Status(Now.AddDays(dueInDays), returnedDaysAgo is { } d ? Now.AddDays(-d) : null, Now));

    [Fact]
    public void Renewal_is_refused_when_overdue_at_the_limit_or_when_others_wait()
    {
        Assert.Null(LoanRules.RenewalRefusal(Now.AddDays(1), 0, false, Now, Policy));
        Assert.Contains("overdue", LoanRules.RenewalRefusal(Now.AddDays(-1), 0, false, Now, Policy), StringComparison.Ordinal);
        Assert.Contains("most allowed", LoanRules.RenewalRefusal(Now.AddDays(1), 2, false, Now, Policy), StringComparison.Ordinal);
        Assert.Contains("waiting", LoanRules.RenewalRefusal(Now.AddDays(1), 0, true, Now, Policy), StringComparison.Ordinal);
        Assert.Equal(Now.AddDays(21), LoanRules.RenewedDueAt(Now.AddDays(7), 14));
    }

    [Fact]
    public void The_next_copy_back_for_a_newcomer_skips_one_due_date_per_reader_waiting()
    {
        var dues = new[] { Now.AddDays(1), Now.AddDays(3), Now.AddDays(9) };
        Assert.Equal(Now.AddDays(1), LoanRules.NextAvailableAt(dues, 0));
        Assert.Equal(Now.AddDays(3), LoanRules.NextAvailableAt(dues, 1));
        Assert.Equal(Now.AddDays(9), LoanRules.NextAvailableAt(dues, 5)); // more waiting than copies out: the last known
        Assert.Null(LoanRules.NextAvailableAt([], 0));
        Assert.Equal(0, LoanRules.OnShelf(1, 2, 0));
    }
}
