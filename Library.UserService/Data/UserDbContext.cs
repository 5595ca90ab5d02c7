using Library.EventBus;
using Microsoft.EntityFrameworkCore;

namespace Library.UserService.Data;

/// <summary>userdb: readers and staff, their credentials and roles.</summary>
public sealed class UserDbContext(DbContextOptions<UserDbContext> options) : DbContext(options)
{
    public DbSet<User> Users => Set<User>();

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
            user.ToTable(t => t.HasCheckConstraint("ck_users_role", "role IN ('member', 'librarian', 'admin')"));
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
}

internal sealed class UserDesignTimeFactory : Library.ServiceDefaults.NpgsqlDesignTimeFactory<UserDbContext>
{
    protected override UserDbContext Create(DbContextOptions<UserDbContext> options) => new(options);
}
