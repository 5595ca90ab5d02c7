namespace Library.ServiceDefaults;

/// <summary>
/// CSV cells a spreadsheet opens safely (OWASP "CSV injection"): a cell that starts with
/// <c>=</c>, <c>+</c>, <c>-</c>, <c>@</c>, a tab or a carriage return is read as a formula by
/// Excel, LibreOffice and Sheets, so a title such as <c>=HYPERLINK(...)</c> written by anyone who
/// may create one would run on a librarian's machine. Such a cell is written with a leading
/// apostrophe (shown as text, the apostrophe hidden); <see cref="FromCell"/> takes it off again, so
/// a file the Library exported imports back unchanged.
/// </summary>
public static class SpreadsheetText
{
    private static bool StartsLikeFormula(string s, int at) => s.Length > at && s[at] is '=' or '+' or '-' or '@' or '\t' or '\r';

    /// <summary>The text as a CSV cell that no spreadsheet evaluates.</summary>
    public static string ToCell(string text) => StartsLikeFormula(text, 0) ? "'" + text : text;

    /// <summary>The inverse of <see cref="ToCell"/> (a cell written otherwise is returned as it is).</summary>
    public static string FromCell(string cell) => cell.Length > 1 && cell[0] == '\'' && StartsLikeFormula(cell, 1) ? cell[1..] : cell;
}
