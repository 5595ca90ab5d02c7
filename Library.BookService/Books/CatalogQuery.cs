using System.Text;
using Npgsql;
using NpgsqlTypes;

namespace Library.BookService.Books;

/// <summary>
/// The filters of GET /api/books and /api/books/facets, normalised (trimmed, blanks as none). The
/// endpoints' parameter annotations have checked them (limits, no control character: NUL cannot
/// even be compared in PostgreSQL, and no title, name or code holds one).
/// </summary>
public sealed record CatalogFilter(
    string? Search, Guid? AuthorId, Guid? CategoryId, string? Category, string? Publisher, string? Language, bool? Available)
{
    public const int MaxSearchLength = 200;
    /// <summary>The longest category, publisher or language filter: the longest of those columns.</summary>
    public const int MaxFilterLength = 200;

    public const string SearchMessage = "search must have at most 200 characters.";
    public const string AvailableMessage = "available must be true or false.";
    public const string SortMessage = "sort must be one of: relevance, title, newest, popular.";

    public static CatalogFilter Create(string? search, Guid? authorId, Guid? categoryId, string? category, string? publisher, string? language, string? available) =>
        new(Blank(search), authorId, categoryId, Blank(category), Blank(publisher), Blank(language)?.ToLowerInvariant(),
            bool.TryParse(available, out var parsed) ? parsed : null);

    private static string? Blank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}

/// <summary>
/// SQL for searching and faceting the catalog in PostgreSQL: full text (stemmed, unaccented,
/// weighted) or a trigram match (typos) or the exact ISBN, plus filters, with every value a
/// parameter. Paging is stable: every order ends with the book's ID.
/// </summary>
public static class CatalogQuery
{
    public static (string Where, List<NpgsqlParameter> Parameters) Where(CatalogFilter filter)
    {
        var where = new StringBuilder("TRUE");
        var parameters = new List<NpgsqlParameter>();
        if (filter.Search is { } search)
        {
            parameters.Add(new NpgsqlParameter("q", search));
            var isbnClause = "";
            if (Isbn.TryNormalize(search, out var isbn))
            {
                parameters.Add(new NpgsqlParameter("isbn", isbn));
                isbnClause = " OR b.isbn = @isbn";
            }
            // word_similarity (<%) finds a misspelt word inside title/authors ("Le Guinn").
            where.Append($" AND (b.search_vector @@ websearch_to_tsquery('library_english', @q) OR lower(unaccent(@q)) <% b.search_text{isbnClause})");
        }
        if (filter.AuthorId is { } authorId)
        {
            parameters.Add(new NpgsqlParameter("author", authorId));
            where.Append(" AND EXISTS (SELECT 1 FROM book_authors ba WHERE ba.books_id = b.id AND ba.authors_id = @author)");
        }
        if (filter.CategoryId is { } categoryId)
        {
            parameters.Add(new NpgsqlParameter("category_id", categoryId));
            where.Append(" AND EXISTS (SELECT 1 FROM book_categories bc WHERE bc.books_id = b.id AND bc.categories_id = @category_id)");
        }
        if (filter.Category is { } category)
        {
            parameters.Add(new NpgsqlParameter("category_name", category.ToLowerInvariant()));
            where.Append(" AND EXISTS (SELECT 1 FROM book_categories bc JOIN categories c ON c.id = bc.categories_id WHERE bc.books_id = b.id AND c.normalized_name = @category_name)");
        }
        if (filter.Publisher is { } publisher)
        {
            parameters.Add(new NpgsqlParameter("publisher", publisher));
            where.Append(" AND lower(b.publisher) = lower(@publisher)");
        }
        if (filter.Language is { } language)
        {
            parameters.Add(new NpgsqlParameter("language", language));
            where.Append(" AND b.language = @language");
        }
        if (filter.Available is { } available)
        {
            where.Append(available ? " AND b.available_copies > 0" : " AND b.available_copies <= 0");
        }
        return (where.ToString(), parameters);
    }

    public static string OrderBy(string sort, bool hasSearch) => sort switch
    {
        "relevance" when hasSearch =>
            "ts_rank_cd(b.search_vector, websearch_to_tsquery('library_english', @q)) + word_similarity(lower(unaccent(@q)), b.search_text) DESC, b.title, b.id",
        "newest" => "b.published_year DESC NULLS LAST, b.created_at DESC, b.id",
        "popular" => "b.recent_loans DESC, b.title, b.id",
        _ => "b.title, b.id",
    };

    public static NpgsqlParameter Uuids(string name, IEnumerable<Guid> ids) =>
        new(name, NpgsqlDbType.Array | NpgsqlDbType.Uuid) { Value = ids.ToArray() };
}
