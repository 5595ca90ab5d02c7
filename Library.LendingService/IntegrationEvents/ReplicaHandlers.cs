using Library.Contracts.Events;
using Library.EventBus;
using Library.LendingService.Data;
using Library.LendingService.Loans;
using Library.LendingService.Replicas;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.IntegrationEvents;

// The replicas of titles and readers, kept from the catalog's and the user service's events.
// Each write is conditional on the version, so late or repeated events change nothing.

public sealed class BookCreatedHandler(LendingDbContext db) : IIntegrationEventHandler<BookCreated>
{
    public Task HandleAsync(BookCreated e, CancellationToken cancellationToken) => TitleUpsert.ApplyAsync(db, e.BookId, e.Title, e.TotalCopies, e.Version, false, cancellationToken);
}

public sealed class BookUpdatedHandler(LendingDbContext db, Circulation circulation) : IIntegrationEventHandler<BookUpdated>
{
    public async Task HandleAsync(BookUpdated e, CancellationToken cancellationToken)
    {
        if (await TitleUpsert.ApplyAsync(db, e.BookId, e.Title, e.TotalCopies, e.Version, false, cancellationToken))
        {
            await circulation.StockChangedAsync(e.BookId, cancellationToken);
        }
    }
}

/// <summary>New copies go to readers waiting; the catalog learns the new availability.</summary>
public sealed class BookStockChangedHandler(LendingDbContext db, Circulation circulation) : IIntegrationEventHandler<BookStockChanged>
{
    public async Task HandleAsync(BookStockChanged e, CancellationToken cancellationToken)
    {
        if (await TitleUpsert.ApplyAsync(db, e.BookId, null, e.TotalCopies, e.Version, false, cancellationToken))
        {
            await circulation.StockChangedAsync(e.BookId, cancellationToken);
        }
    }
}

/// <summary>A deleted title lends nothing more (its loans, if any, still come back).</summary>
public sealed class BookDeletedHandler(LendingDbContext db) : IIntegrationEventHandler<BookDeleted>
{
    public Task HandleAsync(BookDeleted e, CancellationToken cancellationToken) => TitleUpsert.ApplyAsync(db, e.BookId, null, null, e.Version, true, cancellationToken);
}

public sealed class UserRegisteredHandler(LendingDbContext db) : IIntegrationEventHandler<UserRegistered>
{
    public Task HandleAsync(UserRegistered e, CancellationToken cancellationToken) => ReaderUpsert.ApplyAsync(db, e.UserId, e.Email, e.FirstName, e.LastName, e.Active, e.Version, cancellationToken);
}

public sealed class UserUpdatedHandler(LendingDbContext db) : IIntegrationEventHandler<UserUpdated>
{
    public Task HandleAsync(UserUpdated e, CancellationToken cancellationToken) => ReaderUpsert.ApplyAsync(db, e.UserId, e.Email, e.FirstName, e.LastName, e.Active, e.Version, cancellationToken);
}

public sealed class UserDeactivatedHandler(LendingDbContext db) : IIntegrationEventHandler<UserDeactivated>
{
    public Task HandleAsync(UserDeactivated e, CancellationToken cancellationToken) =>
        db.Database.ExecuteSqlAsync($"UPDATE readers SET active = FALSE, version = {e.Version} WHERE id = {e.UserId} AND version < {e.Version}", cancellationToken);
}
