using Grpc.Core;
using Library.Contracts.Catalog;
using Library.Contracts.Users;
using Library.LendingService.Data;
using Library.ServiceDefaults;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Replicas;

/// <summary>
/// The lending service's copies of titles and readers come from events; one that has not
/// arrived yet (a book created a moment ago) is fetched once over gRPC and kept. Never called
/// inside a borrow's transaction.
/// </summary>
public sealed class ReplicaLookup(LendingDbContext db, Catalog.CatalogClient catalog, Users.UsersClient users, Copies.Stock stock, ILogger<ReplicaLookup> logger)
{
    public async Task<bool> EnsureTitleAsync(Guid bookId, CancellationToken ct)
    {
        if (await db.Titles.AnyAsync(t => t.Id == bookId, ct))
        {
            return true;
        }
        try
        {
            var book = await CallAsync(() => catalog.GetBookAsync(new GetBookRequest { Id = bookId.ToString() }, cancellationToken: ct).ResponseAsync, "catalog", ct);
            logger.LogInformation("Title {BookId} fetched from the catalog (its event has not arrived yet)", bookId);
            // The title and its copies in one transaction: never a title without its copies.
            await db.Database.CreateExecutionStrategy().ExecuteAsync(async token =>
            {
                await using var transaction = await db.Database.BeginTransactionAsync(token);
                if (await TitleUpsert.ApplyAsync(db, bookId, book.Title, book.Version, deleted: false, token) == TitleChange.Inserted)
                {
                    await stock.SetAsync(bookId, book.TotalCopies, token);
                }
                await transaction.CommitFinishedAsync();
            }, ct);
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
            var user = await CallAsync(() => users.GetUserAsync(new GetUserRequest { Id = userId.ToString() }, cancellationToken: ct).ResponseAsync, "user service", ct);
            logger.LogInformation("Reader {UserId} fetched from the user service (its event has not arrived yet)", userId);
            await ReaderUpsert.ApplyAsync(db, userId, user.Email, user.FirstName, user.LastName, user.Active, user.Version,
                Guid.TryParse(user.PatronGroupId, out var group) ? group : null, ct, !user.HasKeepLoanHistory || user.KeepLoanHistory);
            return true;
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
        {
            return false;
        }
    }

    /// <summary>
    /// A look-up that a replica dying under it failed (<c>Unavailable</c>; <c>Internal</c> with a
    /// non-gRPC answer, "Response protocol downgraded to HTTP/1.1", as the fault suite's F4 saw
    /// while a user-service replica was SIGKILLed, which answered the borrow 500) is tried again,
    /// twice, after 100 and 300 ms: service discovery sends it to a replica that is alive. After
    /// the third failure (or a time-out) the request is answered 503 with Retry-After
    /// (<see cref="DependencyUnavailableException"/>): nothing has been changed yet.
    /// </summary>
    private async Task<T> CallAsync<T>(Func<Task<T>> call, string service, CancellationToken ct)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await call();
            }
            catch (RpcException ex) when (ex.StatusCode is StatusCode.Unavailable or StatusCode.Internal or StatusCode.DeadlineExceeded && !ct.IsCancellationRequested)
            {
                // A try that timed out has waited its resilience handler's 30 s: a service that accepts and
                // does not answer (its replicas gone behind a proxy that still listens, as under
                // the AppHost) is not tried again.
                if (attempt == 2 || ex.StatusCode == StatusCode.DeadlineExceeded || ex.Status.DebugException is Polly.Timeout.TimeoutRejectedException)
                {
                    logger.LogWarning(ex, "The {Service} look-up failed ({Status}) {Attempts} times; answering 503", service, ex.StatusCode, attempt + 1);
                    throw new DependencyUnavailableException(service, ex);
                }
                logger.LogWarning(ex, "The {Service} look-up failed ({Status}); trying again", service, ex.StatusCode);
                await Task.Delay(attempt == 0 ? 100 : 300, ct);
            }
        }
    }
}

/// <summary>Versioned writes of the replicas: an older version never overwrites a newer one.</summary>
public static class ReaderUpsert
{
    public static Task<int> ApplyAsync(LendingDbContext db, Guid id, string email, string firstName, string lastName, bool active, long version,
        Guid? patronGroupId, CancellationToken ct, bool keepLoanHistory = true) =>
        // An event from before patron groups (null) keeps the group already known.
        db.Database.ExecuteSqlAsync($"""
            INSERT INTO readers (id, email, first_name, last_name, active, version, patron_group_id, keep_loan_history)
            VALUES ({id}, {email}, {firstName}, {lastName}, {active}, {version}, {patronGroupId}, {keepLoanHistory})
            ON CONFLICT (id) DO UPDATE SET email = excluded.email, first_name = excluded.first_name,
                last_name = excluded.last_name, active = excluded.active, version = excluded.version,
                patron_group_id = coalesce(excluded.patron_group_id, readers.patron_group_id),
                keep_loan_history = excluded.keep_loan_history
            WHERE readers.version < excluded.version
            """, ct);
}

/// <summary>The patron groups the rules may name, kept from the user service's events.</summary>
public static class PatronGroupUpsert
{
    public static Task<int> ApplyAsync(LendingDbContext db, Guid id, string? name, long version, bool deleted, CancellationToken ct) =>
        db.Database.ExecuteSqlAsync($"""
            INSERT INTO patron_groups (id, name, version, deleted) VALUES ({id}, {name ?? ""}, {version}, {deleted})
            ON CONFLICT (id) DO UPDATE SET name = coalesce({name}, patron_groups.name), version = excluded.version,
                deleted = patron_groups.deleted OR excluded.deleted
            WHERE patron_groups.version < excluded.version
            """, ct);
}

public enum TitleChange
{
    None,
    Inserted,
    Updated,
}

public static class TitleUpsert
{
    /// <summary>Keeps the title's name and deletion at the catalog's newest version; says whether it was new, newer or neither.</summary>
    public static async Task<TitleChange> ApplyAsync(LendingDbContext db, Guid id, string? name, long version, bool deleted, CancellationToken ct)
    {
        // xmax = 0 on the row returned: it was inserted, not updated. (Not composed: RETURNING.)
        var rows = await db.Database.SqlQuery<bool>($"""
            INSERT INTO titles (id, name, availability_version, catalog_version, deleted)
            VALUES ({id}, {name ?? ""}, 0, {version}, {deleted})
            ON CONFLICT (id) DO UPDATE SET
                name = coalesce({name}, titles.name),
                deleted = titles.deleted OR {deleted},
                catalog_version = excluded.catalog_version
            WHERE titles.catalog_version < excluded.catalog_version
            RETURNING (xmax = 0) AS value
            """).ToListAsync(ct);
        return rows.Count == 0 ? TitleChange.None : rows[0] ? TitleChange.Inserted : TitleChange.Updated;
    }
}
