using System.ComponentModel.DataAnnotations;
using Library.BookService.Books;
using Library.BookService.Data;
using Library.BookService.OpenApi;
using Library.BookService.Validation;
using Library.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Library.BookService.Authors;

/// <summary>POST and PUT /api/authors; the limits are the columns' (CatalogDbContext).</summary>
public sealed record AuthorRequest
{
    [Required(ErrorMessage = AuthorsApi.NameMessage)]
    [StringLength(AuthorsApi.MaxName, ErrorMessage = AuthorsApi.NameMessage)]
    [RegularExpression(TextPattern.SingleLine, ErrorMessage = "name must not contain control characters.")]
    public string? Name { get; init; }

    [StringLength(AuthorsApi.MaxBio, ErrorMessage = "bio must have at most 5000 characters.")]
    [RegularExpression(TextPattern.MultiLine, ErrorMessage = "bio must not contain control characters.")]
    public string? Bio { get; init; }

    /// <summary>A past year; negative for BCE (Homer, -750).</summary>
    [YearRange(-3000, 0, ErrorMessage = "birthYear must be a past year.")]
    public int? BirthYear { get; init; }
}

public sealed record AuthorResponse(Guid Id, string Name, string? Bio, int? BirthYear);

public static class AuthorsApi
{
    public static IEndpointRouteBuilder MapAuthors(this IEndpointRouteBuilder app)
    {
        var authors = app.MapGroup("/api/authors").WithTags("Authors");

        var reads = authors.MapGroup("").AllowAnonymous();
        reads.MapGet("/", List).WithName("ListAuthors")
            .WithSummary("List authors")
            .WithDescription("Anyone. By name; search matches a part of the name, any case. 400 for a search or paging value out of its limits.")
            .ProducesValidationProblem();
        reads.MapGet("/{id:guid}", Get).WithName("GetAuthor")
            .WithSummary("Get an author")
            .WithDescription("Anyone. 404 for an unknown ID.");
        reads.MapGet("/{id:guid}/books", Books).WithName("ListAuthorBooks")
            .WithSummary("List an author's books")
            .WithDescription("Anyone. By title. 400 for a paging value out of its limits; 404 for an unknown author.")
            .ProducesValidationProblem();

        var writes = authors.MapGroup("").RequireAuthorization(Policies.Librarian);
        writes.MapPost("/", Create).WithName("CreateAuthor")
            .WithSummary("Add an author")
            .WithDescription("Librarians. 201 with the author and its Location. 400 for a field out of its limits.")
            .ProducesValidationProblem()
            .WithRequestExample("""{ "name": "Ursula K. Le Guin", "bio": "American author of science fiction and fantasy.", "birthYear": 1929 }""");
        writes.MapPut("/{id:guid}", Update).WithName("UpdateAuthor")
            .WithSummary("Change an author")
            .WithDescription("Librarians. A new name is what the author's books are then found by. 400 for a field out of its limits; 404 for an unknown ID.")
            .ProducesValidationProblem();
        writes.MapDelete("/{id:guid}", Delete).WithName("DeleteAuthor")
            .WithSummary("Remove an author")
            .WithDescription("Librarians. 404 for an unknown ID; 409 while a book names the author.")
            .ProducesProblem(StatusCodes.Status409Conflict);
        return app;
    }

