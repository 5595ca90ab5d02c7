namespace Library.ServiceDefaults;

/// <summary>
/// Text from a client that no field or filter takes: control characters, NUL among them, which
/// PostgreSQL's <c>text</c> cannot store or compare (an error, so a 500, if it got that far).
/// Checked with the other validation, so such input is a 400 naming the field.
/// </summary>
public static class TextInput
{
    /// <summary>True when <paramref name="value"/> has a control character; multi-line fields may hold line breaks and tabs.</summary>
    public static bool HasControlCharacters(string? value, bool multiline = false) =>
        value is not null && value.Any(c => char.IsControl(c) && !(multiline && c is '\n' or '\r' or '\t'));

    public static string[] ControlCharactersError(string field) => [$"{field} must not contain control characters."];
}
