using Microsoft.EntityFrameworkCore;

namespace Library.EventBus.Tests;

// A small service of the test's own, with the shape of the real ones: its data, the events it
// publishes and handles, and the outbox/inbox tables in the same database.

[EventName("test.note-added")]
public sealed record NoteAdded(Guid NoteId, string Text) : IntegrationEvent;

[EventName("test.shelf-changed")]
public sealed record ShelfChanged(Guid BookId, int Available, long Version) : IntegrationEvent, IVersionedEvent;

[EventName("test.tally-counted")]
public sealed record TallyCounted(Guid Key, string Text) : IntegrationEvent;

public sealed class Note
{
    public Guid Id { get; set; }
    public required string Text { get; set; }
}

/// <summary>One row per (event, handler) application: proves "exactly once" by its count.</summary>
public sealed class Application
{
    public Guid EventId { get; set; }
    public int Times { get; set; }
    public DateTimeOffset OccurredAt { get; set; }
    public DateTimeOffset AppliedAt { get; set; }
}

/// <summary>A versioned read model, like the catalog's availability of a title.</summary>
public sealed class Shelf
{
    public Guid BookId { get; set; }
    public int Available { get; set; }
    public long Version { get; set; }
    public int Changes { get; set; }
}

/// <summary>A counter raised by each application of a <see cref="TallyCounted"/>: not idempotent on its own.</summary>
public sealed class Tally
{
    public Guid Key { get; set; }
    public int Times { get; set; }
}

public sealed class TestDbContext(DbContextOptions<TestDbContext> options) : DbContext(options)
{
    public DbSet<Note> Notes => Set<Note>();
    public DbSet<Application> Applications => Set<Application>();
    public DbSet<Shelf> Shelves => Set<Shelf>();
    public DbSet<Tally> Tallies => Set<Tally>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<Application>().HasKey(a => a.EventId);
        modelBuilder.Entity<Shelf>().HasKey(s => s.BookId);
        modelBuilder.Entity<Tally>().HasKey(t => t.Key);
        modelBuilder.AddEventBusTables();
    }
}

/// <summary>Failure switches the tests flip: which notes fail, and how often.</summary>
public sealed class Faults
{
    private readonly Dictionary<string, int> _failuresLeft = [];
    private readonly Lock _gate = new();

    /// <summary>Notes with this text fail this many times before they succeed (-1: always).</summary>
    public void Fail(string text, int times)
    {
        lock (_gate)
        {
            _failuresLeft[text] = times;
        }
    }

    public bool ShouldFail(string text)
    {
        lock (_gate)
        {
            if (!_failuresLeft.TryGetValue(text, out var left) || left == 0)
            {
                return false;
            }
            if (left > 0)
            {
                _failuresLeft[text] = left - 1;
            }
            return true;
        }
    }
}

public sealed class NoteAddedHandler(TestDbContext db, Faults faults, TimeProvider time) : IIntegrationEventHandler<NoteAdded>
{
    public async Task HandleAsync(NoteAdded integrationEvent, CancellationToken cancellationToken)
    {
        var application = await db.Applications.FindAsync([integrationEvent.Id], cancellationToken);
        if (application is null)
        {
            db.Applications.Add(new Application { EventId = integrationEvent.Id, Times = 1, OccurredAt = integrationEvent.OccurredAt, AppliedAt = time.GetUtcNow() });
        }
        else
        {
            application.Times++;
        }

        // A failure after the handler wrote: the write must not survive it.
        if (faults.ShouldFail(integrationEvent.Text))
        {
            await db.SaveChangesAsync(cancellationToken);
            throw new InvalidOperationException($"note '{integrationEvent.Text}' is set to fail");
        }
    }
}

/// <summary>
/// The pattern for versioned read models: one conditional upsert, so concurrent deliveries (other
/// replicas, or this one's parallel consumers) can never let an older version overwrite a newer.
/// A read-compare-write in C# would lose updates here.
/// </summary>
public sealed class ShelfChangedHandler(TestDbContext db) : IIntegrationEventHandler<ShelfChanged>
{
    public Task HandleAsync(ShelfChanged integrationEvent, CancellationToken cancellationToken) =>
        db.Database.ExecuteSqlAsync($"""
            INSERT INTO shelves (book_id, available, version, changes)
            VALUES ({integrationEvent.BookId}, {integrationEvent.Available}, {integrationEvent.Version}, 1)
            ON CONFLICT (book_id) DO UPDATE
               SET available = excluded.available, version = excluded.version, changes = shelves.changes + 1
             WHERE shelves.version < excluded.version
            """, cancellationToken);
}

/// <summary>What <see cref="TallyCountedHandler.AppliedAsync"/> was told, in order.</summary>
public sealed class AppliedLog
{
    private readonly System.Collections.Concurrent.ConcurrentQueue<(Guid EventId, IReadOnlyList<int>? Rows)> _applied = new();

    public void Add(Guid eventId, IReadOnlyList<int>? rows) => _applied.Enqueue((eventId, rows));

    public IReadOnlyList<(Guid EventId, IReadOnlyList<int>? Rows)> Entries => _applied.ToArray();
}

/// <summary>
/// A statement handler (<see cref="IIntegrationEventStatements{TEvent}"/>) whose statement is not
/// idempotent (a counter raised each time), so only the inbox keeps an event to one application.
/// A note set to fail adds a second statement that fails after the first has written.
/// </summary>
public sealed class TallyCountedHandler(Faults faults, AppliedLog log) : IIntegrationEventStatements<TallyCounted>
{
    public IReadOnlyList<FormattableString> Statements(TallyCounted integrationEvent)
    {
        List<FormattableString> statements =
        [
            $"INSERT INTO tallies (key, times) VALUES ({integrationEvent.Key}, 1) ON CONFLICT (key) DO UPDATE SET times = tallies.times + 1",
        ];
        if (faults.ShouldFail(integrationEvent.Text))
        {
            statements.Add($"SELECT 1 / {0}");
        }
        return statements;
    }

    public Task AppliedAsync(TallyCounted integrationEvent, IReadOnlyList<int>? rowsAffected)
    {
        log.Add(integrationEvent.Id, rowsAffected);
        return Task.CompletedTask;
    }
}
