using Library.LendingService.Copies;

namespace Library.LendingService.Tests;

public sealed class CopyStatusTests
{
    public static TheoryData<string, string> AllPairs()
    {
        var pairs = new TheoryData<string, string>();
        foreach (var from in CopyStatus.All)
        {
            foreach (var to in CopyStatus.All)
            {
                pairs.Add(from, to);
            }
        }
        return pairs;
    }

    [Theory]
    [MemberData(nameof(AllPairs))]
    public void Every_pair_is_either_a_transition_or_refused(string from, string to)
    {
        var listed = CopyStatus.Transitions.Contains((from, to));
        Assert.Equal(listed, CopyStatus.CanChange(from, to));
        if (from == to)
        {
            Assert.False(listed); // staying put is not a change
            Assert.Null(CopyStatus.ManualChangeRefusal(from, to)); // but a PATCH repeating the status is a no-op
        }
        if (!listed && from != to)
        {
            Assert.NotNull(CopyStatus.ManualChangeRefusal(from, to));
        }
    }

    [Fact]
    public void The_table_uses_known_statuses_once_each()
    {
        Assert.All(CopyStatus.Transitions, t => Assert.Contains(t.From, CopyStatus.All));
        Assert.All(CopyStatus.Transitions, t => Assert.Contains(t.To, CopyStatus.All));
        Assert.Equal(CopyStatus.Transitions.Count, CopyStatus.Transitions.Distinct().Count());
        Assert.DoesNotContain(CopyStatus.Transitions, t => t.From == t.To);
        Assert.Equal(7, CopyStatus.All.Distinct().Count());
        Assert.All(CopyStatus.ManualTargets, s => Assert.Contains(s, CopyStatus.All));
    }

    [Theory]
    [InlineData("available", "checked-out")]
    [InlineData("checked-out", "available")]
    [InlineData("checked-out", "awaiting-pickup")]
    [InlineData("checked-out", "withdrawn")]
    [InlineData("checked-out", "lost")]
    [InlineData("awaiting-pickup", "checked-out")]
    [InlineData("awaiting-pickup", "available")]
    [InlineData("lost", "available")]
    [InlineData("withdrawn", "available")]
    public void Circulation_moves_are_allowed(string from, string to) => Assert.True(CopyStatus.CanChange(from, to));

    [Theory]
    [InlineData("checked-out", "missing")]
    [InlineData("withdrawn", "checked-out")]
    [InlineData("missing", "checked-out")]
    [InlineData("in-repair", "lost")]
    [InlineData("lost", "checked-out")]
    public void Other_moves_are_not(string from, string to) => Assert.False(CopyStatus.CanChange(from, to));

    [Fact]
    public void A_librarian_cannot_withdraw_a_checked_out_copy_by_hand()
    {
        Assert.True(CopyStatus.CanChange(CopyStatus.CheckedOut, CopyStatus.Withdrawn)); // at check-in, yes
        Assert.StartsWith("the copy is checked out: check it in first", CopyStatus.ManualChangeRefusal(CopyStatus.CheckedOut, CopyStatus.Withdrawn), StringComparison.Ordinal);
        Assert.StartsWith("the copy is checked out", CopyStatus.ManualChangeRefusal(CopyStatus.CheckedOut, CopyStatus.Available), StringComparison.Ordinal);
        // Declaring it lost is allowed: that ends the loan and charges the reader (CopiesAndDeskTests, FinesTests).
        Assert.Null(CopyStatus.ManualChangeRefusal(CopyStatus.CheckedOut, CopyStatus.Lost));
    }

    [Fact]
    public void Manual_changes_are_limited_to_the_manual_targets()
    {
        Assert.Null(CopyStatus.ManualChangeRefusal(CopyStatus.Available, CopyStatus.InRepair));
        Assert.Null(CopyStatus.ManualChangeRefusal(CopyStatus.Missing, CopyStatus.Available));
        Assert.Null(CopyStatus.ManualChangeRefusal(CopyStatus.Lost, CopyStatus.Available));
        Assert.Null(CopyStatus.ManualChangeRefusal(CopyStatus.Withdrawn, CopyStatus.Available));
        Assert.Null(CopyStatus.ManualChangeRefusal(CopyStatus.AwaitingPickup, CopyStatus.Missing));
        Assert.Null(CopyStatus.ManualChangeRefusal(CopyStatus.CheckedOut, CopyStatus.CheckedOut));
        Assert.Contains("cannot be set by hand", CopyStatus.ManualChangeRefusal(CopyStatus.Available, CopyStatus.CheckedOut), StringComparison.Ordinal);
        Assert.Contains("cannot be set by hand", CopyStatus.ManualChangeRefusal(CopyStatus.Available, CopyStatus.AwaitingPickup), StringComparison.Ordinal);
        Assert.Contains("hold", CopyStatus.ManualChangeRefusal(CopyStatus.AwaitingPickup, CopyStatus.Available), StringComparison.Ordinal);
        Assert.Equal("copy status cannot change from in-repair to lost.", CopyStatus.ManualChangeRefusal(CopyStatus.InRepair, CopyStatus.Lost));
        Assert.StartsWith("status must be one of: available, missing", CopyStatus.ManualChangeRefusal(CopyStatus.Available, "borrowed"), StringComparison.Ordinal);
    }

    [Fact]
    public void The_trigger_sql_lists_every_transition_and_raises_a_check_violation()
    {
        var sql = CopyStatus.TransitionCheckSql();
        foreach (var (from, to) in CopyStatus.Transitions)
        {
            Assert.Contains($"('{from}', '{to}')", sql, StringComparison.Ordinal);
        }
        Assert.Equal(CopyStatus.Transitions.Count, sql.Split("('", StringSplitOptions.None).Length - 1);
        Assert.Contains("(OLD.status, NEW.status) NOT IN (", sql, StringComparison.Ordinal);
        Assert.Contains("RAISE EXCEPTION 'copy status cannot change from % to %', OLD.status, NEW.status", sql, StringComparison.Ordinal);
        Assert.Contains("ERRCODE = 'check_violation'", sql, StringComparison.Ordinal);
        Assert.Contains("RETURN NEW;", sql, StringComparison.Ordinal);
    }
}
