using Library.Contracts.Events;
using Library.EventBus;
using Library.LendingService.Copies;
using Library.LendingService.Data;
using Library.LendingService.Privacy;
using Library.LendingService.Replicas;
using Library.LendingService.Rules;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.IntegrationEvents;

// The replicas of titles and readers, kept from the catalog's and the user service's events.
// Each write is conditional on the version, so late or repeated events change nothing. A title's
// number of copies is the catalog's to set only when it is created and when its stock is changed
// (BookUpdated carries the catalog's copy of the count, which may trail lending's own).

public sealed class BookCreatedHandler(LendingDbContext db, Stock stock) : IIntegrationEventHandler<BookCreated>
{
    public async Task HandleAsync(BookCreated e, CancellationToken cancellationToken)
    {
        if (await TitleUpsert.ApplyAsync(db, e.BookId, e.Title, e.Version, false, cancellationToken) == TitleChange.Inserted)
        {
            await stock.SetAsync(e.BookId, e.TotalCopies, cancellationToken);
        }
    }
}

public sealed class BookUpdatedHandler(LendingDbContext db) : IIntegrationEventHandler<BookUpdated>
{
    public Task HandleAsync(BookUpdated e, CancellationToken cancellationToken) => TitleUpsert.ApplyAsync(db, e.BookId, e.Title, e.Version, false, cancellationToken);
}

/// <summary>Copies are added or withdrawn to match; new copies go to readers waiting; the catalog learns the new availability.</summary>
public sealed class BookStockChangedHandler(LendingDbContext db, Stock stock) : IIntegrationEventHandler<BookStockChanged>
{
    public async Task HandleAsync(BookStockChanged e, CancellationToken cancellationToken)
    {
        // The title locked FOR UPDATE first, as Stock.SetAsync locks it next: the upsert alone takes
        // a weaker lock that a borrow's key share lets through, and upgrading it afterwards waited
        // for that borrow while the borrow's availability UPDATE waited for this one (a deadlock).
        // No row yet: an empty one is inserted first (waiting for a BookCreated or a borrow's
        // look-up inserting it right now), so the upsert never updates a row not locked FOR UPDATE.
        if (!await LockAsync(cancellationToken))
        {
            await db.Database.ExecuteSqlAsync($"""
                INSERT INTO titles (id, name, availability_version, catalog_version, deleted)
                VALUES ({e.BookId}, '', 0, 0, false) ON CONFLICT (id) DO NOTHING
                """, cancellationToken);
            await LockAsync(cancellationToken);
        }
        if (await TitleUpsert.ApplyAsync(db, e.BookId, null, e.Version, false, cancellationToken) != TitleChange.None)
        {
            await stock.SetAsync(e.BookId, e.TotalCopies, cancellationToken);
        }

        async Task<bool> LockAsync(CancellationToken ct) =>
            (await db.Database.SqlQuery<Guid>($"SELECT id AS value FROM titles WHERE id = {e.BookId} FOR UPDATE").ToListAsync(ct)).Count > 0;
    }
}

/// <summary>A deleted title lends nothing more (its loans, if any, still come back).</summary>
public sealed class BookDeletedHandler(LendingDbContext db) : IIntegrationEventHandler<BookDeleted>
{
    public Task HandleAsync(BookDeleted e, CancellationToken cancellationToken) => TitleUpsert.ApplyAsync(db, e.BookId, null, e.Version, true, cancellationToken);
}

public sealed class UserRegisteredHandler(LendingDbContext db) : IIntegrationEventHandler<UserRegistered>
{
    public Task HandleAsync(UserRegistered e, CancellationToken cancellationToken) =>
        ReaderUpsert.ApplyAsync(db, e.UserId, e.Email, e.FirstName, e.LastName, e.Active, e.Version, e.PatronGroupId, cancellationToken, e.KeepLoanHistory);
}

