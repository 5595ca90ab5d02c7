using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using Library.BookService.Validation;

namespace Library.BookService.Books;

/// <summary>
/// PUT /api/books/{id}: a title's fields (stock has its own endpoint). The annotations are the
/// rules, checked by the endpoint's validation (AddValidation), by the catalog import
/// (<see cref="BookRules.Validate"/>) and shown in the OpenAPI document; the limits are the
/// columns' (CatalogDbContext). Unknown authors, categories and taken ISBNs need the database:
/// the handlers check those.
/// </summary>
public record BookRequest
{
    [Required(ErrorMessage = BookRules.IsbnMessage)]
    [StringLength(IsbnAttribute.MaxLength, ErrorMessage = BookRules.IsbnMessage)]
    [Isbn(ErrorMessage = BookRules.IsbnMessage)]
    public string? Isbn { get; init; }

    [Required(ErrorMessage = "title is required.")]
    [StringLength(500, ErrorMessage = "title must have at most 500 characters.")]
    [RegularExpression(TextPattern.MultiLine, ErrorMessage = "title must not contain control characters.")]
    public string? Title { get; init; }

    [StringLength(500, ErrorMessage = "subtitle must have at most 500 characters.")]
    [RegularExpression(TextPattern.MultiLine, ErrorMessage = "subtitle must not contain control characters.")]
    public string? Subtitle { get; init; }

    [StringLength(BookRules.MaxDescription, ErrorMessage = "description must have at most 10000 characters.")]
    [RegularExpression(TextPattern.MultiLine, ErrorMessage = "description must not contain control characters.")]
    public string? Description { get; init; }

    [Required(ErrorMessage = "publisher is required.")]
    [StringLength(200, ErrorMessage = "publisher must have at most 200 characters.")]
    [RegularExpression(TextPattern.MultiLine, ErrorMessage = "publisher must not contain control characters.")]
    public string? Publisher { get; init; }

    /// <summary>From 1000 to next year (a title announced for next year may be catalogued).</summary>
    [YearRange(1000, 1, ErrorMessage = "publishedYear must be between {1} and {2}.")]
    public int? PublishedYear { get; init; }

    /// <summary>A language code (BCP 47 letters and hyphens), stored lower-case.</summary>
    [StringLength(8, MinimumLength = 2, ErrorMessage = BookRules.LanguageMessage)]
    [RegularExpression("^[A-Za-z-]*$", ErrorMessage = BookRules.LanguageMessage)]
    public string? Language { get; init; }

    [Range(1, 100_000, ErrorMessage = "pageCount must be between 1 and 100000.")]
    public int? PageCount { get; init; }

    [MaxLength(BookRules.MaxAuthors, ErrorMessage = "At most 50 authors.")]
    public List<Guid>? AuthorIds { get; init; }

    [MaxLength(BookRules.MaxCategories, ErrorMessage = "At most 50 categories.")]
    public List<Guid>? CategoryIds { get; init; }
}

/// <summary>POST /api/books: the fields of <see cref="BookRequest"/> and the copies the library owns.</summary>
public sealed record NewBookRequest : BookRequest
{
    [Required(ErrorMessage = BookRules.StockMessage)]
    [Range(0, BookRules.MaxCopies, ErrorMessage = BookRules.StockMessage)]
    public int? TotalCopies { get; init; }
}

/// <summary>PUT /api/books/{id}/stock.</summary>
public sealed record StockRequest
{
    [Required(ErrorMessage = BookRules.StockMessage)]
    [Range(0, BookRules.MaxCopies, ErrorMessage = BookRules.StockMessage)]
    public int? TotalCopies { get; init; }
}

public static class BookRules
{
    public const int MaxCopies = 10_000;
    public const int MaxAuthors = 50;
    public const int MaxCategories = 50;
    public const int MaxDescription = 10_000;
    public const string IsbnMessage = "isbn must be a valid ISBN-10 or ISBN-13 (check digit included).";
    public const string LanguageMessage = "language must be a language code such as en or pt-BR.";
    public const string StockMessage = "totalCopies must be between 0 and 10000.";

    /// <summary>
    /// The annotations of <see cref="BookRequest"/> for a caller outside an endpoint (the catalog
    /// import), errors keyed like the endpoint's (camelCase); <paramref name="isbn13"/> is the
    /// normalised ISBN when valid.
    /// </summary>
    public static Dictionary<string, string[]> Validate(BookRequest request, TimeProvider time, out string isbn13)
    {
        var context = new ValidationContext(request);
        context.InitializeServiceProvider(type => type == typeof(TimeProvider) ? time : null);
        var results = new List<ValidationResult>();
        Validator.TryValidateObject(request, context, results, validateAllProperties: true);
        var errors = results
            .SelectMany(r => r.MemberNames.Select(m => (Field: JsonNamingPolicy.CamelCase.ConvertName(m), Message: r.ErrorMessage ?? "is not valid.")))
            .GroupBy(e => e.Field)
            .ToDictionary(g => g.Key, g => g.Select(e => e.Message).Distinct().ToArray());
        if (!Isbn.TryNormalize(request.Isbn, out isbn13))
        {
            errors.TryAdd("isbn", [IsbnMessage]);
        }
        return errors;
    }
}
