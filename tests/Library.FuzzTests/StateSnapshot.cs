using Npgsql;

namespace Library.FuzzTests;

/// <summary>
/// What a service owns, read straight from its database (not through its API, whose answers may
/// come from a cache): per table, every row's key and a hash of the columns that a request to that
/// service changes synchronously. Left out, because they change without any request or by design:
/// read models fed by other services' events (a book's availableCopies, the lending service's
/// replicas of titles and readers), the event bus's inbox and the relay's marks on the outbox, the
/// idempotency keys (a refused borrow keeps its key with its answer, API.md) and the log-in
/// failure counters (a refused log-in counts towards the lockout, ARCHITECTURE.md).
/// </summary>
public sealed record StateSnapshot(string Service, IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>> Tables)
{
    private sealed record TableSpec(string Table, string Key, string Columns, bool IgnoreNewRows = false);

    private static readonly Dictionary<string, TableSpec[]> Specs = new()
    {
        [Contract.Users] =
        [
            new("users", "id", "id, email, normalized_email, first_name, last_name, role, active, password_hash, version, created_at, updated_at"),
            new("refresh_tokens", "id", "id, user_id, family_id, token_hash, created_at, expires_at, used_at, revoked_at"),
            new("signing_keys", "id", "id, algorithm, created_at, retired_at"),
            new("outbox_messages", "id", "id, event_name, payload"),
        ],
        [Contract.Books] =
        [
            new("books", "id", "id, isbn, title, subtitle, description, publisher, published_year, language, page_count, total_copies, version, created_at, updated_at"),
            new("authors", "id", "id, name, bio, birth_year"),
            new("categories", "id", "id, name, normalized_name, description"),
            new("book_authors", "books_id::text || '/' || authors_id::text", "books_id, authors_id"),
            new("book_categories", "books_id::text || '/' || categories_id::text", "books_id, categories_id"),
            new("outbox_messages", "id", "id, event_name, payload"),
        ],
        [Contract.Lending] =
        [
            new("loans", "id", "id, book_id, user_id, copy_id, days, borrowed_at, due_at, returned_at, renewals, rule_version, rule_index"),
            new("holds", "id", "id, book_id, user_id, status, sequence, placed_at, ready_until, closed_at, copy_id"),
            // A title row first seen (an event, or a look-up on a replica miss) is a copy of the
            // catalog's, not a change, and so are the copies it brings; a change of a copy is one.
            new("titles", "id", "id, availability_version", IgnoreNewRows: true),
            new("copies", "id", "id, book_id, barcode, call_number, location, loan_type, status, withdraw_on_check_in", IgnoreNewRows: true),
            new("circulation_settings", "kind || '/' || version", "kind, version, document"),
            new("fines", "id", "id, user_id, loan_id, book_id, title, kind, amount, paid_amount, status, created_at, closed_at"),
            new("fine_transactions", "id", "id, fine_id, kind, amount, created_by, reason, created_at"),
            new("blocks", "id", "id, user_id, reason, expires_at, borrowing, renewals, holds, created_by, created_at"),
            new("outbox_messages", "id", "id, event_name, payload"),
        ],
    };

    public static async Task<StateSnapshot> TakeAsync(string service, string connectionString, CancellationToken ct)
    {
        var tables = new Dictionary<string, IReadOnlyDictionary<string, string>>();
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        // Every table in one round trip: the test takes two of these per request, thousands in all.
        await using var batch = new NpgsqlBatch(connection);
        foreach (var spec in Specs[service])
        {
            batch.BatchCommands.Add(new NpgsqlBatchCommand($"SELECT ({spec.Key})::text, md5(ROW({spec.Columns})::text) FROM {spec.Table}"));
        }
        await using (var reader = await batch.ExecuteReaderAsync(ct))
        {
            foreach (var spec in Specs[service])
            {
                var rows = new Dictionary<string, string>(StringComparer.Ordinal);
                while (await reader.ReadAsync(ct))
                {
                    rows[reader.GetString(0)] = reader.GetString(1);
                }
                tables[spec.Table] = rows;
                await reader.NextResultAsync(ct);
            }
        }
        return new StateSnapshot(service, tables);
    }

    /// <summary>Rows added, removed or changed since <paramref name="before"/>, e.g. "books ~0197…".</summary>
    public IReadOnlyList<string> ChangesSince(StateSnapshot before)
    {
        var changes = new List<string>();
        foreach (var spec in Specs[Service])
        {
            var old = before.Tables[spec.Table];
            var now = Tables[spec.Table];
            changes.AddRange(old.Keys.Where(k => !now.ContainsKey(k)).Select(k => $"{Service}.{spec.Table} -{k}"));
            changes.AddRange(now.Where(r => old.TryGetValue(r.Key, out var hash) && hash != r.Value).Select(r => $"{Service}.{spec.Table} ~{r.Key}"));
            if (!spec.IgnoreNewRows)
            {
                changes.AddRange(now.Keys.Where(k => !old.ContainsKey(k)).Select(k => $"{Service}.{spec.Table} +{k}"));
            }
        }
        return changes;
    }
}
