using System.ComponentModel.DataAnnotations;
using System.Data.Common;
using System.Text.Json;
using Library.BookService.Data;
using Library.BookService.OpenApi;
using Library.BookService.Validation;
using Library.Contracts.Events;
using Library.EventBus;
using Library.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Library.BookService.Books;

/// <summary>
/// The facets of a filter. <c>Exact</c> is false when the filter matched more titles than
/// <c>Catalog:SearchBound</c>: the counts are then a sample of that many matches scaled to the
/// estimated total (<see cref="SearchOptions"/>).
/// </summary>
public sealed record Facets(IReadOnlyList<CategoryFacet> Categories, IReadOnlyList<PublisherFacet> Publishers, IReadOnlyList<LanguageFacet> Languages, bool Exact);

/// <summary>
/// A page of books: <see cref="PagedList{T}"/>'s fields, and whether <c>TotalCount</c> counts
/// every match (false: more matched than <c>Catalog:SearchBound</c>, and the count is the
/// planner's estimate; <see cref="SearchOptions"/>).
/// </summary>
public sealed record BookPage(IReadOnlyList<BookResponse> Items, int Page, int PageSize, long TotalCount, bool TotalCountExact);
public sealed record CategoryFacet(Guid Id, string Name, long Count);
public sealed record PublisherFacet(string Name, long Count);
public sealed record LanguageFacet(string Code, long Count);

