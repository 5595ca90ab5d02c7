namespace Library.BookService.Books;

/// <summary>ISBN-10 and ISBN-13 checks; the catalog stores every ISBN as ISBN-13 digits.</summary>
public static class Isbn
{
    /// <summary>
    /// Accepts an ISBN-10 or ISBN-13 with optional hyphens or spaces (and an "ISBN" prefix) and
    /// gives its ISBN-13 digits, or false when the form or the check digit is wrong.
    /// </summary>
    public static bool TryNormalize(string? value, out string isbn13)
    {
        isbn13 = "";
        if (string.IsNullOrWhiteSpace(value) || value.Length > 40)
        {
            return false;
        }

        var text = value.Trim();
        if (text.StartsWith("ISBN", StringComparison.OrdinalIgnoreCase))
        {
            text = text[4..].TrimStart(':', ' ', '-');
        }
        var chars = text.Where(c => c is not ('-' or ' ')).Select(char.ToUpperInvariant).ToArray();

        if (chars.Length == 13 && chars.All(char.IsAsciiDigit) && (new string(chars, 0, 3) is "978" or "979"))
        {
            if (Isbn13CheckDigit(chars.AsSpan(0, 12)) != chars[12] - '0')
            {
                return false;
            }
            isbn13 = new string(chars);
            return true;
        }

        if (chars.Length == 10 && chars.Take(9).All(char.IsAsciiDigit) && (char.IsAsciiDigit(chars[9]) || chars[9] == 'X'))
        {
            var sum = 0;
            for (var i = 0; i < 9; i++)
            {
                sum += (chars[i] - '0') * (10 - i);
            }
            sum += chars[9] == 'X' ? 10 : chars[9] - '0';
            if (sum % 11 != 0)
            {
                return false;
            }
            var digits = ("978" + new string(chars, 0, 9)).ToCharArray();
            isbn13 = new string(digits) + Isbn13CheckDigit(digits);
            return true;
        }
        return false;
    }

    private static int Isbn13CheckDigit(ReadOnlySpan<char> first12)
    {
        var sum = 0;
        for (var i = 0; i < 12; i++)
        {
            sum += (first12[i] - '0') * (i % 2 == 0 ? 1 : 3);
        }
        return (10 - sum % 10) % 10;
    }
}
