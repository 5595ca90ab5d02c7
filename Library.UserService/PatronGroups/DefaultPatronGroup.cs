using Library.Contracts.Events;
using Library.EventBus;
using Library.UserService.Data;
using Library.UserService.Users;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Library.UserService.PatronGroups;

/// <summary>Configuration section <c>PatronGroups</c>.</summary>
public sealed class PatronGroupOptions
{
    public const string SectionName = "PatronGroups";

    /// <summary>The name of the group new readers get (created at start if missing).</summary>
    public string Default { get; set; } = DefaultPatronGroup.InitialName;
}

/// <summary>
/// The group every new user gets: the one named by <c>PatronGroups:Default</c>. The migration
/// that introduced groups created "patron" (with <see cref="InitialId"/>) and put every existing
/// user in it; at start, under the migration lock, <see cref="EnsureAsync"/> creates the
/// configured one when it has another name.
/// </summary>
public sealed class DefaultPatronGroup(IOptions<PatronGroupOptions> options)
{
    public const string InitialName = "patron";
    public const string InitialDescription = "Readers of the library";

    /// <summary>The id the migration gave the initial default group (the same in every database).</summary>
    public static readonly Guid InitialId = new("019ab000-0000-7000-8000-000000000001");

    public string Name { get; } = string.IsNullOrWhiteSpace(options.Value.Default) ? InitialName : options.Value.Default.Trim();

    public string NormalizedName => PatronGroup.Normalize(Name);

    public bool Is(PatronGroup group) => group.NormalizedName == NormalizedName;

    public async Task<Guid> GetIdAsync(UserDbContext db, CancellationToken ct)
    {
        var normalized = NormalizedName;
        var ids = await db.PatronGroups.AsNoTracking().Where(g => g.NormalizedName == normalized).Select(g => g.Id).Take(1).ToListAsync(ct);
        return ids.Count == 1
            ? ids[0]
            : throw new InvalidOperationException($"The default patron group '{Name}' (PatronGroups:Default) does not exist; it is created at start.");
    }

    /// <summary>Creates the configured default group when missing (run under the migration lock, so once).</summary>
    public async Task EnsureAsync(UserDbContext db, TimeProvider time, ILogger logger, CancellationToken ct)
    {
        var errors = PatronGroupRules.Validate(Name, null);
        if (errors.Count > 0)
        {
            throw new InvalidOperationException($"PatronGroups:Default is not a valid group name: {string.Join(" ", errors.Values.SelectMany(v => v))}");
        }
        var normalized = NormalizedName;
        var now = time.GetUtcNow();
        if (await db.PatronGroups.SingleOrDefaultAsync(g => g.NormalizedName == normalized, ct) is { } existing)
        {
            await AnnounceMigratedAsync(db, existing, now, logger, ct);
            return;
        }
        var group = new PatronGroup
        {
            Name = Name,
            NormalizedName = normalized,
            Description = InitialDescription,
            CreatedAt = now,
            UpdatedAt = now,
        };
        db.PatronGroups.Add(group);
        db.AddEvent(new PatronGroupCreated(group.Id, group.Name, group.Version));
        await db.SaveChangesAsync(ct);
        logger.LogInformation("Created the default patron group {Name}", group.Name);
    }

    /// <summary>
    /// The migration made the initial group and put every existing user in it in plain SQL, which
    /// announces nothing. The first start after it does, once: the group (its version moves from 1
    /// to 2, so later starts skip this) and every user still in it with a new version, so the
    /// lending service learns every reader's group by events, as it learns later changes.
    /// </summary>
    private static async Task AnnounceMigratedAsync(UserDbContext db, PatronGroup group, DateTimeOffset now, ILogger logger, CancellationToken ct)
    {
        if (group.Id != InitialId || group.Version != 1)
        {
            return;
        }
        group.Version = 2;
        group.UpdatedAt = now;
        db.AddEvent(new PatronGroupUpdated(group.Id, group.Name, group.Version));
        var users = await db.Users.Where(u => u.PatronGroupId == group.Id).ToListAsync(ct);
        foreach (var user in users)
        {
            user.Version++;
            user.UpdatedAt = now;
            db.AddEvent(UserEvents.Updated(user));
        }
        await db.SaveChangesAsync(ct);
        logger.LogInformation("Announced the default patron group {Name} and the group of {Count} existing users", group.Name, users.Count);
    }
}
