using System.Diagnostics;
using System.Text;
using CsvHelper;
using Library.BookService.Categories;
using Library.BookService.Data;
using Library.Contracts.Events;
using Library.EventBus;
using Library.ServiceDefaults;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.OpenApi;
using Npgsql;

namespace Library.BookService.Books;

public sealed record ImportResult(int Created, int Updated, IReadOnlyList<RejectedRow> Rejected);

/// <summary>
/// The whole catalog in and out as CSV (<see cref="CatalogCsv"/> describes the format).
/// Import: the file is read whole (it is bounded by <c>Catalog:MaxImportBytes</c>, 16 MiB by
/// default) and checked row by row without the database; the good rows are then written
/// <see cref="BatchSize"/> at a time, each batch one transaction with its outbox rows and one
/// cache invalidation. Should a batch fail in the database (a concurrent writer took an ISBN, a
/// category name, a book's version), its rows are written one by one, so only the row at fault
/// is rejected: a row is all or nothing, and a bad row never stops the good ones. Copies reach the
/// lending service as the single-book endpoints send them: BookCreated for a new title,
/// BookStockChanged when an existing title's copies change.
/// </summary>
public static class CatalogTransferApi
{
    public const int BatchSize = 500;
    public const long DefaultMaxImportBytes = 16 * 1024 * 1024;

    /// <summary>On the books group's librarian-only part.</summary>
    public static RouteGroupBuilder MapCatalogTransfer(this RouteGroupBuilder librarians)
    {
        librarians.MapPost("/import", Import).WithName("ImportCatalog")
            .WithSummary("Import titles from a CSV file")
            .WithDescription("Librarians. Body: the CSV of ExportCatalog (text/csv, UTF-8, at most Catalog:MaxImportBytes, 16 MiB by default). A row adds a title or updates the one with its ISBN; a bad row is reported in rejected and never stops the others. 400 when the file is not UTF-8 or its header is not a catalog's; 413 over the size limit; 415 for another content type.")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            // The handler reads the raw body (to bound it and check its encoding), so the document learns of it here;
            // Accepts metadata would have routing refuse other content types before the handler can say why.
            .AddOpenApiOperationTransformer((operation, context, _) =>
            {
                var maxBytes = MaxImportBytes(context.ApplicationServices.GetRequiredService<IConfiguration>());
                var csv = new OpenApiMediaType { Schema = new OpenApiSchema { Type = JsonSchemaType.String, Format = "binary", MaxLength = (int)Math.Min(maxBytes, int.MaxValue) } };
                operation.RequestBody = new OpenApiRequestBody
                {
                    Required = true,
                    Description = "The catalog as CSV: a header row naming the columns, then one title a row.",
                    Content = new Dictionary<string, OpenApiMediaType> { ["text/csv"] = csv, ["application/csv"] = csv },
                };
                return Task.CompletedTask;
            });
        librarians.MapGet("/export", Export).WithName("ExportCatalog")
            .WithSummary("Export the whole catalog as CSV")
            .WithDescription("Librarians. Every title, ordered by ISBN, streamed; the file ImportCatalog reads.")
            .Produces<string>(StatusCodes.Status200OK, "text/csv");
        return librarians;
    }

