using Library.LendingService.Data;
using Library.LendingService.Holds;
using Library.LendingService.Rules;

namespace Library.LendingService.Copies;

/// <summary>
/// The catalog's word on how many copies a title has (BookCreated, BookStockChanged, or a look-up
/// of a title whose event has not arrived), applied to the copies: in one transaction with the
/// title locked, copies are added or withdrawn (<see cref="Shelf.ReconcileAsync"/>), new copies
/// serve the hold queue first, and the catalog learns the availability.
/// </summary>
public sealed class Stock(LendingDbContext db, Shelf shelf, WaitingList holds, CirculationSettings settings, TimeProvider time)
{
    /// <summary>In the caller's transaction (an event handler's, or a replica look-up's).</summary>
    public async Task SetAsync(Guid bookId, int totalCopies, CancellationToken ct)
    {
        var now = time.DatabaseNow();
        await holds.LockTitleAsync(bookId, ct);
        await shelf.ReconcileAsync(bookId, totalCopies, now, ct);
        await holds.ServeAsync(bookId, await settings.CurrentAsync(ct), now, ct);
        await db.SaveChangesAsync(ct);
        await shelf.PublishAvailabilityAsync(bookId, ct);
    }

}
