using System.Text.Json;
using Library.LendingService.Calendar;
using Library.LendingService.Data;
using Library.LendingService.Loans;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Library.LendingService.Rules;

/// <summary>The rules and the calendar in force: what every loan, renewal and hold is decided under.</summary>
public sealed record CirculationSettingsSnapshot(RuleSet Rules, LibraryCalendar Calendar);

/// <summary>
/// The circulation rules and the calendar, stored as versioned JSON documents in lendingdb
/// (<c>circulation_settings</c>): a save adds a version, the newest applies, and a loan records
/// the rules' version it was made under, so older versions stay readable. Until an admin saves
/// one, the rules are seeded from configuration (<see cref="LendingOptions"/>, version 0) and the
/// calendar is the configured time zone with every day open.
/// </summary>
public sealed class CirculationSettings(LendingDbContext db, IOptionsMonitor<LendingOptions> options, CirculationSettingsCache cache)
{
    public const string RulesKind = "rules";
    public const string CalendarKind = "calendar";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>
    /// The newest rules and calendar. Every borrow, return and renewal asks, so the parsed documents
    /// are kept (<see cref="CirculationSettingsCache"/>) and each call reads only which rows are the
    /// newest, in the caller's transaction: a save committed by any replica is seen by the next
    /// call, exactly as when the documents were read each time.
    /// </summary>
    public async Task<CirculationSettingsSnapshot> CurrentAsync(CancellationToken ct) =>
        await CurrentAsync(await db.Database.SqlQueryRaw<SettingsVersion>(NewestSql).ToListAsync(ct), ct);

    /// <summary>
    /// Which rows are the newest of each kind. xmin (the inserting transaction) tells a row from one
    /// of the same kind and version written after the table was emptied (tests reset the database
    /// under a running service).
    /// </summary>
    public const string NewestSql = """
        SELECT DISTINCT ON (kind) kind, version, xmin::text::bigint AS row_xid
        FROM circulation_settings ORDER BY kind, version DESC
        """;

    /// <summary>The rules and calendar in force, from <see cref="NewestSql"/>'s rows read in this transaction (e.g. in a <see cref="RoundTrip"/>).</summary>
    public async Task<CirculationSettingsSnapshot> CurrentAsync(IReadOnlyList<SettingsVersion> newest, CancellationToken ct)
    {
        var key = new CirculationSettingsCache.Key(
            newest.SingleOrDefault(v => v.Kind == RulesKind), newest.SingleOrDefault(v => v.Kind == CalendarKind), options.CurrentValue);
        if (cache.TryGet(key) is { } cached)
        {
            return cached;
        }
        var rows = await db.CirculationSettings.FromSql($"""
            SELECT DISTINCT ON (kind) * FROM circulation_settings ORDER BY kind, version DESC
            """).AsNoTracking().ToListAsync(ct);
        var rules = rows.SingleOrDefault(r => r.Kind == RulesKind) is { } r ? ToRules(r) : SeedRules();
        var calendar = rows.SingleOrDefault(r => r.Kind == CalendarKind) is { } c
            ? LibraryCalendar.From(JsonSerializer.Deserialize<CalendarDocument>(c.Document, Json)!)
            : DefaultCalendar();
        var snapshot = new CirculationSettingsSnapshot(rules, calendar);
        // Kept only if nothing was saved between the two reads (else the next call parses again).
        if (rows.Count == newest.Count && rows.All(row => newest.Any(v => v.Kind == row.Kind && v.Version == row.Version)))
        {
            cache.Set(key, snapshot);
        }
        return snapshot;
    }

    /// <summary>The rules of a given version (a loan's), or the current ones for a loan made before rules existed.</summary>
    public async Task<RuleSet> RulesAsync(long? version, CancellationToken ct)
    {
        if (version is null)
        {
            return (await CurrentAsync(ct)).Rules;
        }
        if (version == 0)
        {
            return SeedRules();
        }
        var row = await db.CirculationSettings.AsNoTracking().SingleAsync(s => s.Kind == RulesKind && s.Version == version, ct);
        return ToRules(row);
    }

    /// <summary>Saves a new version of the rules (already validated); the version after the newest.</summary>
    public Task<long> SaveRulesAsync(IReadOnlyList<CirculationRule> rules, Guid changedBy, DateTimeOffset now, CancellationToken ct) =>
        SaveAsync(RulesKind, JsonSerializer.Serialize(rules, Json), changedBy, now, ct);