    private static async Task<Results<Ok<ImportResult>, ProblemHttpResult>> Import(
        HttpContext http, CatalogDbContext db, CatalogCache cache, TimeProvider time, IConfiguration configuration, ILoggerFactory loggers, CancellationToken ct)
    {
        var maxBytes = MaxImportBytes(configuration);
        var mediaType = http.Request.GetTypedHeaders().ContentType?.MediaType.Value;
        if (mediaType is null || !(mediaType.Equals("text/csv", StringComparison.OrdinalIgnoreCase) || mediaType.Equals("application/csv", StringComparison.OrdinalIgnoreCase)))
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status415UnsupportedMediaType, title: "Not CSV",
                detail: "Send the catalog as Content-Type: text/csv (UTF-8).");
        }
        if (http.Request.ContentLength > maxBytes)
        {
            return TooLarge(maxBytes);
        }
        // Kestrel's own limit for this request follows the import's (a chunked body declares no length).
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = maxBytes;
        }

        byte[] body;
        try
        {
            body = await ReadAsync(http.Request.Body, maxBytes, ct);
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return TooLarge(maxBytes);
        }
        if (body.Length > maxBytes)
        {
            return TooLarge(maxBytes);
        }
        string text;
        try
        {
            text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(body);
        }
        catch (DecoderFallbackException)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Not UTF-8", detail: "The file must be UTF-8 text.");
        }
        if (text.Length > 0 && text[0] == '\uFEFF')
        {
            text = text[1..]; // a byte order mark, as spreadsheets write it
        }

        var started = Stopwatch.StartNew();
        var parsed = CatalogCsv.Parse(text, time);
        if (parsed.FileError is not null)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Not a catalog file", detail: parsed.FileError);
        }

        var rejected = parsed.Rejected;
        int created = 0, updated = 0;
        foreach (var batch in parsed.Rows.Chunk(BatchSize))
        {
            var outcome = await TryWriteAsync(db, time, batch, ct);
            if (outcome is null)
            {
                // Something in the batch clashed with a concurrent change: find the row, keep the rest.
                outcome = new BatchOutcome(0, 0, []);
                foreach (var row in batch)
                {
                    var one = await TryWriteAsync(db, time, [row], ct);
                    outcome = one is null
                        ? outcome with { Rejected = [.. outcome.Rejected, new RejectedRow(row.Line, new Dictionary<string, string[]> { ["row"] = ["Could not be saved: the catalog changed meanwhile (another change to this ISBN, an author or a category). Import this row again."] })] }
                        : new BatchOutcome(outcome.Created + one.Created, outcome.Updated + one.Updated, [.. outcome.Rejected, .. one.Rejected]);
                }
            }
            created += outcome.Created;
            updated += outcome.Updated;
            rejected.AddRange(outcome.Rejected);
            if (outcome.Created + outcome.Updated > 0)
            {
                await cache.InvalidateAsync();
            }
        }
        rejected.Sort((a, b) => a.Line.CompareTo(b.Line));
        loggers.CreateLogger("Library.CatalogImport").LogInformation(
            "Catalog import of {Bytes} bytes: {Created} created, {Updated} updated, {Rejected} rejected in {Seconds:F1} s",
            body.Length, created, updated, rejected.Count, started.Elapsed.TotalSeconds);
        return TypedResults.Ok(new ImportResult(created, updated, rejected));
    }

    private static long MaxImportBytes(IConfiguration configuration) =>
        configuration.GetValue<long?>("Catalog:MaxImportBytes") ?? DefaultMaxImportBytes;

    private sealed record BatchOutcome(int Created, int Updated, List<RejectedRow> Rejected);

    /// <summary>One transaction for the rows; null when the database refused it (nothing of it stays).</summary>
    private static async Task<BatchOutcome?> TryWriteAsync(CatalogDbContext db, TimeProvider time, ImportRow[] rows, CancellationToken ct)
    {
        db.ChangeTracker.Clear();
        var isbns = rows.Select(r => r.Isbn).ToList();
        var existing = await db.Books.Include(b => b.Authors).Include(b => b.Categories)
            .Where(b => isbns.Contains(b.Isbn)).ToDictionaryAsync(b => b.Isbn, ct);
        var authors = await AuthorsByNameAsync(db, rows.SelectMany(r => r.Authors), ct);
        var categories = await CategoriesByNameAsync(db, rows.SelectMany(r => r.Categories), ct);

        var outcome = new BatchOutcome(0, 0, []);
        var ids = new List<Guid>();
        var added = new List<NewTitle>();
        var now = time.GetUtcNow();
        foreach (var row in rows)
        {
            var isNew = !existing.TryGetValue(row.Isbn, out var found);
            if (isNew && row.Copies is null)
            {
                // Before its authors and categories are made: a rejected row leaves nothing behind.
                outcome.Rejected.Add(new RejectedRow(row.Line, new Dictionary<string, string[]> { ["copies"] = ["copies is required for a title not yet in the catalog."] }));
                continue;
            }
            // New authors and categories are added explicitly: their IDs are set on creation, so
            // EF would otherwise take one reached from an existing book for a row already stored.
            var rowAuthors = row.Authors.Select(n => authors.TryGetValue(n, out var a) ? a : authors[n] = db.Authors.Add(new Author { Name = n }).Entity).ToList();
            var rowCategories = row.Categories.Select(CategoriesApi.Normalize).Distinct()
                .Select(n => categories.TryGetValue(n, out var c) ? c
                    : categories[n] = db.Categories.Add(new Category { Name = row.Categories.First(x => CategoriesApi.Normalize(x) == n), NormalizedName = n }).Entity)
                .ToList();
            if (isNew)
            {
                var copies = row.Copies!.Value;
                // New titles are inserted in bulk (below), not tracked: EF's per-entity cost was most of an import's time.
                var id = Guid.CreateVersion7();
                added.Add(new NewTitle(id, row, copies, [.. rowAuthors.Select(a => a.Id)], [.. rowCategories.Select(c => c.Id)]));
                db.AddEvent(new BookCreated(id, row.Isbn, row.Title, copies, 1));
                ids.Add(id);
                outcome = outcome with { Created = outcome.Created + 1 };
                continue;
            }

            var book = found!;
            // An existing title takes the row as its whole state (like PUT), but the description and
            // page count, which the format does not carry, stay; an empty copies field keeps the stock.
            var changed = book.Title != row.Title || book.Subtitle != row.Subtitle || book.Publisher != row.Publisher
                || book.PublishedYear != row.PublishedYear || book.Language != row.Language
                || !SameSet(book.Authors.Select(a => a.Id), rowAuthors.Select(a => a.Id))
                || !SameSet(book.Categories.Select(c => c.Id), rowCategories.Select(c => c.Id));
            if (changed)
            {
                book.Title = row.Title;
                book.Subtitle = row.Subtitle;
                book.Publisher = row.Publisher;
                book.PublishedYear = row.PublishedYear;
                book.Language = row.Language;
                book.Authors = rowAuthors;
                book.Categories = rowCategories;
                book.UpdatedAt = now;
                book.Version++;
                db.AddEvent(new BookUpdated(book.Id, book.Isbn, book.Title, book.TotalCopies, book.Version));
                ids.Add(book.Id);
            }
            // The stock change last, with the higher version: lending keeps the newest of a title's events.
            if (row.Copies is { } total && total != book.TotalCopies)
            {
                book.AvailableCopies += total - book.TotalCopies;
                book.TotalCopies = total;
                book.UpdatedAt = now;
                book.Version++;
                db.AddEvent(new BookStockChanged(book.Id, book.TotalCopies, book.Version));
            }
            outcome = outcome with { Updated = outcome.Updated + 1 };
        }

        try
        {
            await db.Database.CreateExecutionStrategy().ExecuteAsync(async token =>
            {
                await using var transaction = await db.Database.BeginTransactionAsync(token);
                // New authors and categories, changed titles and every event first; then the new titles and their links.
                // Changes stay pending until the commit (accepted after it), so a retried attempt writes them again.
                await db.SaveChangesAsync(acceptAllChangesOnSuccess: false, token);
                if (added.Count > 0)
                {
                    await InsertAsync(db, added, now, token);
                }
                await db.Database.ExecuteSqlAsync($"SELECT refresh_book_search({ids.ToArray()})", token);
                await transaction.CommitFinishedAsync();
            }, ct);
            db.ChangeTracker.AcceptAllChanges();
        }
        catch (Exception ex) when (ex is DbUpdateConcurrencyException
            || (ex as PostgresException ?? ex.InnerException as PostgresException) is { SqlState: PostgresErrorCodes.UniqueViolation or PostgresErrorCodes.CheckViolation or PostgresErrorCodes.ForeignKeyViolation })
        {
            db.ChangeTracker.Clear();
            return null;
        }
        db.ChangeTracker.Clear();
        return outcome;
    }

    private sealed record NewTitle(Guid Id, ImportRow Row, int Copies, Guid[] AuthorIds, Guid[] CategoryIds);

    /// <summary>New titles and their author and category links, three statements for the whole batch.</summary>
    private static async Task InsertAsync(CatalogDbContext db, List<NewTitle> added, DateTimeOffset now, CancellationToken ct)
    {
        var ids = added.Select(t => t.Id).ToArray();
        var isbns = added.Select(t => t.Row.Isbn).ToArray();
        var titles = added.Select(t => t.Row.Title).ToArray();
        var subtitles = added.Select(t => t.Row.Subtitle).ToArray();
        var publishers = added.Select(t => t.Row.Publisher).ToArray();
        var years = added.Select(t => t.Row.PublishedYear).ToArray();
        var languages = added.Select(t => t.Row.Language).ToArray();
        var copies = added.Select(t => t.Copies).ToArray();
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO books (id, isbn, title, subtitle, publisher, published_year, language, total_copies, available_copies,
                               availability_version, recent_loans, version, created_at, updated_at)
            SELECT t.id, t.isbn, t.title, t.subtitle, t.publisher, t.published_year, t.language, t.copies, t.copies, 0, 0, 1, {now}, {now}
            FROM unnest({ids}, {isbns}, {titles}, {subtitles}, {publishers}, {years}, {languages}, {copies})
                AS t(id, isbn, title, subtitle, publisher, published_year, language, copies)
            """, ct);
        var authorBooks = added.SelectMany(t => t.AuthorIds.Select(_ => t.Id)).ToArray();
        var authorIds = added.SelectMany(t => t.AuthorIds).ToArray();
        if (authorIds.Length > 0)
        {
            await db.Database.ExecuteSqlAsync($"INSERT INTO book_authors (books_id, authors_id) SELECT * FROM unnest({authorBooks}, {authorIds})", ct);
        }
        var categoryBooks = added.SelectMany(t => t.CategoryIds.Select(_ => t.Id)).ToArray();
        var categoryIds = added.SelectMany(t => t.CategoryIds).ToArray();
        if (categoryIds.Length > 0)
        {
            await db.Database.ExecuteSqlAsync($"INSERT INTO book_categories (books_id, categories_id) SELECT * FROM unnest({categoryBooks}, {categoryIds})", ct);
        }
    }

    /// <summary>Authors by name, any case; of namesakes already in the catalog, the oldest.</summary>
    private static async Task<Dictionary<string, Author>> AuthorsByNameAsync(CatalogDbContext db, IEnumerable<string> names, CancellationToken ct)
    {
        var lower = names.Select(n => n.ToLowerInvariant()).Distinct().ToList();
        var found = await db.Authors.Where(a => lower.Contains(a.Name.ToLower())).OrderBy(a => a.Id).ToListAsync(ct);
        var byName = new Dictionary<string, Author>(StringComparer.OrdinalIgnoreCase);
        foreach (var author in found)
        {
            byName.TryAdd(author.Name, author);
        }
        return byName;
    }

    private static Task<Dictionary<string, Category>> CategoriesByNameAsync(CatalogDbContext db, IEnumerable<string> names, CancellationToken ct)
    {
        var normalized = names.Select(CategoriesApi.Normalize).Distinct().ToList();
        return db.Categories.Where(c => normalized.Contains(c.NormalizedName)).ToDictionaryAsync(c => c.NormalizedName, ct);
    }

    private static bool SameSet(IEnumerable<Guid> a, IEnumerable<Guid> b) => a.ToHashSet().SetEquals(b);

    /// <summary>The body, reading at most one byte past <paramref name="maxBytes"/> (so a longer one shows as too long).</summary>
    private static async Task<byte[]> ReadAsync(Stream body, long maxBytes, CancellationToken ct)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = await body.ReadAsync(chunk, ct)) > 0)
        {
            buffer.Write(chunk, 0, read);
            if (buffer.Length > maxBytes)
            {
                break;
            }
        }
        return buffer.ToArray();
    }

    private static ProblemHttpResult TooLarge(long maxBytes) => TypedResults.Problem(statusCode: StatusCodes.Status413PayloadTooLarge, title: "File too large",
        detail: $"An import file may have at most {maxBytes} bytes (Catalog:MaxImportBytes); split it.");

    /// <summary>
    /// Every title, ordered by ISBN, streamed from a database reader straight into the response:
    /// the catalog is never in memory, whatever its size.
    /// </summary>
    private static PushStreamHttpResult Export(CatalogDbContext db, TimeProvider time, HttpContext http) =>
        TypedResults.Stream(async stream =>
        {
            const string sql = """
                SELECT b.isbn, b.title, b.subtitle,
                    (SELECT array_agg(a.name ORDER BY a.name) FROM book_authors ba JOIN authors a ON a.id = ba.authors_id WHERE ba.books_id = b.id),
                    (SELECT array_agg(c.name ORDER BY c.name) FROM book_categories bc JOIN categories c ON c.id = bc.categories_id WHERE bc.books_id = b.id),
                    b.publisher, b.published_year, b.language, b.total_copies
                FROM books b ORDER BY b.isbn
                """;
            var ct = http.RequestAborted;
            await using var csv = CsvWriter.Create(stream, CatalogCsv.WriterOptions, leaveOpen: true);
            foreach (var column in CatalogCsv.Columns)
            {
                csv.WriteField(column);
            }
            await csv.EndRecordAsync(ct);
            await using var command = await BooksApi.CommandAsync(db, sql, [], ct);
            await using var reader = await command.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                csv.WriteField(reader.GetString(0));
                // Text anyone with a librarian's pen wrote is made safe for spreadsheets (SpreadsheetText).
                csv.WriteField(SpreadsheetText.ToCell(reader.GetString(1)));
                csv.WriteField(reader.IsDBNull(2) ? "" : SpreadsheetText.ToCell(reader.GetString(2)));
                csv.WriteField(reader.IsDBNull(3) ? "" : SpreadsheetText.ToCell(CatalogCsv.JoinNames(reader.GetFieldValue<string[]>(3))));
                csv.WriteField(reader.IsDBNull(4) ? "" : SpreadsheetText.ToCell(CatalogCsv.JoinNames(reader.GetFieldValue<string[]>(4))));
                csv.WriteField(SpreadsheetText.ToCell(reader.GetString(5)));
                csv.WriteField(reader.IsDBNull(6) ? "" : reader.GetInt32(6).ToString(System.Globalization.CultureInfo.InvariantCulture));
                csv.WriteField(reader.IsDBNull(7) ? "" : reader.GetString(7));
                csv.WriteField(reader.GetInt32(8).ToString(System.Globalization.CultureInfo.InvariantCulture));
                await csv.EndRecordAsync(ct);
            }
            await csv.FlushAsync(ct);
        }, "text/csv; charset=utf-8", $"catalog-{time.GetUtcNow():yyyyMMdd}.csv");
}