/// <summary>
/// The reader's replica; when it turns to keepLoanHistory = false, every returned loan of theirs
/// is anonymised at once, in the handler's transaction (with LoansAnonymised in the outbox),
/// including a loan whose return was in flight while the handler ran.
/// </summary>
public sealed class UserUpdatedHandler(LendingDbContext db, LoanAnonymiser anonymiser, TimeProvider time, ILogger<UserUpdatedHandler> logger)
    : IIntegrationEventHandler<UserUpdated>
{
    public async Task HandleAsync(UserUpdated e, CancellationToken cancellationToken)
    {
        // The replica's choice before this event, read with the lock the upsert takes anyway.
        var before = await db.Database.SqlQuery<bool>(
            $"SELECT keep_loan_history AS value FROM readers WHERE id = {e.UserId} FOR NO KEY UPDATE").ToListAsync(cancellationToken);
        var applied = await ReaderUpsert.ApplyAsync(db, e.UserId, e.Email, e.FirstName, e.LastName, e.Active, e.Version, e.PatronGroupId, cancellationToken, e.KeepLoanHistory);
        // Only the change to "keep no history" sweeps: while the replica already said so, every
        // return read it and anonymised its own loan. Another update of such a reader (a new name)
        // locks none of their loans, so it waits for no return in flight (which holds its title).
        if (applied == 0 || e.KeepLoanHistory || before is [false])
        {
            return;
        }
        // Every loan of theirs is locked, the open ones too: a return in flight holds its loan's row
        // from its UPDATE to its commit and reads keep-history after that UPDATE, so it may have read
        // "keep" before this transaction committed. Waiting for its row, this statement gets the row
        // as the return committed it (READ COMMITTED re-reads a row it waited for) and anonymises it
        // if returned. A return that comes after the lock waits for this commit and reads "keep no
        // history" itself. Without the open loans, that loan kept its reader until the clock's sweep.
        var ids = await db.Database.SqlQuery<Guid>($"""
            WITH mine AS (SELECT id, returned_at FROM loans WHERE user_id = {e.UserId} AND anonymised_at IS NULL FOR UPDATE)
            SELECT id AS value FROM mine WHERE returned_at IS NOT NULL
            """).ToListAsync(cancellationToken);
        var done = await anonymiser.AnonymiseAsync(ids, time.DatabaseNow(), cancellationToken);
        logger.LogInformation("Reader {UserId} keeps no loan history: {Count} returned loans anonymised", e.UserId, done.Count);
    }
}

public sealed class UserDeactivatedHandler(LendingDbContext db) : IIntegrationEventHandler<UserDeactivated>
{
    public Task HandleAsync(UserDeactivated e, CancellationToken cancellationToken) =>
        db.Database.ExecuteSqlAsync($"UPDATE readers SET active = FALSE, version = {e.Version} WHERE id = {e.UserId} AND version < {e.Version}", cancellationToken);
}

public sealed class PatronGroupCreatedHandler(LendingDbContext db) : IIntegrationEventHandler<PatronGroupCreated>
{
    public Task HandleAsync(PatronGroupCreated e, CancellationToken cancellationToken) => PatronGroupUpsert.ApplyAsync(db, e.PatronGroupId, e.Name, e.Version, false, cancellationToken);
}

public sealed class PatronGroupUpdatedHandler(LendingDbContext db) : IIntegrationEventHandler<PatronGroupUpdated>
{
    public Task HandleAsync(PatronGroupUpdated e, CancellationToken cancellationToken) => PatronGroupUpsert.ApplyAsync(db, e.PatronGroupId, e.Name, e.Version, false, cancellationToken);
}

/// <summary>
/// A deleted group is kept, marked (new rules may not name it), and the rules in force lose the lines
/// naming it in a new version, as Koha drops a deleted patron category's circulation rules: no reader
/// is in it any more (the user service deletes only an empty group), and a line left behind would
/// make the admin's next save of the list a 400 for a line they did not touch. Older versions keep
/// the line, so the loans made under them still read their rule.
/// </summary>
public sealed class PatronGroupDeletedHandler(LendingDbContext db, CirculationSettings settings, TimeProvider time) : IIntegrationEventHandler<PatronGroupDeleted>
{
    public async Task HandleAsync(PatronGroupDeleted e, CancellationToken cancellationToken)
    {
        if (await PatronGroupUpsert.ApplyAsync(db, e.PatronGroupId, null, e.Version, true, cancellationToken) > 0)
        {
            await settings.DropPatronGroupAsync(e.PatronGroupId, time.DatabaseNow(), cancellationToken);
        }
    }
}
