using Library.BookService.Books;

namespace Library.BookService.Tests;

public sealed class IsbnTests
{
    [Theory]
    [InlineData("9780441478125", "9780441478125")]
    [InlineData("978-0-441-47812-5", "9780441478125")]
    [InlineData("ISBN 978 0 441 47812 5", "9780441478125")]
    [InlineData("0441478123", "9780441478125")]   // ISBN-10 of the same book
    [InlineData("0-8044-2957-X", "9780804429573")] // check digit X
    [InlineData("080442957x", "9780804429573")]
    [InlineData("9798886450101", "9798886450101")] // 979 prefix
    public void Valid_ISBNs_normalise_to_ISBN_13_digits(string input, string expected)
    {
        Assert.True(Isbn.TryNormalize(input, out var isbn));
        Assert.Equal(expected, isbn);
    }

    [Theory]
    [InlineData("9780441478126")] // wrong check digit
    [InlineData("0441478124")]    // wrong ISBN-10 check digit
    [InlineData("1234567890123")] // not a 978/979 prefix
    [InlineData("97804414781")]
    [InlineData("978044147812X")]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData(null)]
    [InlineData("abcdefghij")]
    public void Invalid_ISBNs_are_refused(string? input) => Assert.False(Isbn.TryNormalize(input, out _));
}
