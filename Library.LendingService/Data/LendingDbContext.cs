using Library.EventBus;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Data;

/// <summary>
/// lendingdb: loans and holds, the copies of every title (the one authority on availability),
/// the replicas of titles and readers a borrow checks without calling anyone, and the answers
/// kept for Idempotency-Key retries.
/// </summary>
public sealed class LendingDbContext(DbContextOptions<LendingDbContext> options) : DbContext(options)
{
    public DbSet<Title> Titles => Set<Title>();
    public DbSet<Reader> Readers => Set<Reader>();
    public DbSet<Loan> Loans => Set<Loan>();
    public DbSet<Hold> Holds => Set<Hold>();
    public DbSet<IdempotentRequest> IdempotentRequests => Set<IdempotentRequest>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.AddEventBusTables();

        modelBuilder.Entity<Title>(title =>
        {
            title.Property(t => t.Id).ValueGeneratedNever();
            title.Property(t => t.Name).HasMaxLength(500);
            // The invariants every borrow, return and hold keeps, checked by PostgreSQL too.
            title.ToTable(t =>
            {
                t.HasCheckConstraint("ck_titles_on_loan", "on_loan >= 0");
                t.HasCheckConstraint("ck_titles_held", "held >= 0");
                t.HasCheckConstraint("ck_titles_total", "total_copies >= 0");
            });
        });

        modelBuilder.Entity<Reader>(reader =>
        {
            reader.Property(r => r.Id).ValueGeneratedNever();
            reader.Property(r => r.FirstName).HasMaxLength(100);
            reader.Property(r => r.LastName).HasMaxLength(100);
            reader.Property(r => r.Email).HasMaxLength(254);
        });

        modelBuilder.Entity<Loan>(loan =>
        {
            loan.HasIndex(l => new { l.UserId, l.ReturnedAt });
            loan.HasIndex(l => new { l.BookId, l.ReturnedAt, l.DueAt });
            loan.HasIndex(l => l.DueAt).HasFilter("returned_at IS NULL AND overdue_notified_at IS NULL");
            loan.HasOne<Title>().WithMany().HasForeignKey(l => l.BookId).OnDelete(DeleteBehavior.Restrict);
        });

        modelBuilder.Entity<Hold>(hold =>
        {
            hold.Property(h => h.Status).HasMaxLength(16);
            hold.Property(h => h.Sequence).UseIdentityAlwaysColumn();
            hold.HasIndex(h => new { h.BookId, h.Status, h.Sequence });
            hold.HasIndex(h => h.UserId);
            // One open hold per reader and title, even under concurrent requests.
            hold.HasIndex(h => new { h.BookId, h.UserId }).IsUnique().HasFilter("status IN ('waiting', 'ready')");
            hold.HasIndex(h => h.ReadyUntil).HasFilter("status = 'ready'");
            hold.HasOne<Title>().WithMany().HasForeignKey(h => h.BookId).OnDelete(DeleteBehavior.Restrict);
        });

        modelBuilder.Entity<IdempotentRequest>(request =>
        {
            request.HasKey(r => new { r.UserId, r.Key });
            request.Property(r => r.Key).HasMaxLength(100);
            request.Property(r => r.Operation).HasMaxLength(50);
            request.Property(r => r.Response).HasColumnType("jsonb");
            request.HasIndex(r => r.CreatedAt);
        });
    }
}

/// <summary>
/// A title's copies as lending counts them. On the shelf = total - on loan - held (set aside for
/// a ready hold); lowering the stock below that shows as none on the shelf.
/// </summary>
public sealed class Title
{
    public Guid Id { get; set; }
    public required string Name { get; set; }
    public int TotalCopies { get; set; }
    public int OnLoan { get; set; }
    public int Held { get; set; }

    /// <summary>Grows with every change of availability: the version of BookAvailabilityChanged.</summary>
    public long AvailabilityVersion { get; set; }

    /// <summary>The catalog's version of this title last applied (its events may arrive out of order).</summary>
    public long CatalogVersion { get; set; }
    public bool Deleted { get; set; }
}

public sealed class Reader
{
    public Guid Id { get; set; }
    public required string Email { get; set; }
    public required string FirstName { get; set; }
    public required string LastName { get; set; }
    public bool Active { get; set; } = true;
    public long Version { get; set; }
}

public sealed class Loan
{
    public Guid Id { get; set; } = Guid.CreateVersion7();
    public Guid BookId { get; set; }
    public Guid UserId { get; set; }
    public int Days { get; set; }
    public DateTimeOffset BorrowedAt { get; set; }
    public DateTimeOffset DueAt { get; set; }
    public DateTimeOffset? ReturnedAt { get; set; }
    public int Renewals { get; set; }

    /// <summary>When LoanOverdue was published (once per loan).</summary>
    public DateTimeOffset? OverdueNotifiedAt { get; set; }
}

public static class HoldStatus
{
    public const string Waiting = "waiting";
    public const string Ready = "ready";
    public const string Fulfilled = "fulfilled";
    public const string Cancelled = "cancelled";
    public const string Expired = "expired";
}

/// <summary>A reader waiting for a title; first come, first served.</summary>
public sealed class Hold
{
    public Guid Id { get; set; } = Guid.CreateVersion7();
    public Guid BookId { get; set; }
    public Guid UserId { get; set; }
    public required string Status { get; set; }

    /// <summary>Queue order: first come, first served, even within one clock tick.</summary>
    public long Sequence { get; set; }
    public DateTimeOffset PlacedAt { get; set; }
    public DateTimeOffset? ReadyUntil { get; set; }
    public DateTimeOffset? ClosedAt { get; set; }
}

/// <summary>The first answer to a request that carried an Idempotency-Key (kept 24 hours).</summary>
public sealed class IdempotentRequest
{
    public Guid UserId { get; set; }
    public required string Key { get; set; }
    public required string Operation { get; set; }
    public int StatusCode { get; set; }
    public string? Response { get; set; }
    public string? Location { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
}

internal sealed class LendingDesignTimeFactory : Library.ServiceDefaults.NpgsqlDesignTimeFactory<LendingDbContext>
{
    protected override LendingDbContext Create(DbContextOptions<LendingDbContext> options) => new(options);
}
