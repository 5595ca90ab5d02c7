using System.Text.Json;
using Library.BookService.Books;
using Library.BookService.Categories;
using Library.BookService.Data;
using Library.Contracts.Events;
using Library.EventBus;
using Microsoft.EntityFrameworkCore;

namespace Library.BookService.Seeding;

/// <summary>One title of a catalog file (data/sample-catalog.json, or bench/generate-catalog.py's output).</summary>
public sealed record CatalogEntry(
    string Isbn, string Title, string? Subtitle, string? Description, string Publisher, int? PublishedYear,
    string? Language, int? PageCount, List<string> Authors, List<string> Categories, int TotalCopies);

/// <summary>
/// Loads a catalog file into an empty catalog at start-up (Catalog:SeedFile; eng/run.sh sets it
/// on a first run so a newcomer sees real books). Runs under the migration lock, so once however
/// many replicas start; publishes BookCreated for every title like any other creation.
/// </summary>
public static class CatalogImport
{
    private const int Batch = 1000;
    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web);

    public static async Task SeedAsync(CatalogDbContext db, IServiceProvider services, CancellationToken ct)
    {
        var path = services.GetRequiredService<IConfiguration>()["Catalog:SeedFile"];
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger("Library.CatalogImport");
        if (string.IsNullOrWhiteSpace(path) || await db.Books.AnyAsync(ct))
        {
            return;
        }
        if (!File.Exists(path))
        {
            logger.LogWarning("Catalog:SeedFile {Path} does not exist; starting with an empty catalog", path);
            return;
        }

        var started = System.Diagnostics.Stopwatch.StartNew();
        var time = services.GetRequiredService<TimeProvider>();
        var authors = new Dictionary<string, Author>(StringComparer.OrdinalIgnoreCase);
        var categories = new Dictionary<string, Category>(StringComparer.OrdinalIgnoreCase);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var imported = 0;
        var skipped = 0;
        var batch = new List<Guid>();

        await using var stream = File.OpenRead(path);
        await foreach (var entry in JsonSerializer.DeserializeAsyncEnumerable<CatalogEntry>(stream, JsonOptions, ct))
        {
            if (entry is null || !Isbn.TryNormalize(entry.Isbn, out var isbn) || !seen.Add(isbn) || string.IsNullOrWhiteSpace(entry.Title) || string.IsNullOrWhiteSpace(entry.Publisher))
            {
                skipped++;
                continue;
            }
            var now = time.GetUtcNow();
            var book = new Book
            {
                Isbn = isbn,
                Title = entry.Title.Trim(),
                Subtitle = entry.Subtitle,
                Description = entry.Description,
                Publisher = entry.Publisher.Trim(),
                PublishedYear = entry.PublishedYear,
                Language = entry.Language?.ToLowerInvariant(),
                PageCount = entry.PageCount,
                TotalCopies = Math.Clamp(entry.TotalCopies, 0, BookRules.MaxCopies),
                AvailableCopies = Math.Clamp(entry.TotalCopies, 0, BookRules.MaxCopies),
                CreatedAt = now,
                UpdatedAt = now,
                Authors = entry.Authors.Where(n => !string.IsNullOrWhiteSpace(n)).Select(n => n.Trim()).Distinct(StringComparer.OrdinalIgnoreCase)
                    .Select(n => authors.TryGetValue(n, out var a) ? a : authors[n] = new Author { Name = n }).ToList(),
                Categories = entry.Categories.Where(n => !string.IsNullOrWhiteSpace(n)).Select(n => n.Trim()).Distinct(StringComparer.OrdinalIgnoreCase)
                    .Select(n => categories.TryGetValue(n, out var c) ? c : categories[n] = new Category { Name = n, NormalizedName = CategoriesApi.Normalize(n) }).ToList(),
            };
            db.Books.Add(book);
            db.AddEvent(new BookCreated(book.Id, book.Isbn, book.Title, book.TotalCopies, book.Version));
            batch.Add(book.Id);
            if (batch.Count == Batch)
            {
                imported += await FlushAsync(db, batch, ct);
            }
        }
        imported += await FlushAsync(db, batch, ct);
        logger.LogInformation("Imported {Count} titles ({Authors} authors, {Categories} categories) from {Path} in {Seconds:F1} s; {Skipped} entries skipped",
            imported, authors.Count, categories.Count, path, started.Elapsed.TotalSeconds, skipped);
    }

    private static async Task<int> FlushAsync(CatalogDbContext db, List<Guid> batch, CancellationToken ct)
    {
        if (batch.Count == 0)
        {
            return 0;
        }
        await BooksApi.SaveWithSearchAsync(db, batch.ToArray(), ct);
        // Keep the tracked authors and categories (later books link to them); drop the books.
        foreach (var entry in db.ChangeTracker.Entries<Book>().ToList())
        {
            entry.State = EntityState.Detached;
        }
        foreach (var entry in db.ChangeTracker.Entries<OutboxMessage>().ToList())
        {
            entry.State = EntityState.Detached;
        }
        var count = batch.Count;
        batch.Clear();
        return count;
    }
}
