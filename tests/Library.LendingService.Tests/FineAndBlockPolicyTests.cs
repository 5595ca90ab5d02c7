using Library.LendingService.Blocks;
using Library.LendingService.Calendar;
using Library.LendingService.Fines;
using Library.LendingService.Loans;
using Library.LendingService.Rules;

namespace Library.LendingService.Tests;

/// <summary>The fine computation and the block decisions, as the pure functions they are.</summary>
public sealed class FineAndBlockPolicyTests
{
    private static readonly CirculationRule Rule = RuleSet.Seed(30, 5, 2, 3).Rules[^1] with { FinePerDay = 50, MaxFinePerLoan = 400, GracePeriodDays = 0, LostFee = 2500 };
    private static readonly LibraryCalendar WeekendsClosed = LibraryCalendar.From(new CalendarDocument("UTC", ["saturday", "sunday"], [new ClosedDateDocument("2026-12-25", "Christmas")]));
    private static readonly DateTimeOffset Now = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);

    private static DateTimeOffset EndOf(int year, int month, int day) => new DateTimeOffset(year, month, day, 23, 59, 59, TimeSpan.Zero);

    [Fact]
    public void An_overdue_fine_counts_open_days_only_and_stops_at_the_cap()
    {
        // Due Friday 4 December 2026; back Monday 7th at noon: Saturday and Sunday are closed, Monday counts.
        var due = EndOf(2026, 12, 4);
        Assert.Equal(50, FinePolicy.OverdueFine(due, new(2026, 12, 7, 12, 0, 0, TimeSpan.Zero), Rule, WeekendsClosed));
        Assert.Equal(0, FinePolicy.OverdueFine(due, new(2026, 12, 6, 20, 0, 0, TimeSpan.Zero), Rule, WeekendsClosed)); // the weekend alone: nothing
        Assert.Equal(0, FinePolicy.OverdueFine(due, due.AddSeconds(-1), Rule, WeekendsClosed)); // on time
        // Tuesday 8th: two open days; the same loan under an every-day-open calendar owes four.
        Assert.Equal(100, FinePolicy.OverdueFine(due, new(2026, 12, 8, 9, 0, 0, TimeSpan.Zero), Rule, WeekendsClosed));
        Assert.Equal(200, FinePolicy.OverdueFine(due, new(2026, 12, 8, 9, 0, 0, TimeSpan.Zero), Rule, LibraryCalendar.Default));
        // Back Monday 28th: 15 open days (Christmas, Friday 25th, is closed) would be 750; the cap is 400.
        Assert.Equal(400, FinePolicy.OverdueFine(due, new(2026, 12, 28, 9, 0, 0, TimeSpan.Zero), Rule, WeekendsClosed));
        // Without a cap: due Friday 11th, back Friday 1 January: 14 open days.
        Assert.Equal(14 * 50, FinePolicy.OverdueFine(EndOf(2026, 12, 11), new(2027, 1, 1, 9, 0, 0, TimeSpan.Zero), Rule with { MaxFinePerLoan = 0 }, WeekendsClosed));
    }

    [Theory]
    [InlineData(0, 2, 50, 400, 0)]     // not late
    [InlineData(2, 2, 50, 400, 0)]     // within the grace period: forgiven
    [InlineData(3, 2, 50, 400, 150)]   // past it: every late open day is charged
    [InlineData(100, 0, 50, 400, 400)] // capped
    [InlineData(100, 0, 50, 0, 5000)]  // cap 0: no cap
    [InlineData(5, 0, 0, 400, 0)]      // no rate: no fine
    public void Grace_forgives_short_delays_and_the_cap_bounds_long_ones(int lateDays, int grace, long perDay, long cap, long expected) =>
        Assert.Equal(expected, FinePolicy.OverdueFine(lateDays, grace, perDay, cap));

    [Fact]
    public void A_payment_must_be_positive_and_within_the_balance()
    {
        Assert.Null(FinePolicy.PaymentRefusal(1, 300));
        Assert.Null(FinePolicy.PaymentRefusal(300, 300));
        Assert.Contains("positive", FinePolicy.PaymentRefusal(0, 300), StringComparison.Ordinal);
        Assert.Contains("positive", FinePolicy.PaymentRefusal(-5, 300), StringComparison.Ordinal);
        Assert.Contains("positive", FinePolicy.PaymentRefusal(null, 300), StringComparison.Ordinal);
        Assert.Contains("over the balance", FinePolicy.PaymentRefusal(301, 300), StringComparison.Ordinal);
    }

    private static ReaderStanding Standing(long balance = 0, int overdue = 0, int active = 0, int? max = null, params ManualBlock[] manual) =>
        new(balance, overdue, active, max, manual);

    [Fact]
    public void A_balance_at_the_threshold_blocks_everything_and_below_it_nothing()
    {
        Assert.Empty(BlockPolicy.Blocks(Standing(balance: 999), 1000, "EUR", Now));
        var blocks = BlockPolicy.Blocks(Standing(balance: 1000), 1000, "EUR", Now);
        var fines = Assert.Single(blocks);
        Assert.Equal((BlockSources.Fines, true, true, true), (fines.Source, fines.Borrowing, fines.Renewals, fines.Holds));
        foreach (var action in Enum.GetValues<BlockedAction>())
        {
            var refusal = BlockPolicy.Refusal(blocks, action)!;
            Assert.Equal((RefusalKind.Forbidden, "Reader blocked"), (refusal.Kind, refusal.Title));
            Assert.Contains("[fines]", refusal.Reason, StringComparison.Ordinal);
            Assert.Same(fines, Assert.Single(refusal.Blocks!));
        }
    }

    [Fact]
    public void The_loan_limit_stops_borrowing_only_and_an_overdue_loan_everything()
    {
        var atLimit = BlockPolicy.Blocks(Standing(active: 5, max: 5), 1000, "EUR", Now);
        Assert.Equal("Loan limit reached", BlockPolicy.Refusal(atLimit, BlockedAction.Borrowing)!.Title);
        Assert.Contains("most allowed", BlockPolicy.Refusal(atLimit, BlockedAction.Borrowing)!.Reason, StringComparison.Ordinal);
        Assert.Null(BlockPolicy.Refusal(atLimit, BlockedAction.Renewals));
        Assert.Null(BlockPolicy.Refusal(atLimit, BlockedAction.Holds));
        Assert.Empty(BlockPolicy.Blocks(Standing(active: 5, max: null), 1000, "EUR", Now)); // no rule in question: no limit
        Assert.Empty(BlockPolicy.Blocks(Standing(active: 4, max: 5), 1000, "EUR", Now));

        var both = BlockPolicy.Blocks(Standing(overdue: 2, active: 5, max: 5), 1000, "EUR", Now);
        Assert.Equal([BlockSources.Overdue, BlockSources.Limit], both.Select(b => b.Source));
        var borrowing = BlockPolicy.Refusal(both, BlockedAction.Borrowing)!;
        Assert.Equal("Reader blocked", borrowing.Title);
        Assert.Equal(2, borrowing.Blocks!.Count); // every block is named
        Assert.Equal([BlockSources.Overdue], BlockPolicy.Refusal(both, BlockedAction.Holds)!.Blocks!.Select(b => b.Source));
    }

    [Fact]
    public void A_manual_block_stops_what_it_says_until_it_expires()
    {
        var holdsOnly = new ManualBlock(Guid.CreateVersion7(), "Damaged a book", Now.AddDays(1), Borrowing: false, Renewals: false, Holds: true, Now.AddDays(-1), Guid.CreateVersion7());
        var blocks = BlockPolicy.Blocks(Standing(manual: holdsOnly), 1000, "EUR", Now);
        var manual = Assert.Single(blocks);
        Assert.Equal((BlockSources.Manual, "Damaged a book", holdsOnly.Id), (manual.Source, manual.Reason, manual.Id));
        Assert.Null(BlockPolicy.Refusal(blocks, BlockedAction.Borrowing));
        Assert.Contains("Damaged a book", BlockPolicy.Refusal(blocks, BlockedAction.Holds)!.Reason, StringComparison.Ordinal);
        Assert.Empty(BlockPolicy.Blocks(Standing(manual: holdsOnly), 1000, "EUR", Now.AddDays(1))); // expired at its moment
        Assert.Single(BlockPolicy.Blocks(Standing(manual: holdsOnly with { ExpiresAt = null }), 1000, "EUR", Now.AddYears(5)));
    }
}
