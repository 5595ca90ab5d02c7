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
public sealed class CirculationSettings(LendingDbContext db, IOptionsMonitor<LendingOptions> options)
{
    public const string RulesKind = "rules";
    public const string CalendarKind = "calendar";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>The newest rules and calendar, in one round trip.</summary>
    public async Task<CirculationSettingsSnapshot> CurrentAsync(CancellationToken ct)
    {
        var rows = await db.CirculationSettings.FromSql($"""
            SELECT DISTINCT ON (kind) * FROM circulation_settings ORDER BY kind, version DESC
            """).AsNoTracking().ToListAsync(ct);
        var rules = rows.SingleOrDefault(r => r.Kind == RulesKind) is { } r ? ToRules(r) : SeedRules();
        var calendar = rows.SingleOrDefault(r => r.Kind == CalendarKind) is { } c
            ? LibraryCalendar.From(JsonSerializer.Deserialize<CalendarDocument>(c.Document, Json)!)
            : DefaultCalendar();
        return new(rules, calendar);
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

    public Task<long> SaveCalendarAsync(CalendarDocument calendar, Guid changedBy, DateTimeOffset now, CancellationToken ct) =>
        SaveAsync(CalendarKind, JsonSerializer.Serialize(calendar, Json), changedBy, now, ct);

    private async Task<long> SaveAsync(string kind, string document, Guid changedBy, DateTimeOffset now, CancellationToken ct)
    {
        // Two admins saving at once: the second waits for the first's row and gets the next version.
        await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_xact_lock(hashtext({"circulation_settings:" + kind}))", ct);
        var version = await db.CirculationSettings.Where(s => s.Kind == kind).MaxAsync(s => (long?)s.Version, ct) ?? 0;
        db.CirculationSettings.Add(new CirculationSetting { Kind = kind, Version = version + 1, Document = document, ChangedAt = now, ChangedBy = changedBy });
        await db.SaveChangesAsync(ct);
        return version + 1;
    }

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
