using Library.Contracts.Events;
using Library.EventBus;
using Library.LendingService.Data;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Privacy;

/// <summary>
/// Configuration (section <c>Circulation</c>) of what lending keeps about readers.
/// </summary>
public sealed class PrivacyOptions
{
    public const string SectionName = "Circulation";

    /// <summary>
    /// Returned loans lose their reader this many days after the return; 0 keeps them named.
    /// 30 by default: FOLIO and Koha leave it to the library ("never", "immediately" or "after N");
    /// a month keeps the last borrower at hand for the usual disputes (a copy found damaged or
    /// missing pages at the next loan, "I did return it") and is well past the outbox's 7-day
    /// retention of sent events, and still forgets readers within the month.
    /// </summary>
    public int AnonymiseAfterDays { get; set; } = 30;
}

/// <summary>
/// Makes returned loans forget their reader, everywhere lending keeps them: the loan row, the
/// fulfilled hold that became the loan, the answers kept for Idempotency-Key retries that name
/// the loan, and the sent outbox rows of its events. Runs in the caller's transaction and adds
/// <see cref="LoansAnonymised"/> to the outbox in it, so the other services forget the reader too.
/// Loans that are open, or already anonymised, are left as they are.
/// </summary>
/// <remarks>
/// Fines: a closed (paid or waived) fine of an anonymised loan loses its reader here; an open one
/// keeps it, the debt is theirs, and loses it when the clock finds it closed
/// (<see cref="ForgetClosedFinesAsync"/>). The fine.charged events sent (they carry loanId) are
/// scrubbed with the loan's other events. Notices of these loans are deleted by their own
/// <see cref="LoansAnonymised"/> handler (Notices/).
/// </remarks>
public sealed class LoanAnonymiser(LendingDbContext db)
{
    public async Task<IReadOnlyList<Guid>> AnonymiseAsync(IReadOnlyCollection<Guid> loanIds, DateTimeOffset now, CancellationToken ct)
    {
        if (loanIds.Count == 0)
        {
            return [];
        }
        var ids = loanIds.ToArray();
        // The hold the loan fulfilled: same reader and title, closed at the very moment of the loan.
        var holdIds = (await db.Database.SqlQuery<Guid>($"""
            UPDATE holds h SET user_id = NULL
            FROM loans l
            WHERE l.id = ANY({ids}) AND l.returned_at IS NOT NULL AND l.anonymised_at IS NULL
              AND h.status = 'fulfilled' AND h.user_id = l.user_id AND h.book_id = l.book_id AND h.closed_at = l.borrowed_at
            RETURNING h.id AS value
            """).ToListAsync(ct)).ToArray();
        var holds = holdIds.Select(id => id.ToString()).ToArray();
        var done = await db.Database.SqlQuery<Guid>($"""
            UPDATE loans SET user_id = NULL, anonymised_at = {now}
            WHERE id = ANY({ids}) AND returned_at IS NOT NULL AND anonymised_at IS NULL
            RETURNING id AS value
            """).ToListAsync(ct);
        if (done.Count == 0)
        {
            return done;
        }
        var texts = done.Select(id => id.ToString()).ToArray();
        // Sent events of these loans and of their holds (kept 7 days) no longer name the reader;
        // unsent ones go out as they are (before LoansAnonymised, which undoes them downstream) and
        // the clock's sweep scrubs them once sent.
        await db.Database.ExecuteSqlAsync($$"""
            UPDATE outbox_messages SET payload = jsonb_set(payload, '{userId}', 'null'::jsonb)
            WHERE payload->>'loanId' = ANY({{texts}}) AND sent_at IS NOT NULL AND payload->>'userId' IS NOT NULL
            """, ct);
        if (holds.Length > 0)
        {
            await db.Database.ExecuteSqlAsync($$"""
                UPDATE outbox_messages SET payload = jsonb_set(payload, '{userId}', 'null'::jsonb)
                WHERE payload->>'holdId' = ANY({{holds}}) AND sent_at IS NOT NULL AND payload->>'userId' IS NOT NULL
                """, ct);
        }
        await ForgetStoredAnswersAsync(db, done.ToArray(), DateTimeOffset.MinValue, ct);
        await ForgetClosedFinesAsync(db, done.ToArray(), ct);
        await Notices.NoticePrivacy.ForgetLoansAsync(db, [.. done], holdIds, ct);
        db.AddEvent(new LoansAnonymised(done));
        await db.SaveChangesAsync(ct);
        return done;
    }

