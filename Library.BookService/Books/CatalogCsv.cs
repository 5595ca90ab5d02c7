using System.Globalization;
using System.Text;
using CsvHelper;
using Library.BookService.Authors;
using Library.BookService.Categories;
using Library.ServiceDefaults;

namespace Library.BookService.Books;

/// <summary>A row of an import file that passed every check that needs no database.</summary>
public sealed record ImportRow(
    int Line, string Isbn, string Title, string? Subtitle, string Publisher, int? PublishedYear, string? Language,
    IReadOnlyList<string> Authors, IReadOnlyList<string> Categories, int? Copies);

/// <summary>A row left out, with its line in the file and the reasons by column.</summary>
public sealed record RejectedRow(int Line, IReadOnlyDictionary<string, string[]> Errors);

/// <summary>What <see cref="CatalogCsv.Parse"/> made of a file: a reason to refuse it whole, or its rows.</summary>
public sealed record ParsedCatalog(string? FileError, List<ImportRow> Rows, List<RejectedRow> Rejected);

/// <summary>
/// The catalog's CSV format, for import and export alike (an export re-imports as it is):
/// header <c>isbn,title,subtitle,authors,categories,publisher,publishedYear,language,copies</c>,
/// UTF-8, comma-separated, RFC 4180 quoting. <c>authors</c> and <c>categories</c> hold several
/// names separated by <c>;</c> (a name's own <c>;</c> or <c>\</c> is written <c>\;</c> or
/// <c>\\</c>). Header names are matched regardless of case and order; a column may be left out
/// (its field is then empty) but <c>isbn</c>, <c>title</c> and <c>publisher</c> must be there. A
/// column the format does not know refuses the whole file (400 naming it): it means a misspelled
/// or foreign file, and importing the rest would silently drop that column's data on every row.
/// A row is checked with the rules of <c>POST /api/books</c> (<see cref="BookRequest"/>'s annotations); an ISBN
/// that appears on several rows rejects all of them (which one is meant cannot be guessed).
/// </summary>
public static class CatalogCsv
{
    public const char NameSeparator = ';';
    public static readonly string[] Columns = ["isbn", "title", "subtitle", "authors", "categories", "publisher", "publishedYear", "language", "copies"];
    private static readonly string[] RequiredColumns = ["isbn", "title", "publisher"];

    /// <summary>RFC 4180 reading; a malformed record (a stray quote...) is skipped and reported, never fatal.</summary>
    private static CsvReaderOptions ReaderOptions(Action<CsvMalformedRecord> malformed) => new()
    {
        HasHeader = false, // the header is checked here, by name
        Separator = ',',
        Mode = CsvMode.Rfc4180,
        TrackLineNumbers = true,
        SkipEmptyLines = true,
        AllowLineBreaksInQuotes = true,
        TrimWhitespace = false,
        MalformedData = CsvMalformedDataHandling.Skip,
        FieldCountMismatch = CsvFieldCountHandling.Allow,
        MissingField = CsvMissingFieldHandling.ReturnEmpty,
        OnMalformedRecord = malformed,
    };

    public static CsvWriterOptions WriterOptions => new() { Separator = ',', Mode = CsvMode.Rfc4180, NewLine = "\n" };