    /// <summary>
    /// Saves the rules in force without the lines naming <paramref name="patronGroupId"/> (a deleted
    /// group), as a new version by nobody (<c>changed_by</c> null: the system); nothing when none
    /// names it. Under the same lock as an admin's save, so the list read is the newest.
    /// </summary>
    public async Task DropPatronGroupAsync(Guid patronGroupId, DateTimeOffset now, CancellationToken ct)
    {
        await LockAsync(RulesKind, ct);
        var newest = await db.CirculationSettings.AsNoTracking().Where(s => s.Kind == RulesKind).OrderByDescending(s => s.Version).FirstOrDefaultAsync(ct);
        if (newest is null)
        {
            return; // the seeded rules name no group
        }
        var rules = ToRules(newest).Rules;
        var kept = rules.Where(r => r.PatronGroupId != patronGroupId).ToList();
        if (kept.Count < rules.Count)
        {
            await SaveAsync(RulesKind, JsonSerializer.Serialize(kept, Json), null, now, ct);
        }
    }

    public Task<long> SaveCalendarAsync(CalendarDocument calendar, Guid changedBy, DateTimeOffset now, CancellationToken ct) =>
        SaveAsync(CalendarKind, JsonSerializer.Serialize(calendar, Json), changedBy, now, ct);

    private async Task<long> SaveAsync(string kind, string document, Guid? changedBy, DateTimeOffset now, CancellationToken ct)
    {
        await LockAsync(kind, ct);
        var version = await db.CirculationSettings.Where(s => s.Kind == kind).MaxAsync(s => (long?)s.Version, ct) ?? 0;
        db.CirculationSettings.Add(new CirculationSetting { Kind = kind, Version = version + 1, Document = document, ChangedAt = now, ChangedBy = changedBy });
        await db.SaveChangesAsync(ct);
        return version + 1;
    }

    /// <summary>The rules' lock (as a save takes it), for what must be read under it: the patron groups a save checks.</summary>
    public Task LockRulesAsync(CancellationToken ct) => LockAsync(RulesKind, ct);

    /// <summary>Two saves at once: the second waits for the first's row and gets the next version (held to the transaction's end; taken again, it is a no-op).</summary>
    private async Task LockAsync(string kind, CancellationToken ct) =>
        await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_xact_lock(hashtext({"circulation_settings:" + kind}))", ct);

    private static RuleSet ToRules(CirculationSetting row) =>
        new(row.Version, JsonSerializer.Deserialize<List<CirculationRule>>(row.Document, Json)!);

    private RuleSet SeedRules()
    {
        var o = options.CurrentValue;
        return RuleSet.Seed(o.MaxLoanDays, o.MaxActiveLoans, o.MaxRenewals, o.HoldPickupDays);
    }

    private LibraryCalendar DefaultCalendar() =>
        LibraryCalendar.From(new CalendarDocument(options.CurrentValue.TimeZone, [], []));
}

/// <summary>Which row of a kind is the newest.</summary>
public sealed record SettingsVersion(string Kind, long Version, long RowXid)
{
    /// <summary>A row of <see cref="CirculationSettings.NewestSql"/>.</summary>
    public static SettingsVersion Read(System.Data.Common.DbDataReader row) => new(row.GetString(0), row.GetInt64(1), row.GetInt64(2));
}

/// <summary>
/// The parsed rules and calendar last read (one per replica), under the rows they came from: JSON
/// parsing and time-zone look-ups once per save instead of on every borrow. Never trusted without
/// the caller reading which rows are newest first (<see cref="CirculationSettings.CurrentAsync"/>).
/// </summary>
public sealed class CirculationSettingsCache
{
    /// <summary>The newest rows of each kind (null: none, the configured default) and the configuration seeding the defaults.</summary>
    public sealed record Key(SettingsVersion? Rules, SettingsVersion? Calendar, LendingOptions Options);

    private volatile Entry? _entry;

    private sealed record Entry(Key Key, CirculationSettingsSnapshot Snapshot);

    public CirculationSettingsSnapshot? TryGet(Key key) => _entry is { } entry && entry.Key == key ? entry.Snapshot : null;

    public void Set(Key key, CirculationSettingsSnapshot snapshot) => _entry = new Entry(key, snapshot);
}
