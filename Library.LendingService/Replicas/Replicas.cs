using Grpc.Core;
using Library.Contracts.Catalog;
using Library.Contracts.Users;
using Library.LendingService.Data;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Replicas;

/// <summary>
/// The lending service's copies of titles and readers come from events; one that has not
/// arrived yet (a book created a moment ago) is fetched once over gRPC and kept. Never called
/// inside a borrow's transaction.
/// </summary>
public sealed class ReplicaLookup(LendingDbContext db, Catalog.CatalogClient catalog, Users.UsersClient users, ILogger<ReplicaLookup> logger)
{
    public async Task<bool> EnsureTitleAsync(Guid bookId, CancellationToken ct)
    {
        if (await db.Titles.AnyAsync(t => t.Id == bookId, ct))
        {
            return true;
        }
        try
        {
            var book = await catalog.GetBookAsync(new GetBookRequest { Id = bookId.ToString() }, cancellationToken: ct);
            logger.LogInformation("Title {BookId} fetched from the catalog (its event has not arrived yet)", bookId);
            await TitleUpsert.ApplyAsync(db, bookId, book.Title, book.TotalCopies, book.Version, deleted: false, ct);
            return true;
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
        {
            return false;
        }
    }

    public async Task<bool> EnsureReaderAsync(Guid userId, CancellationToken ct)
    {
        if (await db.Readers.AnyAsync(r => r.Id == userId, ct))
        {
            return true;
        }
        try
        {
            var user = await users.GetUserAsync(new GetUserRequest { Id = userId.ToString() }, cancellationToken: ct);
            logger.LogInformation("Reader {UserId} fetched from the user service (its event has not arrived yet)", userId);
            await ReaderUpsert.ApplyAsync(db, userId, user.Email, user.FirstName, user.LastName, user.Active, user.Version, ct);
            return true;
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
        {
            return false;
        }
    }
}

/// <summary>Versioned writes of the replicas: an older version never overwrites a newer one.</summary>
public static class ReaderUpsert
{
    public static Task<int> ApplyAsync(LendingDbContext db, Guid id, string email, string firstName, string lastName, bool active, long version, CancellationToken ct) =>
        db.Database.ExecuteSqlAsync($"""
            INSERT INTO readers (id, email, first_name, last_name, active, version)
            VALUES ({id}, {email}, {firstName}, {lastName}, {active}, {version})
            ON CONFLICT (id) DO UPDATE SET email = excluded.email, first_name = excluded.first_name,
                last_name = excluded.last_name, active = excluded.active, version = excluded.version
            WHERE readers.version < excluded.version
            """, ct);
}

public static class TitleUpsert
{
    /// <summary>Returns true when the title's stock changed (holds may be served, availability moved).</summary>
    public static async Task<bool> ApplyAsync(LendingDbContext db, Guid id, string? name, int? totalCopies, long version, bool deleted, CancellationToken ct)
    {
        var before = await db.Titles.AsNoTracking().Where(t => t.Id == id).Select(t => (int?)t.TotalCopies).SingleOrDefaultAsync(ct);
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO titles (id, name, total_copies, on_loan, held, availability_version, catalog_version, deleted)
            VALUES ({id}, {name ?? ""}, {totalCopies ?? 0}, 0, 0, 0, {version}, {deleted})
            ON CONFLICT (id) DO UPDATE SET
                name = coalesce({name}, titles.name),
                total_copies = coalesce({totalCopies}, titles.total_copies),
                deleted = titles.deleted OR {deleted},
                catalog_version = excluded.catalog_version
            WHERE titles.catalog_version < excluded.catalog_version
            """, ct);
        var after = await db.Titles.AsNoTracking().Where(t => t.Id == id).Select(t => (int?)t.TotalCopies).SingleOrDefaultAsync(ct);
        return before != after;
    }
}
