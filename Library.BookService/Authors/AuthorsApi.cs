using Library.BookService.Books;
using Library.BookService.Data;
using Library.ServiceDefaults;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Library.BookService.Authors;

public sealed record AuthorRequest(string? Name, string? Bio, int? BirthYear);
public sealed record AuthorResponse(Guid Id, string Name, string? Bio, int? BirthYear);

public static class AuthorsApi
{
    public static IEndpointRouteBuilder MapAuthors(this IEndpointRouteBuilder app)
    {
        var authors = app.MapGroup("/api/authors").WithTags("Authors");
        authors.MapGet("/", List);
        authors.MapGet("/{id:guid}", Get);
        authors.MapGet("/{id:guid}/books", Books);
        authors.MapPost("/", Create).RequireAuthorization(Policies.Librarian);
        authors.MapPut("/{id:guid}", Update).RequireAuthorization(Policies.Librarian);
        authors.MapDelete("/{id:guid}", Delete).RequireAuthorization(Policies.Librarian);
        return app;
    }

    private static async Task<IResult> List(CatalogDbContext db, string? search, int? page, int? pageSize, CancellationToken ct)
    {
        if (!PageRequest.TryCreate(page, pageSize, out var paging, out var problem))
        {
            return problem!;
        }
        var query = db.Authors.AsNoTracking();
        if (!string.IsNullOrWhiteSpace(search))
        {
            if (search.Length > 200)
            {
                return Results.ValidationProblem(new Dictionary<string, string[]> { ["search"] = ["search must have at most 200 characters."] });
            }
            if (TextInput.HasControlCharacters(search))
            {
                return Results.ValidationProblem(new Dictionary<string, string[]> { ["search"] = TextInput.ControlCharactersError("search") });
            }
            var pattern = "%" + search.Trim().Replace(@"\", @"\\", StringComparison.Ordinal).Replace("%", @"\%", StringComparison.Ordinal).Replace("_", @"\_", StringComparison.Ordinal) + "%";
            query = query.Where(a => EF.Functions.ILike(a.Name, pattern));
        }
        var total = await query.LongCountAsync(ct);
        var items = await query.OrderBy(a => a.Name).ThenBy(a => a.Id).Skip(paging.Skip).Take(paging.PageSize)
            .Select(a => new AuthorResponse(a.Id, a.Name, a.Bio, a.BirthYear)).ToListAsync(ct);
        return Results.Ok(new PagedList<AuthorResponse>(items, paging.Page, paging.PageSize, total));
    }

    private static async Task<IResult> Get(Guid id, CatalogDbContext db, CancellationToken ct)
    {
        var author = await db.Authors.AsNoTracking().Where(a => a.Id == id).Select(a => new AuthorResponse(a.Id, a.Name, a.Bio, a.BirthYear)).SingleOrDefaultAsync(ct);
        return author is null ? Results.NotFound() : Results.Ok(author);
    }

    private static async Task<IResult> Books(Guid id, CatalogDbContext db, int? page, int? pageSize, CancellationToken ct)
    {
        if (!PageRequest.TryCreate(page, pageSize, out var paging, out var problem))
        {
            return problem!;
        }
        if (!await db.Authors.AnyAsync(a => a.Id == id, ct))
        {
            return Results.NotFound();
        }
        var query = db.Books.AsNoTracking().Where(b => b.Authors.Any(a => a.Id == id));
        var total = await query.LongCountAsync(ct);
        var items = await query.OrderBy(b => b.Title).ThenBy(b => b.Id).Skip(paging.Skip).Take(paging.PageSize).Select(BookResponse.Projection).ToListAsync(ct);
        return Results.Ok(new PagedList<BookResponse>(items, paging.Page, paging.PageSize, total));
    }

    private static async Task<IResult> Create(AuthorRequest request, CatalogDbContext db, TimeProvider time, CancellationToken ct)
    {
        if (Validate(request, time) is { } problem)
        {
            return problem;
        }
        var author = new Author { Name = request.Name!.Trim(), Bio = request.Bio?.Trim(), BirthYear = request.BirthYear };
        db.Authors.Add(author);
        await db.SaveChangesAsync(ct);
        return Results.Created($"/api/authors/{author.Id}", new AuthorResponse(author.Id, author.Name, author.Bio, author.BirthYear));
    }

    /// <summary>A rename changes what the author's books are found by: their search text is refreshed.</summary>
    private static async Task<IResult> Update(Guid id, AuthorRequest request, CatalogDbContext db, TimeProvider time, CancellationToken ct)
    {
        if (Validate(request, time) is { } problem)
        {
            return problem;
        }
        var author = await db.Authors.SingleOrDefaultAsync(a => a.Id == id, ct);
        if (author is null)
        {
            return Results.NotFound();
        }
        author.Name = request.Name!.Trim();
        author.Bio = request.Bio?.Trim();
        author.BirthYear = request.BirthYear;
        var bookIds = await db.Books.Where(b => b.Authors.Any(a => a.Id == id)).Select(b => b.Id).ToArrayAsync(ct);
        await BooksApi.SaveWithSearchAsync(db, bookIds, ct);
        return Results.Ok(new AuthorResponse(author.Id, author.Name, author.Bio, author.BirthYear));
    }

    private static async Task<IResult> Delete(Guid id, CatalogDbContext db, CancellationToken ct)
    {
        var author = await db.Authors.SingleOrDefaultAsync(a => a.Id == id, ct);
        if (author is null)
        {
            return Results.NotFound();
        }
        db.Authors.Remove(author);
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException ex) when (ex.InnerException is PostgresException { SqlState: PostgresErrorCodes.ForeignKeyViolation })
        {
            // The database refuses while a book names the author, even one added a moment ago.
            return Results.Problem(statusCode: StatusCodes.Status409Conflict, title: "Author in use", detail: "Books in the catalog name this author; change or delete them first.");
        }
        return Results.NoContent();
    }

    /// <summary>The longest author name (the column's limit); the catalog import checks names against it too.</summary>
    public const int MaxName = 200;

    private static IResult? Validate(AuthorRequest request, TimeProvider time)
    {
        var errors = new Dictionary<string, string[]>();
        if (string.IsNullOrWhiteSpace(request.Name) || request.Name.Trim().Length > MaxName)
        {
            errors["name"] = [$"name is required, at most {MaxName} characters."];
        }
        else if (TextInput.HasControlCharacters(request.Name))
        {
            errors["name"] = TextInput.ControlCharactersError("name");
        }
        if (request.Bio is { Length: > 5000 })
        {
            errors["bio"] = ["bio must have at most 5000 characters."];
        }
        else if (TextInput.HasControlCharacters(request.Bio, multiline: true))
        {
            errors["bio"] = TextInput.ControlCharactersError("bio");
        }
        if (request.BirthYear is { } year && (year < -3000 || year > time.GetUtcNow().Year))
        {
            errors["birthYear"] = ["birthYear must be a past year."];
        }
        return errors.Count > 0 ? Results.ValidationProblem(errors) : null;
    }
}
