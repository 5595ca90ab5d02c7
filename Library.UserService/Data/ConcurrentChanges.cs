using Microsoft.EntityFrameworkCore;

namespace Library.UserService.Data;

/// <summary>
/// Users and patron groups carry a version the events announce, checked on every write
/// (<see cref="UserDbContext"/>): when another request changed the row between this one's read and
/// its save, the save fails instead of announcing a second event with the same version. The
/// change is then worked out again from the rows as they are now: what a caller asked for ("make
/// this reader a librarian", "forget my loans") still holds, so they see no error.
/// </summary>
internal static class ConcurrentChanges
{
    /// <summary>After this many lost races in a row the request answers 409 (ProblemDetailsDefaults).</summary>
    public const int Attempts = 10;

    public static async Task<T> RetryOnConflictAsync<T>(this UserDbContext db, Func<CancellationToken, Task<T>> change, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await change(ct);
            }
            catch (DbUpdateConcurrencyException) when (attempt < Attempts && !ct.IsCancellationRequested)
            {
                // Forget the stale rows and the events made from them; the next attempt reads afresh,
                // after a short random pause so that requests racing together do not race again.
                db.ChangeTracker.Clear();
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(1, 5 * attempt)), ct);
            }
        }
    }
}
