using System.Data.Common;
using Library.BookService.Data;
using Library.Contracts.Events;
using Library.EventBus;
using Library.ServiceDefaults;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Library.BookService.Books;

public sealed record Facets(IReadOnlyList<CategoryFacet> Categories, IReadOnlyList<PublisherFacet> Publishers, IReadOnlyList<LanguageFacet> Languages);
public sealed record CategoryFacet(Guid Id, string Name, long Count);
public sealed record PublisherFacet(string Name, long Count);
public sealed record LanguageFacet(string Code, long Count);

public static class BooksApi
{
    public static IEndpointRouteBuilder MapBooks(this IEndpointRouteBuilder app)
    {
        var books = app.MapGroup("/api/books").WithTags("Books");
        books.MapGet("/", ListBooks).WithName("ListBooks");
        books.MapGet("/facets", GetFacets).WithName("GetFacets");
        books.MapGet("/{id:guid}", GetBook).WithName("GetBook");
        books.MapPost("/", CreateBook).RequireAuthorization(Policies.Librarian);
        books.MapPut("/{id:guid}", UpdateBook).RequireAuthorization(Policies.Librarian);
        books.MapDelete("/{id:guid}", DeleteBook).RequireAuthorization(Policies.Librarian);
        books.MapPut("/{id:guid}/stock", ChangeStock).RequireAuthorization(Policies.Librarian);
        books.MapCatalogTransfer();
        return app;
    }

    private static async Task<IResult> ListBooks(
        CatalogDbContext db, CatalogCache cache,
        string? search, Guid? authorId, Guid? categoryId, string? category, string? publisher, string? language, string? available,
        string? sort, int? page, int? pageSize, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        if (!PageRequest.TryCreate(page, pageSize, out var paging, out _))
        {
            errors["page"] = ["page must be 1 or more and pageSize between 1 and 100."];
        }
        if (!CatalogFilter.TryCreate(search, authorId, categoryId, category, publisher, language, available, out var filter, out var filterErrors))
        {
            foreach (var (k, v) in filterErrors)
            {
                errors[k] = v;
            }
        }
        sort = string.IsNullOrWhiteSpace(sort) ? (filter.Search is null ? "title" : "relevance") : sort.Trim().ToLowerInvariant();
        if (!CatalogFilter.Sorts.Contains(sort))
        {
            errors["sort"] = [$"sort must be one of: {string.Join(", ", CatalogFilter.Sorts)}."];
        }
        if (errors.Count > 0)
        {
            return Results.ValidationProblem(errors);
        }

        var result = await cache.GetOrCreateAsync("books", new { filter, sort, paging.Page, paging.PageSize }, async token =>
        {
            var (where, parameters) = await CatalogQuery.WhereAsync(db, filter, token);
            var page = $"FROM books b WHERE {where} ORDER BY {CatalogQuery.OrderBy(sort, filter.Search is not null)} LIMIT {paging.PageSize} OFFSET {paging.Skip}";
            List<Guid> ids;
            long total;
            if (filter.Search is not null && sort == "relevance")
            {
                // Ranking scores every match before it can cut the page, so the count rides along
                // (count(*) OVER ()) instead of a second pass of the search predicate over the
                // matches: about half the database work of an uncached search (bench/README.md).
                // The other orders keep a separate count: an index can serve them and stop after
                // the page, which a window over every match would prevent.
                (ids, total) = await IdsWithTotalAsync(db, CatalogQuery.RankedPageWithTotal(where, paging.PageSize, paging.Skip), parameters, token);
                if (ids.Count == 0 && paging.Skip > 0)
                {
                    total = await ScalarAsync<long>(db, $"SELECT count(*) FROM books b WHERE {where}", parameters, token); // past the end: no row to carry it
                }
            }
            else
            {
                total = await ScalarAsync<long>(db, $"SELECT count(*) FROM books b WHERE {where}", parameters, token);
                ids = await IdsAsync(db, $"SELECT b.id {page}", parameters, token);
            }
            return new PagedList<BookResponse>(await LoadInOrderAsync(db, ids, token), paging.Page, paging.PageSize, total);
        }, ct, CatalogCache.ListDependencies(filter, sort));
        return Results.Ok(result);
    }

