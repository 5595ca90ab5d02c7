using Library.LendingService.Data;
using Library.ServiceDefaults;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Loans;

/// <summary>
/// Runs a use case in one transaction, and for a request with an Idempotency-Key, exactly once
/// per (reader, key): the key is claimed by inserting a row in the same transaction, so a
/// concurrent retry waits on it and then answers what the first request answered (refusals
/// included); nothing is done twice. Keys are kept for the policy's window (24 h). A use case's
/// changes still pending when it succeeds are saved here, in the same transaction (refusals' never).
/// The request's token stops the use case while it reads and decides; once it has decided, its
/// answer is saved and committed in full even if the client has gone (PostgresExtensions.CommitFinishedAsync
/// says why); the rollbacks too run to their end (EF logs a cancelled one as an error).
/// </summary>
public sealed class Idempotency(LendingDbContext db, Microsoft.Extensions.Options.IOptionsMonitor<LendingOptions> options, TimeProvider time)
{
    public const string Header = "Idempotency-Key";
    public const int MaxKeyLength = 100;

    public async Task<Outcome> RunAsync(Guid userId, string? key, string operation, Func<CancellationToken, Task<Outcome>> useCase, CancellationToken ct)
    {
        // A request without a key still gets one of its own, recorded with a success: if the
        // connection dies during COMMIT (the primary killed, a failover), the execution strategy
        // runs the use case again, and that row tells whether the first attempt committed: then
        // its answer is returned and nothing is done twice.
        var ownKey = key is null ? $"request:{Guid.NewGuid():N}" : null;
        var attempts = 0;
        return await db.Database.CreateExecutionStrategy().ExecuteAsync(async token =>
        {
            db.ChangeTracker.Clear();
            // No SAVEPOINT / RELEASE around each SaveChanges (EF's default inside a transaction: two
            // round trips per save): a failed save fails the whole use case, whose transaction is
            // rolled back and retried from the start, never continued. Set per use (a pooled
            // context is reset to the default when it goes back to the pool).
            db.Database.AutoSavepointsEnabled = false;
            await using var transaction = await db.Database.BeginTransactionAsync(token);
            var now = time.GetUtcNow();
            // The key was made just now, so on the first attempt no row can hold it: the look-up is
            // for a retry only (one round trip less on every keyless borrow, return and renewal).
            if (ownKey is not null && ++attempts > 1
                && await db.IdempotentRequests.AsNoTracking().SingleOrDefaultAsync(r => r.UserId == userId && r.Key == ownKey, token) is { } committed)
            {
                await transaction.RollbackAsync(CancellationToken.None);
                return Outcome.Deserialize(committed.Response!);
            }
            if (key is not null)
            {
                // A key older than the window is forgotten and may be used afresh.
                var window = now - options.CurrentValue.IdempotencyWindow;
                await db.IdempotentRequests.Where(r => r.UserId == userId && r.Key == key && r.CreatedAt < window).ExecuteDeleteAsync(token);
                var claimed = await db.Database.ExecuteSqlAsync($"""
                    INSERT INTO idempotent_requests (user_id, key, operation, status_code, created_at)
                    VALUES ({userId}, {key}, {operation}, 0, {now})
                    ON CONFLICT (user_id, key) DO NOTHING
                    """, token);
                if (claimed == 0)
                {
                    // The first request with this key has committed (we waited for it): its answer.
                    await transaction.RollbackAsync(CancellationToken.None);
                    var first = await db.IdempotentRequests.AsNoTracking().SingleAsync(r => r.UserId == userId && r.Key == key, token);
                    return first.Operation != operation
                        ? Outcome.Problem(StatusCodes.Status422UnprocessableEntity, "Idempotency-Key reused",
                            $"This key was used for another kind of request ({first.Operation}); use a new key.")
                        : Outcome.Deserialize(first.Response!);
                }
            }

            var outcome = await useCase(token);
            var decided = CancellationToken.None; // from here on, not cancelled by the client's leaving
            if (outcome.Succeeded)
            {
                // A use case may leave its last changes to this save (the desk's loans and returns
                // do): saved with the request's own record, one round trip. A refusal's are never saved.
                if (key is null)
                {
                    db.IdempotentRequests.Add(new IdempotentRequest
                    {
                        UserId = userId, Key = ownKey!, Operation = operation, StatusCode = outcome.Status, Response = outcome.Serialize(), CreatedAt = now,
                    });
                }
                await db.SaveChangesAsync(decided);
            }
            if (key is not null)
            {
                await db.IdempotentRequests.Where(r => r.UserId == userId && r.Key == key)
                    .ExecuteUpdateAsync(s => s.SetProperty(r => r.StatusCode, outcome.Status).SetProperty(r => r.Response, outcome.Serialize()), decided);
            }
            if (outcome.Succeeded || key is not null)
            {
                // A refusal changed nothing but the key's row, which must be kept with its answer.
                await transaction.CommitFinishedAsync();
            }
            return outcome;
        }, ct);
    }

    /// <summary>
    /// The first answer already given to this caller's key for this operation, if any (within the
    /// window): a retry gets it even when the loan has changed since, e.g. a return that
    /// anonymised the loan, which the reader no longer owns.
    /// </summary>
    public async Task<Outcome?> AnsweredAsync(Guid userId, string? key, string operation, CancellationToken ct)
    {
        if (key is null)
        {
            return null;
        }
        var window = time.GetUtcNow() - options.CurrentValue.IdempotencyWindow;
        var first = await db.IdempotentRequests.AsNoTracking()
            .SingleOrDefaultAsync(r => r.UserId == userId && r.Key == key && r.Operation == operation && r.StatusCode != 0 && r.CreatedAt >= window, ct);
        return first?.Response is { } response ? Outcome.Deserialize(response) : null;
    }

    public static IResult? InvalidKey(string? key) =>
        key is not null && (key.Length is 0 or > MaxKeyLength || TextInput.HasControlCharacters(key))
            ? Results.ValidationProblem(new Dictionary<string, string[]> { [Header] = [$"{Header} must be 1 to {MaxKeyLength} printable characters."] })
            : null;
}