public static class BooksApi
{
    public static IEndpointRouteBuilder MapBooks(this IEndpointRouteBuilder app)
    {
        var books = app.MapGroup("/api/books").WithTags("Books");

        var reads = books.MapGroup("").AllowAnonymous();
        reads.MapGet("/", ListBooks).WithName("ListBooks")
            .WithSummary("Search and list books")
            .WithDescription("Anyone. Full text over title, subtitle, authors, description and ISBN (a misspelt word also finds the title, subtitle and author words it is closest to; exact matches rank first), filtered and sorted, one page at a time. Past Catalog:SearchBound matches (1,000 by default) totalCount is an estimate (totalCountExact false) and relevance ranks a candidate set: the first matches in title, subtitle or authors, then the first others; a page past that set ranks every match after it. 400 for a filter, sort or paging value out of its limits. " + CatalogQueryGate.BusyAnswer)
            .ProducesValidationProblem();
        reads.MapGet("/facets", GetFacets).WithName("GetFacets")
            .WithSummary("Count the books by category, publisher and language")
            .WithDescription("Anyone. The same filters as ListBooks; the 50 most frequent publishers. Past Catalog:SearchBound matches the counts are a sample's, scaled to the estimated total (exact false). 400 for a filter out of its limits. " + CatalogQueryGate.BusyAnswer)
            .ProducesValidationProblem();
        reads.MapGet("/{id:guid}", GetBook).WithName("GetBook")
            .WithSummary("Get a book")
            .WithDescription("Anyone. The ETag header carries the book's version, for If-Match on a change. 404 for an unknown ID.")
            .DocumentsETag();

        var writes = books.MapGroup("").RequireAuthorization(Policies.Librarian);
        writes.MapPost("/", CreateBook).WithName("CreateBook")
            .WithSummary("Add a title to the catalog")
            .WithDescription("Librarians. 201 with the book and its Location. 400 for a field out of its limits, a wrong ISBN check digit, or an unknown author or category ID; 409 when the ISBN is already catalogued.")
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status409Conflict)
            .DocumentsETag()
            .WithRequestExample(BookExample);
        writes.MapPut("/{id:guid}", UpdateBook).WithName("UpdateBook")
            .WithSummary("Change a book's fields")
            .WithDescription("Librarians. Every field but the stock (ChangeBookStock). 400 as CreateBook; 404 for an unknown ID; 409 when the new ISBN is another book's; 412 when If-Match names an older version.")
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status412PreconditionFailed)
            .DocumentsETag()
            .WithRequestExample(BookExample);
        writes.MapDelete("/{id:guid}", DeleteBook).WithName("DeleteBook")
            .WithSummary("Remove a title from the catalog")
            .WithDescription("Librarians. 404 for an unknown ID; 409 while copies are on loan; 412 when If-Match names an older version.")
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status412PreconditionFailed);
        writes.MapPut("/{id:guid}/stock", ChangeStock).WithName("ChangeBookStock")
            .WithSummary("Set the number of copies the library owns")
            .WithDescription("Librarians. Copies on loan stay on loan. 400 for a number outside 0..10000; 404 for an unknown ID; 412 when If-Match names an older version.")
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status412PreconditionFailed)
            .DocumentsETag()
            .WithRequestExample("""{ "totalCopies": 3 }""");
        writes.MapCatalogTransfer();
        return app;
    }

    private const string BookExample = """
        {
          "isbn": "978-0-441-47812-5",
          "title": "The Left Hand of Darkness",
          "subtitle": null,
          "description": "A human envoy on a world whose people are of no fixed sex.",
          "publisher": "Ace",
          "publishedYear": 1969,
          "language": "en",
          "pageCount": 304,
          "authorIds": ["01936f4e-8b2c-7d41-9a3e-5c2f1b0d4e6a"],
          "categoryIds": ["01936f4e-8b2c-7d41-9a3e-5c2f1b0d4e6b"],
          "totalCopies": 2
        }
        """;

    private static async Task<Ok<BookPage>> ListBooks(
        CatalogDbContext db, CatalogCache cache, CatalogQueryGate gate, IOptions<SearchOptions> options,
        [StringLength(CatalogFilter.MaxSearchLength, ErrorMessage = CatalogFilter.SearchMessage)]
        [RegularExpression(TextPattern.SingleLine, ErrorMessage = "search must not contain control characters.")] string? search,
        Guid? authorId, Guid? categoryId,
        [StringLength(CatalogFilter.MaxFilterLength, ErrorMessage = "category must have at most 200 characters.")]
        [RegularExpression(TextPattern.SingleLine, ErrorMessage = "category must not contain control characters.")] string? category,
        [StringLength(CatalogFilter.MaxFilterLength, ErrorMessage = "publisher must have at most 200 characters.")]
        [RegularExpression(TextPattern.SingleLine, ErrorMessage = "publisher must not contain control characters.")] string? publisher,
        [StringLength(CatalogFilter.MaxFilterLength, ErrorMessage = "language must have at most 200 characters.")]
        [RegularExpression(TextPattern.SingleLine, ErrorMessage = "language must not contain control characters.")] string? language,
        [StringLength(16, ErrorMessage = "available must have at most 16 characters.")]
        [OneOf("true", "false", ErrorMessage = CatalogFilter.AvailableMessage)] string? available,
        [StringLength(16, ErrorMessage = "sort must have at most 16 characters.")]
        [OneOf("relevance", "title", "newest", "popular", ErrorMessage = CatalogFilter.SortMessage)] string? sort,
        [Range(1, PageRequest.MaxPage, ErrorMessage = PageRequest.PageMessage)] int? page,
        [Range(1, PageRequest.MaxPageSize, ErrorMessage = PageRequest.PageSizeMessage)] int? pageSize,
        CancellationToken ct)
    {
        var filter = CatalogFilter.Create(search, authorId, categoryId, category, publisher, language, available);
        var paging = PageQuery.From(page, pageSize);
        sort = string.IsNullOrWhiteSpace(sort) ? (filter.Search is null ? "title" : "relevance") : sort.Trim().ToLowerInvariant();

        var bound = options.Value.SearchBound;

        var result = await cache.GetOrCreateAsync("books", new { filter, sort, paging.Page, paging.PageSize, bound }, async token =>
        {
            using var turn = await gate.EnterAsync(token);
            var (where, parameters, typo) = await CatalogQuery.WhereAsync(db, filter, readsRows: false, token);
            List<Guid> ids;
            long counted;
            bool bounded;
            double? estimate = null;
            if (filter.Search is not null && sort == "relevance")
            {
                // Ranking reads its candidates before it can cut the page, so their count rides
                // along instead of a second pass of the search predicate. A broad search ranks a
                // bounded candidate set (CatalogQuery.BoundedRankedPage); a deep page every match.
                // The planner's estimate first: it chooses how the candidates are read, and is the
                // count of a broad search.
                estimate = await EstimateAsync(db, where, parameters, token);
                string sql;
                (sql, bounded) = CatalogQuery.BoundedRankedPage(where, paging.PageSize, paging.Skip, typo, bound, estimate.Value);
                (ids, counted) = await IdsWithTotalAsync(db, sql, parameters, token);
                if (ids.Count == 0 && paging.Skip > 0)
                {
                    (counted, bounded) = (await ScalarAsync<long>(db, CatalogQuery.BoundedCount(where, bound), parameters, token), true); // past the end: no row to carry it
                }
            }
            else
            {
                // The other orders keep their count out of the page's plan (an index can serve the
                // page and stop after it), but send it in the same statement: an uncorrelated
                // subquery runs once (InitPlan), and the search saves a round trip.
                // The whole catalog, a category, a language or a publisher (a category with one of
                // the other two) are counted by the trigger-kept facet counts, not over their rows;
                // any other filter counts at most bound + 1 of its rows.
                var kept = CatalogQuery.KeptCount(filter, parameters);
                bounded = kept is null;
                var count = kept ?? CatalogQuery.BoundedCount(where, bound);
                var page = $"FROM books b WHERE {where} ORDER BY {CatalogQuery.OrderBy(sort)} LIMIT {paging.PageSize} OFFSET {paging.Skip}";
                (ids, counted) = await IdsWithTotalAsync(db, $"SELECT b.id, ({count}) {page}", parameters, token);
                if (ids.Count == 0 && paging.Skip > 0)
                {
                    counted = await ScalarAsync<long>(db, count, parameters, token); // past the end: no row to carry it
                }
            }
            var exact = !bounded || counted <= bound;
            var total = exact ? counted : Estimated(estimate ?? await EstimateAsync(db, where, parameters, token), bound);
            return new BookPage(await LoadInOrderAsync(db, ids, token), paging.Page, paging.PageSize, total, exact);
        }, ct, CatalogCache.ListDependencies(filter, sort));
        return TypedResults.Ok(result);
    }

    private static async Task<Ok<Facets>> GetFacets(
        CatalogDbContext db, CatalogCache cache, CatalogQueryGate gate, IOptions<SearchOptions> options,
        [StringLength(CatalogFilter.MaxSearchLength, ErrorMessage = CatalogFilter.SearchMessage)]
        [RegularExpression(TextPattern.SingleLine, ErrorMessage = "search must not contain control characters.")] string? search,
        Guid? authorId, Guid? categoryId,
        [StringLength(CatalogFilter.MaxFilterLength, ErrorMessage = "category must have at most 200 characters.")]
        [RegularExpression(TextPattern.SingleLine, ErrorMessage = "category must not contain control characters.")] string? category,
        [StringLength(CatalogFilter.MaxFilterLength, ErrorMessage = "publisher must have at most 200 characters.")]
        [RegularExpression(TextPattern.SingleLine, ErrorMessage = "publisher must not contain control characters.")] string? publisher,
        [StringLength(CatalogFilter.MaxFilterLength, ErrorMessage = "language must have at most 200 characters.")]
        [RegularExpression(TextPattern.SingleLine, ErrorMessage = "language must not contain control characters.")] string? language,
        [StringLength(16, ErrorMessage = "available must have at most 16 characters.")]
        [OneOf("true", "false", ErrorMessage = CatalogFilter.AvailableMessage)] string? available,
        CancellationToken ct)
    {
        var filter = CatalogFilter.Create(search, authorId, categoryId, category, publisher, language, available);

        var bound = options.Value.SearchBound;

        var facets = await cache.GetOrCreateAsync("facets", new { filter, bound }, async token =>
        {
            using var turn = await gate.EnterAsync(token);
            string sql;
            List<NpgsqlParameter> parameters;
            string? where = null;
            if (FacetCountsScope(filter) is { } scope)
            {
                (sql, parameters) = scope;
            }
            else
            {
                (where, parameters, _) = await CatalogQuery.WhereAsync(db, filter, readsRows: true, token);
                // The categories come from the matches' own rows (books.category_ids, kept by
                // refresh_book_search()): joined with book_categories, every facet read that whole
                // index (165,000 entries at 100,000 titles) or probed it once per match. The
                // matches are counted in one pass, three grouping sets at once (GROUPING tells
                // them apart: 3 = by publisher, 5 = by language, 6 = by categories), and only those
                // few groups are then split into categories and folded by lower-case publisher:
                // grouped per match (a CTE read three times, unnest and lower() on every row) the
                // same answer took 1.6x the database time (bench/README.md, search at scale,
                // seventh pass). At most bound + 1 matches are read (in the table's order): past
                // the bound they are a sample, scaled below to the estimated total.
                sql = $"""
                    WITH g AS MATERIALIZED (
                        SELECT b.publisher, b.language, b.category_ids, count(*) AS n,
                               GROUPING(b.publisher, b.language, b.category_ids) AS s
                        FROM (SELECT b.publisher, b.language, b.category_ids FROM books b WHERE {where} LIMIT {bound + 1L}) b
                        GROUP BY GROUPING SETS ((b.publisher), (b.language), (b.category_ids)))
                    SELECT 'category', c.id::text, c.name, k.n FROM (
                        SELECT fc.id, sum(g.n)::bigint AS n FROM g CROSS JOIN LATERAL unnest(g.category_ids) AS fc(id)
                        WHERE g.s = 6 GROUP BY fc.id) k
                        JOIN categories c ON c.id = k.id
                    UNION ALL
                    SELECT 'publisher', NULL, min(g.publisher), sum(g.n)::bigint FROM g WHERE g.s = 3 GROUP BY lower(g.publisher)
                    UNION ALL
                    SELECT 'language', NULL, g.language, g.n FROM g WHERE g.s = 5 AND g.language IS NOT NULL
                    """;
            }
            var categories = new List<CategoryFacet>();
            var publishers = new List<PublisherFacet>();
            var languages = new List<LanguageFacet>();
            await using (var command = await CommandAsync(db, sql, parameters, token))
            await using (var reader = await command.ExecuteReaderAsync(token))
            {
                while (await reader.ReadAsync(token))
                {
                    var count = reader.GetInt64(3);
                    switch (reader.GetString(0))
                    {
                        case "category": categories.Add(new CategoryFacet(Guid.Parse(reader.GetString(1)), reader.GetString(2), count)); break;
                        case "publisher": publishers.Add(new PublisherFacet(reader.GetString(2), count)); break;
                        default: languages.Add(new LanguageFacet(reader.GetString(2), count)); break;
                    }
                }
            }
            // Every match has one publisher: their counts add up to the matches read.
            var read = publishers.Sum(p => p.Count);
            var exact = where is null || read <= bound;
            if (!exact)
            {
                var scale = (double)Estimated(await EstimateAsync(db, where!, parameters, token), bound) / read;
                long Scaled(long n) => Math.Max(1, (long)Math.Round(n * scale));
                categories = categories.ConvertAll(c => c with { Count = Scaled(c.Count) });
                publishers = publishers.ConvertAll(p => p with { Count = Scaled(p.Count) });
                languages = languages.ConvertAll(l => l with { Count = Scaled(l.Count) });
            }
            return new Facets(
                categories.OrderByDescending(c => c.Count).ThenBy(c => c.Name, StringComparer.Ordinal).ToList(),
                publishers.OrderByDescending(p => p.Count).ThenBy(p => p.Name, StringComparer.Ordinal).Take(50).ToList(),
                languages.OrderByDescending(l => l.Count).ThenBy(l => l.Code, StringComparer.Ordinal).ToList(),
                exact);
        }, ct, CatalogCache.ListDependencies(filter, null));
        return TypedResults.Ok(facets);
    }

    /// <summary>
    /// The facets of the whole catalog or of one category (no other filter) from the counts kept by
    /// a trigger on books in every write's transaction (catalog_facet_counts, migration
    /// SearchAtScale6; scope: the category's ID, or the nil UUID for the whole catalog): the same
    /// rows, counts and spellings as the query over the matching titles, without reading them
    /// (a category of 20,000 titles at 100,000: bench/README.md, search at scale, sixth pass).
    /// Null for any other filter. A category by a name no category has finds no scope: no facet.
    /// </summary>
    internal static (string Sql, List<NpgsqlParameter> Parameters)? FacetCountsScope(CatalogFilter filter)
    {
        if (filter.Search is not null || filter.AuthorId is not null || filter.Publisher is not null || filter.Language is not null
            || filter.Available is not null || (filter.CategoryId is not null && filter.Category is not null))
        {
            return null;
        }
        var parameters = new List<NpgsqlParameter>();
        var scope = CatalogQuery.KeptScope(filter, parameters);
        var sql = $"""
            WITH k AS (SELECT f.kind, f.value, f.count FROM catalog_facet_counts f WHERE f.scope = {scope} AND f.count > 0)
            SELECT 'category', c.id::text, c.name, k.count FROM k JOIN categories c ON c.id::text = k.value WHERE k.kind = 'c'
            UNION ALL
            SELECT 'publisher', NULL, min(k.value), sum(k.count)::bigint FROM k WHERE k.kind = 'p' GROUP BY lower(k.value)
            UNION ALL
            SELECT 'language', NULL, k.value, k.count FROM k WHERE k.kind = 'l'
            """;
        return (sql, parameters);
    }

    private static async Task<Results<Ok<BookResponse>, NotFound>> GetBook(Guid id, CatalogDbContext db, CatalogCache cache, HttpResponse response, CancellationToken ct)
    {
        var book = await cache.GetOrCreateAsync("book", id, token =>
            db.Books.AsNoTracking().Where(b => b.Id == id).Select(BookResponse.Projection).SingleOrDefaultAsync(token), ct);
        if (book is null)
        {
            return TypedResults.NotFound();
        }
        response.Headers.ETag = ETag(book.Version);
        return TypedResults.Ok(book);
    }

    private static async Task<Results<Created<BookResponse>, ValidationProblem, ProblemHttpResult>> CreateBook(
        NewBookRequest request, CatalogDbContext db, TimeProvider time, HttpResponse response, CancellationToken ct)
    {
        var isbn = NormalizedIsbn(request);
        var (authors, categories, unknown) = await ResolveAsync(db, request, ct);
        if (unknown is not null)
        {
            return unknown;
        }
        if (await db.Books.AnyAsync(b => b.Isbn == isbn, ct))
        {
            return DuplicateIsbn(isbn);
        }

        var now = time.GetUtcNow();
        var book = new Book
        {
            Isbn = isbn,
            Title = request.Title!.Trim(),
            Subtitle = Trim(request.Subtitle),
            Description = Trim(request.Description),
            Publisher = request.Publisher!.Trim(),
            PublishedYear = request.PublishedYear,
            Language = request.Language?.ToLowerInvariant(),
            PageCount = request.PageCount,
            TotalCopies = request.TotalCopies!.Value,
            AvailableCopies = request.TotalCopies!.Value,
            CreatedAt = now,
            UpdatedAt = now,
            Authors = authors,
            Categories = categories,
        };
        db.Books.Add(book);
        db.AddEvent(new BookCreated(book.Id, book.Isbn, book.Title, book.TotalCopies, book.Version));
        try
        {
            await SaveWithSearchAsync(db, [book.Id], ct);
        }
        catch (DbUpdateException ex) when (ex.InnerException is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation })
        {
            return DuplicateIsbn(isbn);
        }

        var created = await db.Books.AsNoTracking().Where(b => b.Id == book.Id).Select(BookResponse.Projection).SingleAsync(ct);
        response.Headers.ETag = ETag(created.Version);
        return TypedResults.Created($"/api/books/{book.Id}", created);
    }

    private static async Task<Results<Ok<BookResponse>, NotFound, ValidationProblem, ProblemHttpResult>> UpdateBook(
        Guid id, BookRequest request, [FromHeader(Name = "If-Match"), StringLength(MaxIfMatch, ErrorMessage = IfMatchMessage)] string? ifMatch, CatalogDbContext db, TimeProvider time, HttpResponse response, CancellationToken ct)
    {
        var isbn = NormalizedIsbn(request);
        var book = await db.Books.Include(b => b.Authors).Include(b => b.Categories).SingleOrDefaultAsync(b => b.Id == id, ct);
        if (book is null)
        {
            return TypedResults.NotFound();
        }
        if (StaleIfMatch(ifMatch, book.Version) is { } stale)
        {
            return stale;
        }
        var (authors, categories, unknown) = await ResolveAsync(db, request, ct);
        if (unknown is not null)
        {
            return unknown;
        }
        if (isbn != book.Isbn && await db.Books.AnyAsync(b => b.Isbn == isbn, ct))
        {
            return DuplicateIsbn(isbn);
        }

        book.Isbn = isbn;
        book.Title = request.Title!.Trim();
        book.Subtitle = Trim(request.Subtitle);
        book.Description = Trim(request.Description);
        book.Publisher = request.Publisher!.Trim();
        book.PublishedYear = request.PublishedYear;
        book.Language = request.Language?.ToLowerInvariant();
        book.PageCount = request.PageCount;
        book.Authors = authors;
        book.Categories = categories;
        book.UpdatedAt = time.GetUtcNow();
        book.Version++;
        db.AddEvent(new BookUpdated(book.Id, book.Isbn, book.Title, book.TotalCopies, book.Version));
        try
        {
            await SaveWithSearchAsync(db, [book.Id], ct);
        }
        catch (DbUpdateConcurrencyException)
        {
            return PreconditionFailed();
        }
        catch (DbUpdateException ex) when (ex.InnerException is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation })
        {
            return DuplicateIsbn(isbn);
        }
        return await CurrentAsync(db, id, response, ct);
    }

    /// <summary>409 while copies are on loan (from the lending service's availability events).</summary>
    private static async Task<Results<NoContent, NotFound, ProblemHttpResult>> DeleteBook(
        Guid id, [FromHeader(Name = "If-Match"), StringLength(MaxIfMatch, ErrorMessage = IfMatchMessage)] string? ifMatch, CatalogDbContext db, CancellationToken ct)
    {
        var book = await db.Books.SingleOrDefaultAsync(b => b.Id == id, ct);
        if (book is null)
        {
            return TypedResults.NotFound();
        }
        if (StaleIfMatch(ifMatch, book.Version) is { } stale)
        {
            return stale;
        }
        if (book.TotalCopies - book.AvailableCopies > 0)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Copies on loan",
                detail: $"{book.TotalCopies - book.AvailableCopies} copies of this title are on loan; delete it once they are back.");
        }

        db.Books.Remove(book);
        db.AddEvent(new BookDeleted(book.Id, book.Version + 1));
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateConcurrencyException)
        {
            return PreconditionFailed();
        }
        return TypedResults.NoContent();
    }

    /// <summary>Changes the copies the library owns; copies on loan stay on loan.</summary>
    private static async Task<Results<Ok<BookResponse>, NotFound, ProblemHttpResult>> ChangeStock(
        Guid id, StockRequest request, [FromHeader(Name = "If-Match"), StringLength(MaxIfMatch, ErrorMessage = IfMatchMessage)] string? ifMatch, CatalogDbContext db, TimeProvider time, HttpResponse response, CancellationToken ct)
    {
        var book = await db.Books.SingleOrDefaultAsync(b => b.Id == id, ct);
        if (book is null)
        {
            return TypedResults.NotFound();
        }
        if (StaleIfMatch(ifMatch, book.Version) is { } stale)
        {
            return stale;
        }

        var total = request.TotalCopies!.Value;
        if (total != book.TotalCopies)
        {
            book.AvailableCopies += total - book.TotalCopies;
            book.TotalCopies = total;
            book.UpdatedAt = time.GetUtcNow();
            book.Version++;
            db.AddEvent(new BookStockChanged(book.Id, book.TotalCopies, book.Version));
            try
            {
                await db.SaveChangesAsync(ct);
            }
            catch (DbUpdateConcurrencyException)
            {
                return PreconditionFailed();
            }
        }
        return await CurrentAsync(db, id, response, ct);
    }

    private static async Task<Ok<BookResponse>> CurrentAsync(CatalogDbContext db, Guid id, HttpResponse response, CancellationToken ct)
    {
        var book = await db.Books.AsNoTracking().Where(b => b.Id == id).Select(BookResponse.Projection).SingleAsync(ct);
        response.Headers.ETag = ETag(book.Version);
        return TypedResults.Ok(book);
    }

    /// <summary>Saves the unit of work and refreshes the books' search columns in the same transaction.</summary>
    internal static Task SaveWithSearchAsync(CatalogDbContext db, Guid[] bookIds, CancellationToken ct) =>
        db.Database.CreateExecutionStrategy().ExecuteAsync(async token =>
        {
            await using var transaction = await db.Database.BeginTransactionAsync(token);
            await db.SaveChangesAsync(token);
            await db.Database.ExecuteSqlAsync($"SELECT refresh_book_search({bookIds})", token);
            await transaction.CommitFinishedAsync();
        }, ct);

    private static async Task<(List<Author> Authors, List<Category> Categories, ValidationProblem? Problem)> ResolveAsync(CatalogDbContext db, BookRequest request, CancellationToken ct)
    {
        var authorIds = (request.AuthorIds ?? []).Distinct().ToList();
        var categoryIds = (request.CategoryIds ?? []).Distinct().ToList();
        var authors = await db.Authors.Where(a => authorIds.Contains(a.Id)).ToListAsync(ct);
        var categories = await db.Categories.Where(c => categoryIds.Contains(c.Id)).ToListAsync(ct);
        var errors = new Dictionary<string, string[]>();
        var missingAuthors = authorIds.Except(authors.Select(a => a.Id)).ToList();
        var missingCategories = categoryIds.Except(categories.Select(c => c.Id)).ToList();
        if (missingAuthors.Count > 0)
        {
            errors["authorIds"] = [$"Unknown author IDs: {string.Join(", ", missingAuthors)}."];
        }
        if (missingCategories.Count > 0)
        {
            errors["categoryIds"] = [$"Unknown category IDs: {string.Join(", ", missingCategories)}."];
        }
        return (authors, categories, errors.Count > 0 ? TypedResults.ValidationProblem(errors) : null);
    }

    /// <summary>
    /// A page's books in the order of <paramref name="ids"/>, as <see cref="BookResponse.Projection"/>
    /// gives them: one statement, its authors and categories aggregated per book (ordered by name,
    /// then ID), prepared once per connection. Every list answer sends it: EF's statement for the
    /// same projection was planned again for every page (0.85 ms of planning, 7 % of the database's
    /// time under the search load; bench/README.md, search at scale, eighth pass), and its joins
    /// returned a row per author and category pair.
    /// </summary>
    internal static async Task<List<BookResponse>> LoadInOrderAsync(CatalogDbContext db, List<Guid> ids, CancellationToken ct)
    {
        if (ids.Count == 0)
        {
            return [];
        }
        await using var command = await CommandAsync(db, LoadSql, [CatalogQuery.Uuids("ids", ids)], ct);
        await command.PrepareAsync(ct);
        await using var reader = await command.ExecuteReaderAsync(ct);
        var byId = new Dictionary<Guid, BookResponse>(ids.Count);
        while (await reader.ReadAsync(ct))
        {
            string? Text(int i) => reader.IsDBNull(i) ? null : reader.GetString(i);
            int? Number(int i) => reader.IsDBNull(i) ? null : reader.GetInt32(i);
            var book = new BookResponse(
                reader.GetGuid(0), reader.GetString(1), reader.GetString(2), Text(3), Text(4), reader.GetString(5), Number(6), Text(7), Number(8),
                NamedRefs(reader.GetString(9)), NamedRefs(reader.GetString(10)),
                reader.GetInt32(11), reader.GetInt32(12),
                reader.IsDBNull(13) ? null : reader.GetFieldValue<DateTimeOffset>(13),
                reader.GetInt64(14));
            byId[book.Id] = book;
        }
        return ids.Where(byId.ContainsKey).Select(i => byId[i]).ToList();
    }

    /// <summary>
    /// The statement of <see cref="LoadInOrderAsync"/>: <see cref="BookResponse.Projection"/> in SQL.
    /// Text columns as <c>text</c>: a migration that changes a column's length does not change
    /// the prepared statement's result type (PostgreSQL would refuse it once per connection:
    /// "cached plan must not change result type", outside any retry here).
    /// </summary>
    private const string LoadSql = """
        SELECT b.id, b.isbn::text, b.title::text, b.subtitle::text, b.description::text, b.publisher::text, b.published_year, b.language::text, b.page_count,
               coalesce((SELECT json_agg(json_build_array(a.id, a.name) ORDER BY a.name, a.id)
                         FROM book_authors ba JOIN authors a ON a.id = ba.authors_id WHERE ba.books_id = b.id), '[]')::text,
               coalesce((SELECT json_agg(json_build_array(c.id, c.name) ORDER BY c.name, c.id)
                         FROM book_categories bc JOIN categories c ON c.id = bc.categories_id WHERE bc.books_id = b.id), '[]')::text,
               b.total_copies, greatest(b.available_copies, 0), b.next_available_at, b.version
        FROM books b WHERE b.id = ANY(@ids)
        """;

    /// <summary>[[id, name], ...] as json_build_array writes them.</summary>
    private static List<NamedRef> NamedRefs(string json)
    {
        using var document = JsonDocument.Parse(json);
        var refs = new List<NamedRef>(document.RootElement.GetArrayLength());
        foreach (var pair in document.RootElement.EnumerateArray())
        {
            refs.Add(new NamedRef(pair[0].GetGuid(), pair[1].GetString()!));
        }
        return refs;
    }

    internal static async Task<DbCommand> CommandAsync(CatalogDbContext db, string sql, IEnumerable<NpgsqlParameter> parameters, CancellationToken ct)
    {
        await db.Database.OpenConnectionAsync(ct);
        var command = db.Database.GetDbConnection().CreateCommand();
        command.CommandText = sql;
        foreach (var p in parameters)
        {
            command.Parameters.Add(p.Clone());
        }
        return command;
    }

    internal static async Task<List<Guid>> IdsAsync(CatalogDbContext db, string sql, IEnumerable<NpgsqlParameter> parameters, CancellationToken ct)
    {
        await using var command = await CommandAsync(db, sql, parameters, ct);
        await using var reader = await command.ExecuteReaderAsync(ct);
        var ids = new List<Guid>();
        while (await reader.ReadAsync(ct))
        {
            ids.Add(reader.GetGuid(0));
        }
        return ids;
    }

    /// <summary>The IDs of a page whose second column is <c>count(*) OVER ()</c>: the total of the matches (0 with no row).</summary>
    private static async Task<(List<Guid> Ids, long Total)> IdsWithTotalAsync(CatalogDbContext db, string sql, IEnumerable<NpgsqlParameter> parameters, CancellationToken ct)
    {
        await using var command = await CommandAsync(db, sql, parameters, ct);
        await using var reader = await command.ExecuteReaderAsync(ct);
        var ids = new List<Guid>();
        var total = 0L;
        while (await reader.ReadAsync(ct))
        {
            ids.Add(reader.GetGuid(0));
            total = reader.GetInt64(1);
        }
        return (ids, total);
    }

    /// <summary>The planner's estimate of a filter's matches (CatalogQuery.Estimate).</summary>
    private static async Task<double> EstimateAsync(CatalogDbContext db, string where, IEnumerable<NpgsqlParameter> parameters, CancellationToken ct)
    {
        using var plan = JsonDocument.Parse(await ScalarAsync<string>(db, CatalogQuery.Estimate(where), parameters, ct));
        return plan.RootElement[0].GetProperty("Plan").GetProperty("Plan Rows").GetDouble();
    }

    /// <summary>The count given for more than <paramref name="bound"/> matches: the estimate, at least bound + 1.</summary>
    private static long Estimated(double estimate, int bound) => Math.Max((long)Math.Round(estimate), bound + 1L);

    private static async Task<T> ScalarAsync<T>(CatalogDbContext db, string sql, IEnumerable<NpgsqlParameter> parameters, CancellationToken ct)
    {
        await using var command = await CommandAsync(db, sql, parameters, ct);
        return (T)(await command.ExecuteScalarAsync(ct))!;
    }

    internal static string ETag(long version) => $"\"{version}\"";

    /// <summary>The longest If-Match header taken: a list of a few ETags, never more.</summary>
    public const int MaxIfMatch = 1000;
    private const string IfMatchMessage = "If-Match must have at most 1000 characters.";

    /// <summary>412 when the client's If-Match names another version than the stored one.</summary>
    private static ProblemHttpResult? StaleIfMatch(string? ifMatch, long version)
    {
        if (string.IsNullOrEmpty(ifMatch) || ifMatch == "*")
        {
            return null;
        }
        var tags = ifMatch.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(t => t.StartsWith("W/", StringComparison.Ordinal) ? t[2..] : t);
        return tags.Contains(ETag(version)) ? null : PreconditionFailed();
    }

    private static ProblemHttpResult PreconditionFailed() => TypedResults.Problem(statusCode: StatusCodes.Status412PreconditionFailed,
        title: "Changed meanwhile", detail: "The book changed since you read it (If-Match). Read it again and repeat the change.");

    private static ProblemHttpResult DuplicateIsbn(string isbn) => TypedResults.Problem(statusCode: StatusCodes.Status409Conflict,
        title: "Duplicate ISBN", detail: $"A book with ISBN {isbn} is already in the catalog.");

    /// <summary>The ISBN-13 of a request the endpoint's validation accepted (IsbnAttribute).</summary>
    private static string NormalizedIsbn(BookRequest request) =>
        Isbn.TryNormalize(request.Isbn, out var isbn) ? isbn : throw new InvalidOperationException("The request's ISBN was not validated.");

    private static string? Trim(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