    private static async Task<Ok<PagedList<AuthorResponse>>> List(
        CatalogDbContext db,
        [StringLength(MaxName, ErrorMessage = "search must have at most 200 characters.")]
        [RegularExpression(TextPattern.SingleLine, ErrorMessage = "search must not contain control characters.")] string? search,
        [Range(1, PageRequest.MaxPage, ErrorMessage = PageRequest.PageMessage)] int? page,
        [Range(1, PageRequest.MaxPageSize, ErrorMessage = PageRequest.PageSizeMessage)] int? pageSize,
        CancellationToken ct)
    {
        var paging = PageQuery.From(page, pageSize);
        var query = db.Authors.AsNoTracking();
        if (!string.IsNullOrWhiteSpace(search))
        {
            var pattern = "%" + search.Trim().Replace(@"\", @"\\", StringComparison.Ordinal).Replace("%", @"\%", StringComparison.Ordinal).Replace("_", @"\_", StringComparison.Ordinal) + "%";
            query = query.Where(a => EF.Functions.ILike(a.Name, pattern));
        }
        var total = await query.LongCountAsync(ct);
        var items = await query.OrderBy(a => a.Name).ThenBy(a => a.Id).Skip(paging.Skip).Take(paging.PageSize)
            .Select(a => new AuthorResponse(a.Id, a.Name, a.Bio, a.BirthYear)).ToListAsync(ct);
        return TypedResults.Ok(new PagedList<AuthorResponse>(items, paging.Page, paging.PageSize, total));
    }

    private static async Task<Results<Ok<AuthorResponse>, NotFound>> Get(Guid id, CatalogDbContext db, CancellationToken ct)
    {
        var author = await db.Authors.AsNoTracking().Where(a => a.Id == id).Select(a => new AuthorResponse(a.Id, a.Name, a.Bio, a.BirthYear)).SingleOrDefaultAsync(ct);
        return author is null ? TypedResults.NotFound() : TypedResults.Ok(author);
    }

    private static async Task<Results<Ok<PagedList<BookResponse>>, NotFound>> Books(
        Guid id, CatalogDbContext db,
        [Range(1, PageRequest.MaxPage, ErrorMessage = PageRequest.PageMessage)] int? page,
        [Range(1, PageRequest.MaxPageSize, ErrorMessage = PageRequest.PageSizeMessage)] int? pageSize,
        CancellationToken ct)
    {
        var paging = PageQuery.From(page, pageSize);
        if (!await db.Authors.AnyAsync(a => a.Id == id, ct))
        {
            return TypedResults.NotFound();
        }
        var query = db.Books.AsNoTracking().Where(b => b.Authors.Any(a => a.Id == id));
        var total = await query.LongCountAsync(ct);
        var items = await query.OrderBy(b => b.Title).ThenBy(b => b.Id).Skip(paging.Skip).Take(paging.PageSize).Select(BookResponse.Projection).ToListAsync(ct);
        return TypedResults.Ok(new PagedList<BookResponse>(items, paging.Page, paging.PageSize, total));
    }

    private static async Task<Created<AuthorResponse>> Create(AuthorRequest request, CatalogDbContext db, CancellationToken ct)
    {
        var author = new Author { Name = request.Name!.Trim(), Bio = request.Bio?.Trim(), BirthYear = request.BirthYear };
        db.Authors.Add(author);
        await db.SaveChangesAsync(ct);
        return TypedResults.Created($"/api/authors/{author.Id}", new AuthorResponse(author.Id, author.Name, author.Bio, author.BirthYear));
    }

    /// <summary>A rename changes what the author's books are found by: their search text is refreshed.</summary>
    private static async Task<Results<Ok<AuthorResponse>, NotFound>> Update(Guid id, AuthorRequest request, CatalogDbContext db, CancellationToken ct)
    {
        var author = await db.Authors.SingleOrDefaultAsync(a => a.Id == id, ct);
        if (author is null)
        {
            return TypedResults.NotFound();
        }
        author.Name = request.Name!.Trim();
        author.Bio = request.Bio?.Trim();
        author.BirthYear = request.BirthYear;
        var bookIds = await db.Books.Where(b => b.Authors.Any(a => a.Id == id)).Select(b => b.Id).ToArrayAsync(ct);
        await BooksApi.SaveWithSearchAsync(db, bookIds, ct);
        return TypedResults.Ok(new AuthorResponse(author.Id, author.Name, author.Bio, author.BirthYear));
    }

    private static async Task<Results<NoContent, NotFound, ProblemHttpResult>> Delete(Guid id, CatalogDbContext db, CancellationToken ct)
    {
        var author = await db.Authors.SingleOrDefaultAsync(a => a.Id == id, ct);
        if (author is null)
        {
            return TypedResults.NotFound();
        }
        db.Authors.Remove(author);
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException ex) when (ex.InnerException is PostgresException { SqlState: PostgresErrorCodes.ForeignKeyViolation })
        {
            // The database refuses while a book names the author, even one added a moment ago.
            return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Author in use", detail: "Books in the catalog name this author; change or delete them first.");
        }
        return TypedResults.NoContent();
    }

    /// <summary>The longest author name (the column's limit); the catalog import checks names against it too.</summary>
    public const int MaxName = 200;
    public const int MaxBio = 5000;
    public const string NameMessage = "name is required, at most 200 characters.";
}