    private static async Task<IResult> GetFacets(
        CatalogDbContext db, CatalogCache cache,
        string? search, Guid? authorId, Guid? categoryId, string? category, string? publisher, string? language, string? available, CancellationToken ct)
    {
        if (!CatalogFilter.TryCreate(search, authorId, categoryId, category, publisher, language, available, out var filter, out var errors))
        {
            return Results.ValidationProblem(errors);
        }

        var facets = await cache.GetOrCreateAsync("facets", filter, async token =>
        {
            var (where, parameters) = await CatalogQuery.WhereAsync(db, filter, token);
            var sql = $"""
                WITH f AS (SELECT b.id, b.publisher, b.language FROM books b WHERE {where})
                SELECT 'category', c.id::text, c.name, count(*) FROM f
                    JOIN book_categories bc ON bc.books_id = f.id JOIN categories c ON c.id = bc.categories_id
                    GROUP BY c.id, c.name
                UNION ALL
                SELECT 'publisher', NULL, min(f.publisher), count(*) FROM f GROUP BY lower(f.publisher)
                UNION ALL
                SELECT 'language', NULL, f.language, count(*) FROM f WHERE f.language IS NOT NULL GROUP BY f.language
                """;
            var categories = new List<CategoryFacet>();
            var publishers = new List<PublisherFacet>();
            var languages = new List<LanguageFacet>();
            await using var command = await CommandAsync(db, sql, parameters, token);
            await using var reader = await command.ExecuteReaderAsync(token);
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
            return new Facets(
                categories.OrderByDescending(c => c.Count).ThenBy(c => c.Name, StringComparer.Ordinal).ToList(),
                publishers.OrderByDescending(p => p.Count).ThenBy(p => p.Name, StringComparer.Ordinal).Take(50).ToList(),
                languages.OrderByDescending(l => l.Count).ThenBy(l => l.Code, StringComparer.Ordinal).ToList());
        }, ct, CatalogCache.ListDependencies(filter, null));
        return Results.Ok(facets);
    }

    private static async Task<IResult> GetBook(Guid id, CatalogDbContext db, CatalogCache cache, HttpResponse response, CancellationToken ct)
    {
        var book = await cache.GetOrCreateAsync("book", id, token =>
            db.Books.AsNoTracking().Where(b => b.Id == id).Select(BookResponse.Projection).SingleOrDefaultAsync(token), ct);
        if (book is null)
        {
            return Results.NotFound();
        }
        response.Headers.ETag = ETag(book.Version);
        return Results.Ok(book);
    }

    private static async Task<IResult> CreateBook(BookRequest request, CatalogDbContext db, TimeProvider time, HttpResponse response, CancellationToken ct)
    {
        var errors = BookRules.Validate(request, withStock: true, time, out var isbn);
        if (errors.Count > 0)
        {
            return Results.ValidationProblem(errors);
        }
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
        return Results.Created($"/api/books/{book.Id}", created);
    }

    private static async Task<IResult> UpdateBook(Guid id, BookRequest request, CatalogDbContext db, TimeProvider time, HttpRequest http, CancellationToken ct)
    {
        var errors = BookRules.Validate(request, withStock: false, time, out var isbn);
        if (errors.Count > 0)
        {
            return Results.ValidationProblem(errors);
        }
        var book = await db.Books.Include(b => b.Authors).Include(b => b.Categories).SingleOrDefaultAsync(b => b.Id == id, ct);
        if (book is null)
        {
            return Results.NotFound();
        }
        if (StaleIfMatch(http, book.Version) is { } stale)
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
        return await CurrentAsync(db, id, http.HttpContext.Response, ct);
    }

