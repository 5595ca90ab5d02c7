using Library.ServiceDefaults;

namespace Library.BookService.Books;

/// <summary>POST /api/books; PUT uses the same fields but totalCopies (stock has its own endpoint).</summary>
public sealed record BookRequest(
    string? Isbn,
    string? Title,
    string? Subtitle,
    string? Description,
    string? Publisher,
    int? PublishedYear,
    string? Language,
    int? PageCount,
    List<Guid>? AuthorIds,
    List<Guid>? CategoryIds,
    int? TotalCopies);

public sealed record StockRequest(int? TotalCopies);

public static class BookRules
{
    public const int MaxCopies = 10_000;
    public const int MaxAuthors = 50;
    public const int MaxCategories = 50;

    /// <summary>Field checks with no I/O; <paramref name="isbn13"/> is the normalised ISBN when valid.</summary>
    public static Dictionary<string, string[]> Validate(BookRequest r, bool withStock, TimeProvider time, out string isbn13)
    {
        var errors = new Dictionary<string, string[]>();
        if (!Isbn.TryNormalize(r.Isbn, out isbn13))
        {
            errors["isbn"] = ["isbn must be a valid ISBN-10 or ISBN-13 (check digit included)."];
        }
        Text(errors, "title", r.Title, 500, required: true);
        Text(errors, "subtitle", r.Subtitle, 500, required: false);
        Text(errors, "description", r.Description, 10_000, required: false);
        Text(errors, "publisher", r.Publisher, 200, required: true);
        if (r.PublishedYear is { } year && (year < 1000 || year > time.GetUtcNow().Year + 1))
        {
            errors["publishedYear"] = [$"publishedYear must be between 1000 and {time.GetUtcNow().Year + 1}."];
        }
        if (r.Language is { } language && (language.Length is < 2 or > 8 || !language.All(c => char.IsAsciiLetter(c) || c == '-')))
        {
            errors["language"] = ["language must be a language code such as en or pt-BR."];
        }
        if (r.PageCount is { } pages && (pages < 1 || pages > 100_000))
        {
            errors["pageCount"] = ["pageCount must be between 1 and 100000."];
        }
        if (r.AuthorIds is { Count: > MaxAuthors })
        {
            errors["authorIds"] = [$"At most {MaxAuthors} authors."];
        }
        if (r.CategoryIds is { Count: > MaxCategories })
        {
            errors["categoryIds"] = [$"At most {MaxCategories} categories."];
        }
        if (withStock)
        {
            CheckStock(errors, r.TotalCopies);
        }
        return errors;
    }

    public static void CheckStock(Dictionary<string, string[]> errors, int? totalCopies)
    {
        if (totalCopies is null or < 0 or > MaxCopies)
        {
            errors["totalCopies"] = [$"totalCopies must be between 0 and {MaxCopies}."];
        }
    }

    private static void Text(Dictionary<string, string[]> errors, string field, string? value, int max, bool required)
    {
        if (required && string.IsNullOrWhiteSpace(value))
        {
            errors[field] = [$"{field} is required."];
        }
        else if (value is not null && value.Length > max)
        {
            errors[field] = [$"{field} must have at most {max} characters."];
        }
        else if (TextInput.HasControlCharacters(value, multiline: true))
        {
            errors[field] = TextInput.ControlCharactersError(field);
        }
    }
}
