using Library.LendingService.Reports;

namespace Library.LendingService.Tests;

/// <summary>The reports' from/to rule, alone: ISO dates, both included, at most <see cref="ReportsApi.MaxDays"/> days.</summary>
public sealed class ReportRangeTests
{
    [Theory]
    [InlineData("2026-03-01", "2026-03-01", 1)]
    [InlineData("2024-02-29", "2024-03-01", 2)]
    [InlineData("2025-01-01", "2028-01-03", ReportsApi.MaxDays)]
    public void A_valid_range_counts_both_ends(string from, string to, int days)
    {
        Assert.True(ReportsApi.TryRange(from, to, out var first, out var last, out var problem));
        Assert.Null(problem);
        Assert.Equal(days, last.DayNumber - first.DayNumber + 1);
    }

    [Theory]
    [InlineData(null, "2026-01-01")]
    [InlineData("2026-01-01", "")]
    [InlineData("2025-02-29", "2025-03-01")]
    [InlineData("01/02/2026", "2026-03-01")]
    [InlineData("2026-01-01T00:00:00Z", "2026-03-01")]
    [InlineData("2026-03-02", "2026-03-01")]
    [InlineData("2025-01-01", "2028-01-04")]
    [InlineData("9999-12-31", "9999-12-31")]
    [InlineData("0001-01-01", "0001-01-02")]
    public void An_invalid_range_is_refused(string? from, string? to)
    {
        Assert.False(ReportsApi.TryRange(from, to, out _, out _, out var problem));
        Assert.NotNull(problem);
    }
}
