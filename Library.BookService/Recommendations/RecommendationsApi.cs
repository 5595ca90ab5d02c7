using System.ComponentModel.DataAnnotations;
using System.Security.Claims;
using Library.BookService.Books;
using Library.BookService.Data;
using Library.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Library.BookService.Recommendations;

/// <summary>
/// "Readers who borrowed this also borrowed", from the loan history the lending service's events
/// bring; then books by the same authors, then in the same categories, each by popularity (loans
/// in the last 90 days); then the most popular books. One SQL query per answer.
/// Anonymised loans (no reader) still count for popularity but pair nothing: "also borrowed"
/// needs to know two loans were the same reader's. A reader's own anonymised loans are no longer
/// their history, so a title they read long ago may be suggested again: the price of privacy.
/// </summary>
public static class RecommendationsApi
{
    public const int MaxLimit = 50;
    public const int DefaultLimit = 10;
    private const string LimitMessage = "limit must be between 1 and 50.";

    public static IEndpointRouteBuilder MapRecommendations(this IEndpointRouteBuilder app)
    {
        var recommendations = app.MapGroup("/api").WithTags("Recommendations");
        recommendations.MapGroup("/books/{id:guid}/recommendations").AllowAnonymous()
            .MapGet("/", ForBook).WithName("ListBookRecommendations")
            .WithSummary("Books to read after this one")
            .WithDescription("Anyone. What readers of this title also borrowed, then books by the same authors, then in the same categories, then the most popular. 400 for a limit outside 1..50; 404 for an unknown book. " + CatalogQueryGate.BusyAnswer)
            .ProducesValidationProblem();
        recommendations.MapGroup("/recommendations").RequireAuthorization(Policies.Member)
            .MapGet("/", ForReader).WithName("ListMyRecommendations")
            .WithSummary("Books for the signed-in reader")
            .WithDescription("Signed-in users. Seeded by every title the caller has borrowed, never one of them. 400 for a limit outside 1..50. " + CatalogQueryGate.BusyAnswer)
            .ProducesValidationProblem();
        return app;
    }

    private static async Task<Results<Ok<List<BookResponse>>, NotFound>> ForBook(
        Guid id, [Range(1, MaxLimit, ErrorMessage = LimitMessage)] int? limit, CatalogDbContext db, CatalogCache cache, CatalogQueryGate gate, CancellationToken ct)
    {
        var n = limit ?? DefaultLimit;
        if (!await db.Books.AnyAsync(b => b.Id == id, ct))
        {
            return TypedResults.NotFound();
        }
        var books = await cache.GetOrCreateAsync("recommend-book", new { id, n }, async token =>
        {
            using var turn = await gate.EnterAsync(token);
            // Seeds: the book itself. Its co-borrowers are everyone who borrowed it.
            const string sql = """
                WITH seed AS (SELECT @book AS book_id),
                readers AS (SELECT DISTINCT l.user_id FROM book_loans l JOIN seed s ON s.book_id = l.book_id WHERE l.user_id IS NOT NULL),
                candidates AS (
                    (SELECT l.book_id AS id, 1 AS tier, count(DISTINCT l.user_id)::float8 AS score
                     FROM book_loans l JOIN readers r ON r.user_id = l.user_id
                     WHERE l.book_id <> @book GROUP BY l.book_id ORDER BY score DESC LIMIT @n)
                    UNION ALL
                    (SELECT b.id, 2, b.recent_loans FROM books b JOIN book_authors ba ON ba.books_id = b.id
                     WHERE ba.authors_id IN (SELECT authors_id FROM book_authors WHERE books_id = @book) AND b.id <> @book
                     ORDER BY b.recent_loans DESC, b.title LIMIT @n)
                    UNION ALL
                    (SELECT b.id, 3, b.recent_loans FROM books b JOIN book_categories bc ON bc.books_id = b.id
                     WHERE bc.categories_id IN (SELECT categories_id FROM book_categories WHERE books_id = @book) AND b.id <> @book
                     ORDER BY b.recent_loans DESC, b.title LIMIT @n)
                    UNION ALL
                    (SELECT b.id, 4, b.recent_loans FROM books b WHERE b.id <> @book ORDER BY b.recent_loans DESC, b.title LIMIT @n)
                )
                SELECT c.id FROM (
                    SELECT id, tier, score, row_number() OVER (PARTITION BY id ORDER BY tier, score DESC) AS rn FROM candidates
                ) c JOIN books b ON b.id = c.id
                WHERE c.rn = 1
                ORDER BY c.tier, c.score DESC, b.title, b.id
                LIMIT @n
                """;
            var ids = await BooksApi.IdsAsync(db, sql, [new NpgsqlParameter("book", id), new NpgsqlParameter("n", n)], token);
            return await BooksApi.LoadInOrderAsync(db, ids, token);
        }, ct, CatalogDependency.Loans, CatalogDependency.Lists);
        return TypedResults.Ok(books);
    }