    /// <summary>
    /// Deletes the answers kept for Idempotency-Key retries (24 hours) that name an anonymised loan:
    /// a borrow's or check-out's answer (the loan and its reader), a return's, renewal's or check-in's
    /// (the loan in the operation, the reader as the key's owner). A late retry of such a request then
    /// meets the loan as it is (returned: 409) instead of its first answer. Those of
    /// <paramref name="loanIds"/>, or of any anonymised loan (null), among answers kept since <paramref name="since"/>;
    /// not a key still being answered (status 0: the return anonymising its loan right now keeps its
    /// answer, without the reader, until the clock's next sweep).
    /// </summary>
    public static Task<int> ForgetStoredAnswersAsync(LendingDbContext db, Guid[]? loanIds, DateTimeOffset since, CancellationToken ct) =>
        db.Database.ExecuteSqlAsync($$"""
            DELETE FROM idempotent_requests r
            USING loans l
            WHERE r.created_at >= {{since}} AND r.status_code <> 0 AND ({{loanIds}}::uuid[] IS NULL OR l.id = ANY({{loanIds}}::uuid[]))
              AND l.anonymised_at IS NOT NULL AND l.id = CASE
                WHEN r.operation ~ '^(return|renew):[0-9a-f]{32}$' THEN split_part(r.operation, ':', 2)::uuid
                WHEN r.response->'body'->>'id' ~ '^[0-9a-f-]{36}$' AND r.operation IN ('borrow', 'check-out') THEN (r.response->'body'->>'id')::uuid
                WHEN r.response->'body'->'loan'->>'id' ~ '^[0-9a-f-]{36}$' THEN (r.response->'body'->'loan'->>'id')::uuid
            END
            """, ct);

    /// <summary>
    /// Closed fines of anonymised loans (of <paramref name="loanIds"/>, or of any: null) forget their
    /// reader: a fine paid or waived after its loan was anonymised is caught by the clock's next sweep.
    /// </summary>
    public static async Task<int> ForgetClosedFinesAsync(LendingDbContext db, Guid[]? loanIds, CancellationToken ct)
    {
        var fines = await db.Database.SqlQuery<Guid>($"""
            UPDATE fines f SET user_id = NULL
            FROM loans l
            WHERE f.loan_id = l.id AND l.anonymised_at IS NOT NULL AND f.status <> 'open' AND f.user_id IS NOT NULL
              AND ({loanIds}::uuid[] IS NULL OR l.id = ANY({loanIds}::uuid[]))
            RETURNING f.id AS value
            """).ToListAsync(ct);
        if (fines.Count > 0)
        {
            // Their fine-charged notices went with the debt.
            await db.Notices.Where(n => n.FineId != null && fines.Contains(n.FineId.Value)).ExecuteDeleteAsync(ct);
        }
        return fines.Count;
    }

    /// <summary>
    /// Scrubs the reader from loan and hold events sent in the last <paramref name="within"/> whose
    /// loan or hold is anonymised: the LoanReturned of a loan anonymised at its return was still
    /// unsent then.
    /// </summary>
    public static async Task<int> ScrubSentEventsAsync(LendingDbContext db, DateTimeOffset now, TimeSpan within, CancellationToken ct) =>
        await db.Database.ExecuteSqlAsync($$"""
            UPDATE outbox_messages o SET payload = jsonb_set(o.payload, '{userId}', 'null'::jsonb)
            FROM loans l
            WHERE o.sent_at >= {{now - within}} AND o.payload->>'loanId' IS NOT NULL AND o.payload->>'userId' IS NOT NULL
              AND o.payload->>'loanId' = l.id::text AND l.anonymised_at IS NOT NULL
            """, ct)
        + await db.Database.ExecuteSqlAsync($$"""
            UPDATE outbox_messages o SET payload = jsonb_set(o.payload, '{userId}', 'null'::jsonb)
            FROM holds h
            WHERE o.sent_at >= {{now - within}} AND o.payload->>'holdId' IS NOT NULL AND o.payload->>'userId' IS NOT NULL
              AND o.payload->>'holdId' = h.id::text AND h.user_id IS NULL
            """, ct);
}
