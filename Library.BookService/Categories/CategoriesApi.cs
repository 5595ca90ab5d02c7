using System.ComponentModel.DataAnnotations;
using Library.BookService.Books;
using Library.BookService.Data;
using Library.BookService.OpenApi;
using Library.BookService.Validation;
using Library.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Library.BookService.Categories;

/// <summary>POST and PUT /api/categories; the limits are the columns' (CatalogDbContext).</summary>
public sealed record CategoryRequest
{
    [Required(ErrorMessage = CategoriesApi.NameMessage)]
    [StringLength(CategoriesApi.MaxName, ErrorMessage = CategoriesApi.NameMessage)]
    [RegularExpression(TextPattern.SingleLine, ErrorMessage = "name must not contain control characters.")]
    public string? Name { get; init; }

    [StringLength(CategoriesApi.MaxDescription, ErrorMessage = "description must have at most 2000 characters.")]
    [RegularExpression(TextPattern.MultiLine, ErrorMessage = "description must not contain control characters.")]
    public string? Description { get; init; }
}

public sealed record CategoryResponse(Guid Id, string Name, string? Description);

public static class CategoriesApi
{
    public static IEndpointRouteBuilder MapCategories(this IEndpointRouteBuilder app)
    {
        var categories = app.MapGroup("/api/categories").WithTags("Categories");

        var reads = categories.MapGroup("").AllowAnonymous();
        reads.MapGet("/", List).WithName("ListCategories")
            .WithSummary("List categories")
            .WithDescription("Anyone. By name. 400 for a paging value out of its limits.")
            .ProducesValidationProblem();
        reads.MapGet("/{id:guid}", Get).WithName("GetCategory")
            .WithSummary("Get a category")
            .WithDescription("Anyone. 404 for an unknown ID.");

        var writes = categories.MapGroup("").RequireAuthorization(Policies.Librarian);
        writes.MapPost("/", Create).WithName("CreateCategory")
            .WithSummary("Add a category")
            .WithDescription("Librarians. 201 with the category and its Location. 400 for a field out of its limits; 409 when the name (any case) is taken.")
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status409Conflict)
            .WithRequestExample("""{ "name": "Science Fiction", "description": "Speculative fiction about science and technology." }""");
        writes.MapPut("/{id:guid}", Update).WithName("UpdateCategory")
            .WithSummary("Change a category")
            .WithDescription("Librarians. 400 for a field out of its limits; 404 for an unknown ID; 409 when the name (any case) is another category's.")
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status409Conflict);
        writes.MapDelete("/{id:guid}", Delete).WithName("DeleteCategory")
            .WithSummary("Remove a category")
            .WithDescription("Librarians. 404 for an unknown ID; 409 while books are filed under it.")
            .ProducesProblem(StatusCodes.Status409Conflict);
        return app;
    }

    private static async Task<Ok<PagedList<CategoryResponse>>> List(
        CatalogDbContext db,
        [Range(1, PageRequest.MaxPage, ErrorMessage = PageRequest.PageMessage)] int? page,
        [Range(1, PageRequest.MaxPageSize, ErrorMessage = PageRequest.PageSizeMessage)] int? pageSize,
        CancellationToken ct)
    {
        var paging = PageQuery.From(page, pageSize);
        var total = await db.Categories.LongCountAsync(ct);
        var items = await db.Categories.AsNoTracking().OrderBy(c => c.Name).ThenBy(c => c.Id).Skip(paging.Skip).Take(paging.PageSize)
            .Select(c => new CategoryResponse(c.Id, c.Name, c.Description)).ToListAsync(ct);
        return TypedResults.Ok(new PagedList<CategoryResponse>(items, paging.Page, paging.PageSize, total));
    }

    private static async Task<Results<Ok<CategoryResponse>, NotFound>> Get(Guid id, CatalogDbContext db, CancellationToken ct)
    {
        var category = await db.Categories.AsNoTracking().Where(c => c.Id == id).Select(c => new CategoryResponse(c.Id, c.Name, c.Description)).SingleOrDefaultAsync(ct);
        return category is null ? TypedResults.NotFound() : TypedResults.Ok(category);
    }

    private static async Task<Results<Created<CategoryResponse>, ProblemHttpResult>> Create(CategoryRequest request, CatalogDbContext db, CancellationToken ct)
    {
        var category = new Category { Name = request.Name!.Trim(), NormalizedName = Normalize(request.Name), Description = request.Description?.Trim() };
        db.Categories.Add(category);
        if (await SaveAsync(db, ct) is { } refused)
        {
            return refused;
        }
        return TypedResults.Created($"/api/categories/{category.Id}", new CategoryResponse(category.Id, category.Name, category.Description));
    }

    private static async Task<Results<Ok<CategoryResponse>, NotFound, ProblemHttpResult>> Update(Guid id, CategoryRequest request, CatalogDbContext db, CancellationToken ct)
    {
        var category = await db.Categories.SingleOrDefaultAsync(c => c.Id == id, ct);
        if (category is null)
        {
            return TypedResults.NotFound();
        }
        category.Name = request.Name!.Trim();
        category.NormalizedName = Normalize(request.Name);
        category.Description = request.Description?.Trim();
        if (await SaveAsync(db, ct) is { } conflict)
        {
            return conflict;
        }
        return TypedResults.Ok(new CategoryResponse(category.Id, category.Name, category.Description));
    }

    private static async Task<Results<NoContent, NotFound, ProblemHttpResult>> Delete(Guid id, CatalogDbContext db, CancellationToken ct)
    {
        var category = await db.Categories.SingleOrDefaultAsync(c => c.Id == id, ct);
        if (category is null)
        {
            return TypedResults.NotFound();
        }
        db.Categories.Remove(category);
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException ex) when (ex.InnerException is PostgresException { SqlState: PostgresErrorCodes.ForeignKeyViolation })
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Category in use", detail: "Books are filed under this category; move them first.");
        }
        return TypedResults.NoContent();
    }

    /// <summary>Unique regardless of case and surrounding spaces.</summary>
    internal static string Normalize(string name) => name.Trim().ToLowerInvariant();

    private static async Task<ProblemHttpResult?> SaveAsync(CatalogDbContext db, CancellationToken ct)
    {
        try
        {
            await db.SaveChangesAsync(ct);
            return null;
        }
        catch (DbUpdateException ex) when (ex.InnerException is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation })
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Duplicate category", detail: "A category with this name already exists.");
        }
    }

    /// <summary>The longest category name (the column's limit); the catalog import checks names against it too.</summary>
    public const int MaxName = 100;
    public const int MaxDescription = 2000;
    public const string NameMessage = "name is required, at most 100 characters.";
}
