using System.Text;
using Library.BookService.Data;
using Library.ServiceDefaults;
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
    /// <summary>
    /// The WHERE clause of a filter and its parameters. The search's tsquery and its unaccented
    /// lower case, and a category's ID by name, are resolved first in one round trip and passed
    /// as constants: written inline, <c>websearch_to_tsquery</c> and <c>unaccent</c> (stable, not
    /// immutable) ran again for every match in the ranking, and a join to <c>categories</c> by
    /// name hid the category from the planner's statistics (bench/README.md, search at scale).
    /// </summary>
    /// <param name="readsRows">The statement reads the matching books' rows anyway (the facets read their
    /// publisher, language and categories): see <see cref="Where"/>.</param>
    public static async Task<(string Where, List<NpgsqlParameter> Parameters)> WhereAsync(CatalogDbContext db, CatalogFilter filter, bool readsRows, CancellationToken ct)
    {
        string? tsQuery = null, unaccented = null;
        Guid? categoryByName = null;
        if (filter.Search is not null || filter.Category is not null)
        {
            await using var command = await BooksApi.CommandAsync(db, """
                SELECT websearch_to_tsquery('library_english', @q)::text, lower(unaccent(@q)),
                       (SELECT c.id FROM categories c WHERE c.normalized_name = @category_name)
                """,
                [new NpgsqlParameter("q", filter.Search ?? ""), new NpgsqlParameter("category_name", filter.Category?.ToLowerInvariant() ?? "")], ct);
            await using var reader = await command.ExecuteReaderAsync(ct);
            await reader.ReadAsync(ct);
            tsQuery = reader.GetString(0);
            unaccented = reader.GetString(1);
            categoryByName = reader.IsDBNull(2) ? null : reader.GetGuid(2);
        }
        return Where(filter, tsQuery, unaccented, categoryByName, readsRows);
    }

    /// <summary>
    /// A category is tested in one of two equivalent forms (books.category_ids holds exactly a title's
    /// book_categories, written by <c>refresh_book_search()</c> in the same transaction), since the
    /// planner cannot know they are equivalent and each is cheaper in its own case (bench/README.md,
    /// search at scale, fourth pass): when the statement reads the books' rows anyway (a search,
    /// a publisher, language or availability filter, the facets), the row's own <c>category_ids</c>
    /// (a filter on the row, or its GIN index: a bitmap in heap order); when the filters are only a
    /// category or an author, <c>EXISTS</c> on book_categories, which a count answers from two
    /// indexes without reading a row (a merge join: 0.5x of the bitmap over the rows).
    /// </summary>
    private static (string Where, List<NpgsqlParameter> Parameters) Where(CatalogFilter filter, string? tsQuery, string? unaccented, Guid? categoryByName, bool readsRows)
    {
        var rowCategories = readsRows || filter.Search is not null || filter.Publisher is not null || filter.Language is not null || filter.Available is not null;
        var where = new StringBuilder("TRUE");
        var parameters = new List<NpgsqlParameter>();
        if (filter.Search is { } search)
        {
            // tsquery's text form reads back as the same query; the cast of a constant is folded
            // at planning, so the planner still sees the words (row estimates, index choice).
            parameters.Add(new NpgsqlParameter("tsq", tsQuery));
            parameters.Add(new NpgsqlParameter("uq", unaccented));
            var isbnClause = "";
            if (Isbn.TryNormalize(search, out var isbn))
            {
                parameters.Add(new NpgsqlParameter("isbn", isbn));
                isbnClause = " OR b.isbn = @isbn";
            }
            // word_similarity finds a misspelt word inside title/authors ("Le Guinn"). Written as
            // the index's own operator (search_text %> q, the commutator of q <% search_text): in
            // the other form the planner did not see the OR as the bitmap scan's recheck and
            // evaluated it a second time as a filter on every match (bench/README.md, third pass).
            where.Append($" AND (b.search_vector @@ @tsq::tsquery OR b.search_text %> @uq{isbnClause})");
        }
        if (filter.AuthorId is { } authorId)
        {
            parameters.Add(new NpgsqlParameter("author", authorId));
            where.Append(" AND EXISTS (SELECT 1 FROM book_authors ba WHERE ba.books_id = b.id AND ba.authors_id = @author)");
        }
        if (filter.CategoryId is { } categoryId)
        {
            where.Append(CategoryClause(parameters, "category_id", categoryId, rowCategories));
        }
        if (filter.Category is not null)
        {
            // No category of that name: no book matches (as the join by name answered before).
            if (categoryByName is { } byName)
            {
                where.Append(CategoryClause(parameters, "category_by_name", byName, rowCategories));
            }
            else
            {
                where.Append(" AND FALSE");
            }
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

    /// <summary>
    /// A ranked page's IDs with the count of every match, in the order of <see cref="OrderBy"/>'s
    /// "relevance" (score = <c>ts_rank_cd</c> + <c>word_similarity</c>, then title, ID), exactly.
    /// <c>word_similarity</c> cost about 8 us per match, most of a broad search (bench/README.md,
    /// search at scale), so it is computed only where it can change the page: it lies in [0, 1],
    /// so a match whose rank + 1 is below a score that <paramref name="skip"/> + <paramref name="take"/>
    /// matches already reach cannot be on the page or before it. That bound comes from the full
    /// scores of the best matches by rank alone (a few times the page, at least
    /// <see cref="BoundCandidates"/>); the rest are filtered out before the ORDER BY, which then sorts the
    /// same scores (same real arithmetic) as before. With fewer matches than the page's end, no
    /// bound: every match is scored. Those candidates are cut by rank in a subquery of their own
    /// before they are scored: written in one SELECT, PostgreSQL computed the projected score of
    /// every match below the sort (word_similarity is declared cheap), which undid the bound.
    /// </summary>
    public static string RankedPageWithTotal(string where, int take, int skip)
    {
        var end = (long)skip + take;
        var candidates = Math.Max(BoundCandidates, 4 * end);
        return $"""
            WITH m AS MATERIALIZED (
                SELECT b.id, b.title, b.search_text, ts_rank_cd(b.search_vector, @tsq::tsquery) AS rank
                FROM books b WHERE {where}),
            bound AS (
                SELECT s.rank + word_similarity(@uq, s.search_text) AS score FROM (
                    SELECT m.rank, m.search_text FROM m ORDER BY m.rank DESC LIMIT {candidates}) s
                ORDER BY score DESC OFFSET {end - 1} LIMIT 1)
            SELECT p.id, (SELECT count(*) FROM m) FROM (
                SELECT m.id, m.title, m.rank + word_similarity(@uq, m.search_text) AS score FROM m
                WHERE m.rank + 1::real >= coalesce((SELECT bound.score FROM bound), '-Infinity'::real)) p
            ORDER BY p.score DESC, p.title, p.id LIMIT {take} OFFSET {skip}
            """;
    }

    /// <summary>How many of the best matches by rank are fully scored to bound a ranked page (at least).</summary>
    public const int BoundCandidates = 100;

    /// <summary>The ORDER BY of a page; "relevance" uses the parameters <see cref="WhereAsync"/> resolved.</summary>
    public static string OrderBy(string sort, bool hasSearch) => sort switch
    {
        "relevance" when hasSearch =>
            "ts_rank_cd(b.search_vector, @tsq::tsquery) + word_similarity(@uq, b.search_text) DESC, b.title, b.id",
        "newest" => "b.published_year DESC NULLS LAST, b.created_at DESC, b.id",
        "popular" => "b.recent_loans DESC, b.title, b.id",
        _ => "b.title, b.id",
    };

    private static string CategoryClause(List<NpgsqlParameter> parameters, string name, Guid categoryId, bool rowCategories)
    {
        if (rowCategories)
        {
            parameters.Add(new NpgsqlParameter(name, NpgsqlDbType.Array | NpgsqlDbType.Uuid) { Value = new[] { categoryId } });
            return $" AND b.category_ids @> @{name}";
        }
        parameters.Add(new NpgsqlParameter(name, categoryId));
        return $" AND EXISTS (SELECT 1 FROM book_categories bc WHERE bc.books_id = b.id AND bc.categories_id = @{name})";
    }

    public static NpgsqlParameter Uuids(string name, IEnumerable<Guid> ids) =>
        new(name, NpgsqlDbType.Array | NpgsqlDbType.Uuid) { Value = ids.ToArray() };
}
