using System.Data.Common;
using Library.BookService.Data;
using Library.ServiceDefaults;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Library.BookService.Books;

/// <summary>
/// The one place cached catalog answers are invalidated after a write: every change the catalog's
/// context saves names its dependencies (<see cref="CatalogDependency"/>) from the entities it
/// touches, statements EF does not track add theirs (<see cref="CatalogDbContext.Invalidates"/>),
/// and they are stamped once, after the commit (the transaction's, or the save's own), before the
/// write answers. A rollback or a failed save stamps nothing. (Nothing is dropped when a
/// transaction starts: SaveChanges opens its own for a batch, after it collected.)
/// </summary>
public sealed class CatalogInvalidation(CatalogCache cache) : SaveChangesInterceptor, IDbTransactionInterceptor
{
    /// <summary>Book columns that only lending's events change: they do not move a title between lists.</summary>
    private static readonly HashSet<string> AvailabilityColumns =
        [nameof(Book.TotalCopies), nameof(Book.AvailableCopies), nameof(Book.NextAvailableAt), nameof(Book.AvailabilityVersion), nameof(Book.UpdatedAt), nameof(Book.Version), nameof(Book.RecentLoans)];

    public override ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
    {
        if (eventData.Context is CatalogDbContext db)
        {
            Collect(db);
        }
        return ValueTask.FromResult(result);
    }

    public override InterceptionResult<int> SavingChanges(DbContextEventData eventData, InterceptionResult<int> result)
    {
        if (eventData.Context is CatalogDbContext db)
        {
            Collect(db);
        }
        return result;
    }

    public override async ValueTask<int> SavedChangesAsync(SaveChangesCompletedEventData eventData, int result, CancellationToken cancellationToken = default)
    {
        if (eventData.Context is CatalogDbContext { Database.CurrentTransaction: null } db)
        {
            await FlushAsync(db);
        }
        return result;
    }

    public override Task SaveChangesFailedAsync(DbContextErrorEventData eventData, CancellationToken cancellationToken = default)
    {
        if (eventData.Context is CatalogDbContext { Database.CurrentTransaction: null } db)
        {
            db.PendingInvalidations.Clear();
        }
        return Task.CompletedTask;
    }

    public async Task TransactionCommittedAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        if (eventData.Context is CatalogDbContext db)
        {
            await FlushAsync(db);
        }
    }

    public Task TransactionRolledBackAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        (eventData.Context as CatalogDbContext)?.PendingInvalidations.Clear();
        return Task.CompletedTask;
    }

    private async Task FlushAsync(CatalogDbContext db)
    {
        if (db.PendingInvalidations.Count == 0)
        {
            return;
        }
        var dependencies = db.PendingInvalidations.ToArray();
        db.PendingInvalidations.Clear();
        await cache.InvalidateAsync(dependencies);
    }

    private static void Collect(CatalogDbContext db)
    {
        db.ChangeTracker.DetectChanges();
        var pending = db.PendingInvalidations;
        foreach (var entry in db.ChangeTracker.Entries())
        {
            if (entry.State is not (EntityState.Added or EntityState.Modified or EntityState.Deleted))
            {
                continue;
            }
            switch (entry.Entity)
            {
                case Book book:
                    pending.Add(CatalogDependency.Book(book.Id));
                    if (entry.State != EntityState.Modified || Changed(entry).Any(p => !AvailabilityColumns.Contains(p)))
                    {
                        pending.Add(CatalogDependency.Lists);
                    }
                    if (entry.State != EntityState.Modified || Changed(entry).Contains(nameof(Book.AvailableCopies)))
                    {
                        pending.Add(CatalogDependency.Availability);
                    }
                    if (entry.State == EntityState.Modified && Changed(entry).Contains(nameof(Book.RecentLoans)))
                    {
                        pending.Add(CatalogDependency.Loans);
                    }
                    break;
                case Author:
                    pending.Add(CatalogDependency.Authors);
                    if (entry.State != EntityState.Added)
                    {
                        pending.Add(CatalogDependency.Names);
                        pending.Add(CatalogDependency.Lists);
                    }
                    break;
                case Category:
                    pending.Add(CatalogDependency.Categories);
                    if (entry.State != EntityState.Added)
                    {
                        pending.Add(CatalogDependency.Names);
                        pending.Add(CatalogDependency.Lists);
                    }
                    break;
                case BookLoan or AnonymisedLoan:
                    pending.Add(CatalogDependency.Loans);
                    break;
                case Dictionary<string, object> link when link.TryGetValue("BooksId", out var bookId) && bookId is Guid id:
                    // book_authors, book_categories: a title's authors or categories changed.
                    pending.Add(CatalogDependency.Book(id));
                    pending.Add(CatalogDependency.Lists);
                    break;
            }
        }
    }

    private static IEnumerable<string> Changed(EntityEntry entry) =>
        entry.Properties.Where(p => p.IsModified).Select(p => p.Metadata.Name);
}

/// <summary>
/// Hands a catalog answer's terms (<see cref="CatalogAnswer"/>) to the gateway in
/// <see cref="CacheKeys.AnswerHeader"/>. Answers read through <see cref="CatalogCache"/> carry
/// theirs; the author and category reads, not cached here, get theirs from the table below,
/// with the sequence read before they run. Anything else carries none: the gateway does not cache it.
/// </summary>
public static class CatalogAnswerHeaders
{
    /// <summary>Route template -> what its answer depends on.</summary>
    private static readonly Dictionary<string, string[]> Routes = new(StringComparer.OrdinalIgnoreCase)
    {
        ["/api/authors/"] = [CatalogDependency.Authors],
        ["/api/authors/{id:guid}"] = [CatalogDependency.Authors],
        // The titles of the page are not known here: any availability change drops it.
        ["/api/authors/{id:guid}/books"] = [CatalogDependency.Authors, CatalogDependency.Lists, CatalogDependency.Names, CatalogDependency.Availability],
        ["/api/categories/"] = [CatalogDependency.Categories],
        ["/api/categories/{id:guid}"] = [CatalogDependency.Categories],
    };

    public static IApplicationBuilder UseCatalogAnswerHeaders(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        if (!HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method))
        {
            await next(context);
            return;
        }
        if ((context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText is { } route && Routes.TryGetValue(route, out var dependencies)
            && await context.RequestServices.GetRequiredService<CatalogCache>().SnapshotAsync() is { } snapshot)
        {
            context.Features.Set(new CatalogAnswer(snapshot, dependencies));
        }
        context.Response.OnStarting(() =>
        {
            if (context.Response.StatusCode == StatusCodes.Status200OK && context.Features.Get<CatalogAnswer>() is { } answer)
            {
                context.Response.Headers[CacheKeys.AnswerHeader] = answer.Snapshot.ToString(System.Globalization.CultureInfo.InvariantCulture) + " " + string.Join(' ', answer.Dependencies);
            }
            return Task.CompletedTask;
        });
        await next(context);
    });
}