    /// <summary>409 while copies are on loan (from the lending service's availability events).</summary>
    private static async Task<IResult> DeleteBook(Guid id, CatalogDbContext db, HttpRequest http, CancellationToken ct)
    {
        var book = await db.Books.SingleOrDefaultAsync(b => b.Id == id, ct);
        if (book is null)
        {
            return Results.NotFound();
        }
        if (StaleIfMatch(http, book.Version) is { } stale)
        {
            return stale;
        }
        if (book.TotalCopies - book.AvailableCopies > 0)
        {
            return Results.Problem(statusCode: StatusCodes.Status409Conflict, title: "Copies on loan",
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
        return Results.NoContent();
    }

    /// <summary>Changes the copies the library owns; copies on loan stay on loan.</summary>
    private static async Task<IResult> ChangeStock(Guid id, StockRequest request, CatalogDbContext db, TimeProvider time, HttpRequest http, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        BookRules.CheckStock(errors, request.TotalCopies);
        if (errors.Count > 0)
        {
            return Results.ValidationProblem(errors);
        }
        var book = await db.Books.SingleOrDefaultAsync(b => b.Id == id, ct);
        if (book is null)
        {
            return Results.NotFound();
        }
        if (StaleIfMatch(http, book.Version) is { } stale)
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
        return await CurrentAsync(db, id, http.HttpContext.Response, ct);
    }

    private static async Task<IResult> CurrentAsync(CatalogDbContext db, Guid id, HttpResponse response, CancellationToken ct)
    {
        var book = await db.Books.AsNoTracking().Where(b => b.Id == id).Select(BookResponse.Projection).SingleAsync(ct);
        response.Headers.ETag = ETag(book.Version);
        return Results.Ok(book);
    }

    /// <summary>Saves the unit of work and refreshes the books' search columns in the same transaction.</summary>
    internal static Task SaveWithSearchAsync(CatalogDbContext db, Guid[] bookIds, CancellationToken ct) =>
        db.Database.CreateExecutionStrategy().ExecuteAsync(async token =>
        {
            await using var transaction = await db.Database.BeginTransactionAsync(token);
            await db.SaveChangesAsync(token);
            await db.Database.ExecuteSqlAsync($"SELECT refresh_book_search({bookIds})", token);
            await transaction.CommitAsync(token);
        }, ct);

    private static async Task<(List<Author> Authors, List<Category> Categories, IResult? Problem)> ResolveAsync(CatalogDbContext db, BookRequest request, CancellationToken ct)
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
        return (authors, categories, errors.Count > 0 ? Results.ValidationProblem(errors) : null);
    }

    internal static async Task<List<BookResponse>> LoadInOrderAsync(CatalogDbContext db, List<Guid> ids, CancellationToken ct)
    {
        var books = await db.Books.AsNoTracking().Where(b => ids.Contains(b.Id)).Select(BookResponse.Projection).ToListAsync(ct);
        var byId = books.ToDictionary(b => b.Id);
        return ids.Where(byId.ContainsKey).Select(i => byId[i]).ToList();
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

    private static async Task<T> ScalarAsync<T>(CatalogDbContext db, string sql, IEnumerable<NpgsqlParameter> parameters, CancellationToken ct)
    {
        await using var command = await CommandAsync(db, sql, parameters, ct);
        return (T)(await command.ExecuteScalarAsync(ct))!;
    }

    internal static string ETag(long version) => $"\"{version}\"";

    /// <summary>412 when the client's If-Match names another version than the stored one.</summary>
    private static IResult? StaleIfMatch(HttpRequest request, long version)
    {
        var ifMatch = request.Headers.IfMatch.ToString();
        if (string.IsNullOrEmpty(ifMatch) || ifMatch == "*")
        {
            return null;
        }
        var tags = ifMatch.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(t => t.StartsWith("W/", StringComparison.Ordinal) ? t[2..] : t);
        return tags.Contains(ETag(version)) ? null : PreconditionFailed();
    }

    private static IResult PreconditionFailed() => Results.Problem(statusCode: StatusCodes.Status412PreconditionFailed,
        title: "Changed meanwhile", detail: "The book changed since you read it (If-Match). Read it again and repeat the change.");

    private static IResult DuplicateIsbn(string isbn) => Results.Problem(statusCode: StatusCodes.Status409Conflict,
        title: "Duplicate ISBN", detail: $"A book with ISBN {isbn} is already in the catalog.");

    private static string? Trim(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
