using Library.EventBus;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Data;

/// <summary>
/// lendingdb: loans, and the lending service's replicas of titles and readers (kept from the
/// catalog's and the user service's events) that a borrow checks without calling anyone.
/// </summary>
public sealed class LendingDbContext(DbContextOptions<LendingDbContext> options) : DbContext(options)
{
    public DbSet<Title> Titles => Set<Title>();
    public DbSet<Reader> Readers => Set<Reader>();
    public DbSet<Loan> Loans => Set<Loan>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.AddEventBusTables();

        modelBuilder.Entity<Title>(title =>
        {
            title.Property(t => t.Id).ValueGeneratedNever();
            title.Property(t => t.Name).HasMaxLength(500);
            title.ToTable(t => t.HasCheckConstraint("ck_titles_on_loan", "on_loan >= 0"));
        });

        modelBuilder.Entity<Reader>(reader =>
        {
            reader.Property(r => r.Id).ValueGeneratedNever();
            reader.Property(r => r.Name).HasMaxLength(201);
            reader.Property(r => r.Email).HasMaxLength(254);
        });

        modelBuilder.Entity<Loan>(loan =>
        {
            loan.HasIndex(l => new { l.UserId, l.ReturnedAt });
            loan.HasIndex(l => new { l.BookId, l.ReturnedAt });
            loan.HasOne<Title>().WithMany().HasForeignKey(l => l.BookId).OnDelete(DeleteBehavior.Restrict);
        });
    }
}

/// <summary>A title as lending sees it: how many copies exist and how many are out.</summary>
public sealed class Title
{
    public Guid Id { get; set; }
    public required string Name { get; set; }
    public int TotalCopies { get; set; }
    public int OnLoan { get; set; }
}

public sealed class Reader
{
    public Guid Id { get; set; }
    public required string Name { get; set; }
    public required string Email { get; set; }
    public bool Active { get; set; } = true;
}

public sealed class Loan
{
    public Guid Id { get; set; } = Guid.CreateVersion7();
    public Guid BookId { get; set; }
    public Guid UserId { get; set; }
    public DateTimeOffset BorrowedAt { get; set; }
    public DateTimeOffset DueAt { get; set; }
    public DateTimeOffset? ReturnedAt { get; set; }
    public int Renewals { get; set; }
}

internal sealed class LendingDesignTimeFactory : Library.ServiceDefaults.NpgsqlDesignTimeFactory<LendingDbContext>
{
    protected override LendingDbContext Create(DbContextOptions<LendingDbContext> options) => new(options);
}
