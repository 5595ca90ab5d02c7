using Library.BookService.Books;
using Library.BookService.Data;
using Library.ServiceDefaults;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Library.BookService.Categories;

public sealed record CategoryRequest(string? Name, string? Description);
public sealed record CategoryResponse(Guid Id, string Name, string? Description);

public static class CategoriesApi
{
    public static IEndpointRouteBuilder MapCategories(this IEndpointRouteBuilder app)
    {
        var categories = app.MapGroup("/api/categories").WithTags("Categories");
        categories.MapGet("/", List);
        categories.MapGet("/{id:guid}", Get);
        categories.MapPost("/", Create).RequireAuthorization(Policies.Librarian);
        categories.MapPut("/{id:guid}", Update).RequireAuthorization(Policies.Librarian);
        categories.MapDelete("/{id:guid}", Delete).RequireAuthorization(Policies.Librarian);
        return app;
    }

    private static async Task<IResult> List(CatalogDbContext db, int? page, int? pageSize, CancellationToken ct)
    {
        if (!PageRequest.TryCreate(page, pageSize, out var paging, out var problem))
        {
            return problem!;
        }
        var total = await db.Categories.LongCountAsync(ct);
        var items = await db.Categories.AsNoTracking().OrderBy(c => c.Name).ThenBy(c => c.Id).Skip(paging.Skip).Take(paging.PageSize)
            .Select(c => new CategoryResponse(c.Id, c.Name, c.Description)).ToListAsync(ct);
        return Results.Ok(new PagedList<CategoryResponse>(items, paging.Page, paging.PageSize, total));
    }

    private static async Task<IResult> Get(Guid id, CatalogDbContext db, CancellationToken ct)
    {
        var category = await db.Categories.AsNoTracking().Where(c => c.Id == id).Select(c => new CategoryResponse(c.Id, c.Name, c.Description)).SingleOrDefaultAsync(ct);
        return category is null ? Results.NotFound() : Results.Ok(category);
    }

    private static async Task<IResult> Create(CategoryRequest request, CatalogDbContext db, CancellationToken ct)
    {
        if (Validate(request) is { } problem)
        {
            return problem;
        }
        var category = new Category { Name = request.Name!.Trim(), NormalizedName = Normalize(request.Name), Description = request.Description?.Trim() };
        db.Categories.Add(category);
        if (await SaveAsync(db, ct) is { } refused)
        {
            return refused;
        }
        return Results.Created($"/api/categories/{category.Id}", new CategoryResponse(category.Id, category.Name, category.Description));
    }

    private static async Task<IResult> Update(Guid id, CategoryRequest request, CatalogDbContext db, CancellationToken ct)
    {
        if (Validate(request) is { } problem)
        {
            return problem;
        }
        var category = await db.Categories.SingleOrDefaultAsync(c => c.Id == id, ct);
        if (category is null)
        {
            return Results.NotFound();
        }
        category.Name = request.Name!.Trim();
        category.NormalizedName = Normalize(request.Name);
        category.Description = request.Description?.Trim();
        if (await SaveAsync(db, ct) is { } conflict)
        {
            return conflict;
        }
        return Results.Ok(new CategoryResponse(category.Id, category.Name, category.Description));
    }

    private static async Task<IResult> Delete(Guid id, CatalogDbContext db, CancellationToken ct)
    {
        var category = await db.Categories.SingleOrDefaultAsync(c => c.Id == id, ct);
        if (category is null)
        {
            return Results.NotFound();
        }
        db.Categories.Remove(category);
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException ex) when (ex.InnerException is PostgresException { SqlState: PostgresErrorCodes.ForeignKeyViolation })
        {
            return Results.Problem(statusCode: StatusCodes.Status409Conflict, title: "Category in use", detail: "Books are filed under this category; move them first.");
        }
        return Results.NoContent();
    }

    /// <summary>Unique regardless of case and surrounding spaces.</summary>
    internal static string Normalize(string name) => name.Trim().ToLowerInvariant();

    private static async Task<IResult?> SaveAsync(CatalogDbContext db, CancellationToken ct)
    {
        try
        {
            await db.SaveChangesAsync(ct);
            return null;
        }
        catch (DbUpdateException ex) when (ex.InnerException is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation })
        {
            return Results.Problem(statusCode: StatusCodes.Status409Conflict, title: "Duplicate category", detail: "A category with this name already exists.");
        }
    }

    /// <summary>The longest category name (the column's limit); the catalog import checks names against it too.</summary>
    public const int MaxName = 100;

    private static IResult? Validate(CategoryRequest request)
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
        if (request.Description is { Length: > 2000 })
        {
            errors["description"] = ["description must have at most 2000 characters."];
        }
        else if (TextInput.HasControlCharacters(request.Description, multiline: true))
        {
            errors["description"] = TextInput.ControlCharactersError("description");
        }
        return errors.Count > 0 ? Results.ValidationProblem(errors) : null;
    }
}
