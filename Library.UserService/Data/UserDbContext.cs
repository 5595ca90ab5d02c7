using Library.EventBus;
using Microsoft.EntityFrameworkCore;

namespace Library.UserService.Data;

/// <summary>userdb: readers and staff, their credentials and roles.</summary>
public sealed class UserDbContext(DbContextOptions<UserDbContext> options) : DbContext(options)
{
    public DbSet<User> Users => Set<User>();
    public DbSet<RefreshToken> RefreshTokens => Set<RefreshToken>();
    public DbSet<SigningKey> SigningKeys => Set<SigningKey>();
    public DbSet<PatronGroup> PatronGroups => Set<PatronGroup>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.AddEventBusTables();

        modelBuilder.Entity<User>(user =>
        {
            user.Property(u => u.Email).HasMaxLength(254);
            user.Property(u => u.NormalizedEmail).HasMaxLength(254);
            user.HasIndex(u => u.NormalizedEmail).IsUnique();
            user.Property(u => u.FirstName).HasMaxLength(100);
            user.Property(u => u.LastName).HasMaxLength(100);
            user.Property(u => u.Role).HasMaxLength(20);
            // Existing readers keep their history (the default); the sentinel is the CLR
            // initial value too, so an explicit false is written rather than taken for "unset".
            user.Property(u => u.KeepLoanHistory).HasDefaultValue(true).HasSentinel(true);
            user.ToTable(t => t.HasCheckConstraint("ck_users_role", "role IN ('member', 'librarian', 'admin')"));
            user.HasIndex(u => new { u.LastName, u.FirstName, u.Id });
            // Two changes of one user at once would both announce the same next version and
            // consumers (which keep the newest) would keep one of them: each write checks it.
            user.Property(u => u.Version).IsConcurrencyToken();
            // A group any user is in cannot be deleted (also under a race with an assignment).
            user.HasOne<PatronGroup>().WithMany().HasForeignKey(u => u.PatronGroupId).OnDelete(DeleteBehavior.Restrict);
        });

        modelBuilder.Entity<PatronGroup>(group =>
        {
            group.Property(g => g.Name).HasMaxLength(PatronGroup.MaxNameLength);
            group.Property(g => g.NormalizedName).HasMaxLength(PatronGroup.MaxNameLength);
            group.HasIndex(g => g.NormalizedName).IsUnique();
            group.Property(g => g.Description).HasMaxLength(PatronGroup.MaxDescriptionLength);
            group.Property(g => g.Version).IsConcurrencyToken();
        });

        modelBuilder.Entity<RefreshToken>(token =>
        {
            token.Property(t => t.TokenHash).HasMaxLength(64);
            token.HasIndex(t => t.TokenHash).IsUnique();
            token.HasIndex(t => t.FamilyId);
            token.HasIndex(t => t.UserId);
            token.HasOne<User>().WithMany().HasForeignKey(t => t.UserId).OnDelete(DeleteBehavior.Cascade);
        });

        modelBuilder.Entity<SigningKey>(key =>
        {
            key.Property(k => k.Id).HasMaxLength(64);
            key.Property(k => k.Algorithm).HasMaxLength(16);
        });
    }
}

public sealed class User
{
    public Guid Id { get; set; } = Guid.CreateVersion7();
    public required string Email { get; set; }

    /// <summary>Trimmed, lower-case: what uniqueness and log-in compare.</summary>
    public required string NormalizedEmail { get; set; }
    public required string FirstName { get; set; }
    public required string LastName { get; set; }
    public required string Role { get; set; }
    public bool Active { get; set; } = true;
    public required string PasswordHash { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }

    /// <summary>Grows with every change the events announce (consumers keep the newest).</summary>
    public long Version { get; set; } = 1;

    /// <summary>The reader's patron group (new readers get the configured default).</summary>
    public Guid PatronGroupId { get; set; }

    /// <summary>
    /// The reader's privacy choice: false asks every service to forget them on their returned
    /// loans (the lending service anonymises them; the user service only announces the choice).
    /// </summary>
    public bool KeepLoanHistory { get; set; } = true;

    /// <summary>Consecutive failed log-ins; reset by a success or a lockout.</summary>
    public int FailedLogins { get; set; }
    public DateTimeOffset? LockedUntil { get; set; }
}

/// <summary>
/// A kind of reader (patron, student, staff...) that circulation rules are written for. The name
/// is unique whatever its case; every user is in exactly one group.
/// </summary>
public sealed class PatronGroup
{
    public const int MaxNameLength = 50;
    public const int MaxDescriptionLength = 500;

    public Guid Id { get; set; } = Guid.CreateVersion7();
    public required string Name { get; set; }

    /// <summary>Trimmed, lower-case: what uniqueness compares.</summary>
    public required string NormalizedName { get; set; }
    public string? Description { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }

    /// <summary>Grows with every change the events announce.</summary>
    public long Version { get; set; } = 1;

    public static string Normalize(string name) => name.Trim().ToLowerInvariant();
}

/// <summary>
/// A refresh token, stored only as its SHA-256. Single use: a refresh spends it and issues the
/// next of the same family; presenting a spent one again revokes the whole family.
/// </summary>
public sealed class RefreshToken
{
    public Guid Id { get; set; } = Guid.CreateVersion7();
    public Guid UserId { get; set; }

    /// <summary>Every token descended from one log-in.</summary>
    public Guid FamilyId { get; set; }
    public required string TokenHash { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset ExpiresAt { get; set; }
    public DateTimeOffset? UsedAt { get; set; }
    public DateTimeOffset? RevokedAt { get; set; }
}

/// <summary>
/// A token-signing key pair, kept here so every replica signs with the same key. The newest
/// signs; older ones stay published until tokens they signed have expired.
/// </summary>
public sealed class SigningKey
{
    /// <summary>The <c>kid</c> of the JWT header and the JWKS.</summary>
    public required string Id { get; set; }
    public required string Algorithm { get; set; }

    /// <summary>The private key, PKCS#8.</summary>
    public required byte[] PrivateKey { get; set; }
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>When a newer key took over signing.</summary>
    public DateTimeOffset? RetiredAt { get; set; }
}

internal sealed class UserDesignTimeFactory : Library.ServiceDefaults.NpgsqlDesignTimeFactory<UserDbContext>
{
    protected override UserDbContext Create(DbContextOptions<UserDbContext> options) => new(options);
}
