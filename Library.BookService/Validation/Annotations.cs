using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Text;
using Library.BookService.Books;

namespace Library.BookService.Validation;

/// <summary>
/// Patterns for text fields. A pattern is both the check (<see cref="RegularExpressionAttribute"/>)
/// and what the OpenAPI document shows, so clients learn the rule from the document. They are
/// ECMA-262 compatible (JSON Schema's dialect) as well as .NET's.
/// </summary>
public static class TextPattern
{
    /// <summary>One line: no control character (what <see cref="char.IsControl(char)"/> names: U+0000-U+001F, U+007F-U+009F).</summary>
    public const string SingleLine = @"^[^\u0000-\u001F\u007F-\u009F]*$";

    /// <summary>Several lines: as <see cref="SingleLine"/> but tabs and line breaks are welcome.</summary>
    public const string MultiLine = @"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$";
}

/// <summary>
/// An ISBN-10 or ISBN-13, hyphens, spaces and an "ISBN" prefix allowed. The pattern documents the
/// form (every ISBN the check accepts matches it); the check is <see cref="Isbn.TryNormalize"/>
/// (form and check digit), never the pattern: a crafted value (thousands of spaces) would make the
/// overlapping pattern backtrack to its timeout. A value over <see cref="MaxLength"/> is left to
/// the <see cref="StringLengthAttribute"/> beside it, so it is refused with one message, not two.
/// </summary>
public sealed class IsbnAttribute() : RegularExpressionAttribute(IsbnPattern)
{
    public const string IsbnPattern = @"^\s*(?:[Ii][Ss][Bb][Nn][: -]*)?[0-9 -]*[0-9Xx][ -]*\s*$";
    public const int MaxLength = 40;

    public override bool IsValid(object? value) =>
        value is not string text || text.Length == 0 || text.Length > MaxLength || Isbn.TryNormalize(text, out _);
}

/// <summary>
/// A year from <c>minimum</c> up to the current year plus <c>yearsAhead</c>. The upper bound moves
/// with the clock: the check reads the service's <see cref="TimeProvider"/>; the document shows the
/// bound of the year it was generated in. The message may use {1} (minimum) and {2} (the bound).
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field | AttributeTargets.Parameter)]
public sealed class YearRangeAttribute(int minimum, int yearsAhead) : RangeAttribute(minimum, DateTime.UtcNow.Year + yearsAhead)
{
    protected override ValidationResult? IsValid(object? value, ValidationContext validationContext)
    {
        if (value is not int year)
        {
            return ValidationResult.Success;
        }
        var time = validationContext.GetService(typeof(TimeProvider)) as TimeProvider ?? TimeProvider.System;
        var max = time.GetUtcNow().Year + yearsAhead;
        var min = (int)Minimum;
        return year >= min && year <= max
            ? ValidationResult.Success
            : new ValidationResult(string.Format(CultureInfo.InvariantCulture, ErrorMessageString, validationContext.DisplayName, min, max),
                validationContext.MemberName is { } member ? [member] : null);
    }
}

/// <summary>
/// One of a few words, any case, surrounding spaces ignored, or nothing (the default). A pattern
/// rather than <see cref="AllowedValuesAttribute"/>: that one is exact-case, and the document
/// shows a pattern. The check compares the trimmed value (what the pattern says), without running
/// the pattern: its two <c>\s*</c> would backtrack on a long run of spaces.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field | AttributeTargets.Parameter)]
public sealed class OneOfAttribute(params string[] values) : RegularExpressionAttribute(AnyCase(values))
{
    public IReadOnlyList<string> Values { get; } = values;

    public override bool IsValid(object? value) =>
        value is not string text || string.IsNullOrWhiteSpace(text) || Values.Contains(text.Trim(), StringComparer.OrdinalIgnoreCase);

    private static string AnyCase(string[] values)
    {
        var pattern = new StringBuilder(@"^\s*(?:");
        for (var i = 0; i < values.Length; i++)
        {
            pattern.Append(i == 0 ? "" : "|");
            foreach (var c in values[i])
            {
                pattern.Append(char.IsAsciiLetter(c) ? $"[{char.ToUpperInvariant(c)}{char.ToLowerInvariant(c)}]" : System.Text.RegularExpressions.Regex.Escape(c.ToString()));
            }
        }
        return pattern.Append(@")?\s*$").ToString();
    }
}

/// <summary>
/// <c>?page=&amp;pageSize=</c> declared on the parameters (<c>[Range]</c> with
/// <see cref="Library.ServiceDefaults.PageRequest"/>'s limits and messages), so the document shows
/// the limits; once validated, <see cref="From"/> applies the defaults.
/// </summary>
public static class PageQuery
{
    public static Library.ServiceDefaults.PageRequest From(int? page, int? pageSize) =>
        new(page ?? 1, pageSize ?? Library.ServiceDefaults.PageRequest.DefaultPageSize);
}