    /// <summary>Checks a whole file without I/O; <paramref name="time"/> bounds the publication year.</summary>
    public static ParsedCatalog Parse(string text, TimeProvider time)
    {
        var rows = new List<ImportRow>();
        var rejected = new List<RejectedRow>();
        using var csv = CsvReader.FromText(text, ReaderOptions(bad => rejected.Add(new RejectedRow((int)bad.LineNumber, new Dictionary<string, string[]>
        {
            ["row"] = [$"Not valid CSV ({bad.Reason}): quote a field that holds a comma, quote or line break, and double its quotes."],
        }))));
        string[] header = [];
        if (csv.Read())
        {
            header = Fields(csv);
        }
        if (header.All(string.IsNullOrWhiteSpace))
        {
            return new ParsedCatalog("The file is empty: expected a header line naming the columns " + string.Join(",", Columns) + ".", rows, [.. rejected]);
        }

        var index = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        var unknown = new List<string>();
        for (var i = 0; i < header.Length; i++)
        {
            var name = header[i].Trim();
            if (!Columns.Contains(name, StringComparer.OrdinalIgnoreCase))
            {
                unknown.Add(name.Length > 50 ? name[..50] + "…" : name);
            }
            else if (!index.TryAdd(name, i))
            {
                return new ParsedCatalog($"The column {name} is named twice in the header.", rows, rejected);
            }
        }
        if (unknown.Count > 0)
        {
            return new ParsedCatalog($"Unknown columns: {string.Join(", ", unknown.Take(20))}. The columns are: {string.Join(",", Columns)}.", rows, rejected);
        }
        if (RequiredColumns.Where(c => !index.ContainsKey(c)).ToList() is { Count: > 0 } missing)
        {
            return new ParsedCatalog($"Missing columns: {string.Join(", ", missing)}.", rows, rejected);
        }

        var lines = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        while (csv.Read())
        {
            var line = (int)csv.LineNumber;
            var fields = Fields(csv);
            var errors = new Dictionary<string, string[]>();
            if (fields.Length != header.Length)
            {
                rejected.Add(new RejectedRow(line, new Dictionary<string, string[]> { ["row"] = [$"The row has {fields.Length} fields; the header names {header.Length}."] }));
                continue;
            }

            // A cell the export protected from spreadsheets ('=...) reads as it was written.
            string? Field(string column) => index.TryGetValue(column, out var i) && !string.IsNullOrWhiteSpace(fields[i]) ? SpreadsheetText.FromCell(fields[i]) : null;
            var year = Number(errors, "publishedYear", Field("publishedYear"));
            var copies = Number(errors, "copies", Field("copies"));
            var request = new BookRequest
            {
                Isbn = Field("isbn"), Title = Field("title"), Subtitle = Field("subtitle"), Publisher = Field("publisher"),
                PublishedYear = year, Language = Field("language")?.Trim(),
            };
            var ruleErrors = BookRules.Validate(request, time, out var isbn);
            foreach (var (field, messages) in ruleErrors)
            {
                errors.TryAdd(field, messages);
            }
            if (copies is not null)
            {
                // An empty field keeps an existing title's stock; a new title needs one (checked against the catalog).
                if (copies is < 0 or > BookRules.MaxCopies)
                {
                    errors.TryAdd("copies", [$"copies must be between 0 and {BookRules.MaxCopies}."]);
                }
            }
            var authors = Names(errors, "authors", Field("authors"), AuthorsApi.MaxName, BookRules.MaxAuthors);
            var categories = Names(errors, "categories", Field("categories"), CategoriesApi.MaxName, BookRules.MaxCategories);
            if (errors.Count > 0)
            {
                rejected.Add(new RejectedRow(line, errors));
                continue;
            }
            rows.Add(new ImportRow(line, isbn, request.Title!.Trim(), Trim(request.Subtitle), request.Publisher!.Trim(), year,
                request.Language?.ToLowerInvariant(), authors, categories, copies));
            if (!lines.TryGetValue(isbn, out var seen))
            {
                lines[isbn] = seen = [];
            }
            seen.Add(line);
        }

        // An ISBN on several rows: none of them is imported.
        var duplicates = lines.Where(l => l.Value.Count > 1).ToDictionary(l => l.Key, l => l.Value);
        if (duplicates.Count > 0)
        {
            foreach (var row in rows.Where(r => duplicates.ContainsKey(r.Isbn)))
            {
                rejected.Add(new RejectedRow(row.Line, new Dictionary<string, string[]>
                {
                    ["isbn"] = [$"ISBN {row.Isbn} is on lines {string.Join(", ", duplicates[row.Isbn])} of the file; keep one."],
                }));
            }
            rows.RemoveAll(r => duplicates.ContainsKey(r.Isbn));
        }
        rejected.Sort((a, b) => a.Line.CompareTo(b.Line));
        return new ParsedCatalog(null, rows, rejected);
    }

    /// <summary>Splits a names field at unescaped <see cref="NameSeparator"/>s: trimmed, empty ones dropped, the same name (any case) once.</summary>
    public static List<string> SplitNames(string? field)
    {
        var names = new List<string>();
        if (string.IsNullOrEmpty(field))
        {
            return names;
        }
        var current = new StringBuilder();
        for (var i = 0; i < field.Length; i++)
        {
            var c = field[i];
            if (c == '\\' && i + 1 < field.Length && field[i + 1] is NameSeparator or '\\')
            {
                current.Append(field[++i]);
            }
            else if (c == NameSeparator)
            {
                names.Add(current.ToString());
                current.Clear();
            }
            else
            {
                current.Append(c);
            }
        }
        names.Add(current.ToString());
        return names.Select(n => n.Trim()).Where(n => n.Length > 0).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
    }

    /// <summary>The inverse of <see cref="SplitNames"/>.</summary>
    public static string JoinNames(IEnumerable<string> names) =>
        string.Join(NameSeparator, names.Select(n => n.Replace("\\", "\\\\", StringComparison.Ordinal).Replace(";", "\\;", StringComparison.Ordinal)));

    private static string[] Fields(CsvReader csv)
    {
        var fields = new string[csv.FieldCount];
        for (var i = 0; i < fields.Length; i++)
        {
            fields[i] = csv.GetString(i);
        }
        return fields;
    }

    private static List<string> Names(Dictionary<string, string[]> errors, string field, string? value, int maxLength, int maxCount)
    {
        var names = SplitNames(value);
        if (names.Count > maxCount)
        {
            errors[field] = [$"At most {maxCount} {field}."];
        }
        else if (names.FirstOrDefault(n => n.Length > maxLength) is { } tooLong)
        {
            errors[field] = [$"{field}: a name must have at most {maxLength} characters ({tooLong[..20]}… has {tooLong.Length})."];
        }
        else if (names.Any(n => TextInput.HasControlCharacters(n)))
        {
            errors[field] = TextInput.ControlCharactersError(field);
        }
        return names;
    }

    private static int? Number(Dictionary<string, string[]> errors, string field, string? value)
    {
        if (value is null)
        {
            return null;
        }
        if (int.TryParse(value.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var number))
        {
            return number;
        }
        errors[field] = [$"{field} must be a whole number."];
        return null;
    }

    private static string? Trim(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