    /// <summary>
    /// For the caller, seeded by every title they have borrowed. Never a title they have borrowed
    /// (on loan now or read before): a reader wants something new.
    /// </summary>
    private static async Task<Ok<List<BookResponse>>> ForReader(
        ClaimsPrincipal caller, [Range(1, MaxLimit, ErrorMessage = LimitMessage)] int? limit, CatalogDbContext db, CatalogCache cache, CatalogQueryGate gate, CancellationToken ct)
    {
        var n = limit ?? DefaultLimit;
        var userId = caller.UserId()!.Value;
        var books = await cache.GetOrCreateAsync("recommend-reader", new { userId, n }, async token =>
        {
            using var turn = await gate.EnterAsync(token);
            const string sql = """
                WITH history AS (SELECT DISTINCT book_id FROM book_loans WHERE user_id = @user),
                readers AS (SELECT DISTINCT l.user_id FROM book_loans l JOIN history h ON h.book_id = l.book_id WHERE l.user_id <> @user AND l.user_id IS NOT NULL),
                candidates AS (
                    (SELECT l.book_id AS id, 1 AS tier, count(DISTINCT l.user_id)::float8 AS score
                     FROM book_loans l JOIN readers r ON r.user_id = l.user_id
                     WHERE l.book_id NOT IN (SELECT book_id FROM history) GROUP BY l.book_id ORDER BY score DESC LIMIT @n)
                    UNION ALL
                    (SELECT b.id, 2, b.recent_loans FROM books b JOIN book_authors ba ON ba.books_id = b.id
                     WHERE ba.authors_id IN (SELECT ba2.authors_id FROM book_authors ba2 JOIN history h ON h.book_id = ba2.books_id)
                       AND b.id NOT IN (SELECT book_id FROM history)
                     ORDER BY b.recent_loans DESC, b.title LIMIT @n)
                    UNION ALL
                    (SELECT b.id, 3, b.recent_loans FROM books b JOIN book_categories bc ON bc.books_id = b.id
                     WHERE bc.categories_id IN (SELECT bc2.categories_id FROM book_categories bc2 JOIN history h ON h.book_id = bc2.books_id)
                       AND b.id NOT IN (SELECT book_id FROM history)
                     ORDER BY b.recent_loans DESC, b.title LIMIT @n)
                    UNION ALL
                    (SELECT b.id, 4, b.recent_loans FROM books b WHERE b.id NOT IN (SELECT book_id FROM history)
                     ORDER BY b.recent_loans DESC, b.title LIMIT @n)
                )
                SELECT c.id FROM (
                    SELECT id, tier, score, row_number() OVER (PARTITION BY id ORDER BY tier, score DESC) AS rn FROM candidates
                ) c JOIN books b ON b.id = c.id
                WHERE c.rn = 1
                ORDER BY c.tier, c.score DESC, b.title, b.id
                LIMIT @n
                """;
            var ids = await BooksApi.IdsAsync(db, sql, [new NpgsqlParameter("user", userId), new NpgsqlParameter("n", n)], token);
            return await BooksApi.LoadInOrderAsync(db, ids, token);
        }, ct, CatalogDependency.Loans, CatalogDependency.Lists);
        return TypedResults.Ok(books);
    }
}
