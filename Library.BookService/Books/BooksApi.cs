using Library.BookService.Data;
using Library.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Library.BookService.Books;

public static class BooksApi
{
    public static IEndpointRouteBuilder MapBooks(this IEndpointRouteBuilder app)
    {
        var books = app.MapGroup("/api/books").WithTags("Books");
        books.MapGet("/", ListBooks).WithName("ListBooks");
        books.MapGet("/{id:guid}", GetBook).WithName("GetBook");
        return app;
    }

    private static async Task<IResult> ListBooks(CatalogDbContext db, int? page, int? pageSize, CancellationToken ct)
    {
        if (!PageRequest.TryCreate(page, pageSize, out var paging, out var problem))
        {
            return problem!;
        }

        var query = db.Books.AsNoTracking();
        var total = await query.LongCountAsync(ct);
        var items = await query
            .OrderBy(b => b.Title).ThenBy(b => b.Id)
            .Skip(paging.Skip).Take(paging.PageSize)
            .Select(BookResponse.Projection)
            .ToListAsync(ct);
        return TypedResults.Ok(new PagedList<BookResponse>(items, paging.Page, paging.PageSize, total));
    }

    private static async Task<Results<Ok<BookResponse>, NotFound>> GetBook(Guid id, CatalogDbContext db, CancellationToken ct)
    {
        var book = await db.Books.AsNoTracking().Where(b => b.Id == id).Select(BookResponse.Projection).SingleOrDefaultAsync(ct);
        return book is null ? TypedResults.NotFound() : TypedResults.Ok(book);
    }
}
