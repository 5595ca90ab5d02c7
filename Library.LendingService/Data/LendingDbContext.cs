using Library.EventBus;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;

namespace Library.LendingService.Data;

/// <summary>
/// lendingdb: the copies of every title (the one authority on availability), loans and holds,
/// the circulation rules and the calendar, the readers' fines and manual blocks, the replicas of titles, readers and patron groups a
/// borrow checks without calling anyone, and the answers kept for Idempotency-Key retries.
/// </summary>
public sealed class LendingDbContext(DbContextOptions<LendingDbContext> options) : DbContext(options)
{
    public DbSet<Title> Titles => Set<Title>();
    public DbSet<Reader> Readers => Set<Reader>();
    public DbSet<Loan> Loans => Set<Loan>();
    public DbSet<Hold> Holds => Set<Hold>();
    public DbSet<Copy> Copies => Set<Copy>();
    public DbSet<CirculationSetting> CirculationSettings => Set<CirculationSetting>();
    public DbSet<PatronGroup> PatronGroups => Set<PatronGroup>();
    public DbSet<IdempotentRequest> IdempotentRequests => Set<IdempotentRequest>();
    public DbSet<Fine> Fines => Set<Fine>();
    public DbSet<FineTransaction> FineTransactions => Set<FineTransaction>();
    public DbSet<Block> Blocks => Set<Block>();
    public DbSet<Library.LendingService.Notices.Notice> Notices => Set<Library.LendingService.Notices.Notice>();
    public DbSet<LoanRenewal> LoanRenewals => Set<LoanRenewal>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.AddEventBusTables();
        modelBuilder.ApplyConfiguration(new Library.LendingService.Notices.NoticeConfiguration());

        modelBuilder.Entity<Title>(title =>
        {
            title.Property(t => t.Id).ValueGeneratedNever();
            title.Property(t => t.Name).HasMaxLength(500);
            // Kept by the copies' trigger alone: EF reads them and never writes them.
            foreach (var counted in new[] { nameof(Title.LoanableCopies), nameof(Title.CopiesOnShelf) })
            {
                var property = title.Property(counted).HasDefaultValue(0).Metadata;
                property.SetBeforeSaveBehavior(PropertySaveBehavior.Ignore);
                property.SetAfterSaveBehavior(PropertySaveBehavior.Ignore);
            }
        });

        modelBuilder.Entity<Copy>(copy =>
        {
            copy.Property(c => c.Id).ValueGeneratedNever();
            copy.Property(c => c.Barcode).HasMaxLength(Library.LendingService.Validation.InputLimits.BarcodeLength);
            copy.Property(c => c.CallNumber).HasMaxLength(Library.LendingService.Validation.InputLimits.CopyTextLength);
            copy.Property(c => c.Location).HasMaxLength(Library.LendingService.Validation.InputLimits.CopyTextLength);
            copy.Property(c => c.LoanType).HasMaxLength(Library.LendingService.Validation.InputLimits.LoanTypeLength);
            copy.Property(c => c.Status).HasMaxLength(16);
            // Unique whatever the case: the unique index on lower(barcode) is made by the migration.
            copy.HasIndex(c => new { c.BookId, c.Status });
            // The shelf in the order a borrow takes from it (Shelf.TakeFromShelfAsync): the first
            // unlocked copy is the first entry read, not the top of a sort of every copy on the shelf.
            copy.HasIndex(c => new { c.BookId, c.LoanType, c.CreatedAt, c.Id }).HasFilter("status = 'available'").HasDatabaseName("ix_copies_on_shelf");
            copy.HasOne<Title>().WithMany().HasForeignKey(c => c.BookId).OnDelete(DeleteBehavior.Restrict);
            copy.ToTable(t =>
            {
                t.HasCheckConstraint("ck_copies_status", $"status IN ({string.Join(", ", Library.LendingService.Copies.CopyStatus.All.Select(x => $"'{x}'"))})");
                t.HasCheckConstraint("ck_copies_loan_type", $"loan_type IN ({string.Join(", ", Rules.LoanTypes.All.Select(x => $"'{x.Name}'"))})");
                t.HasCheckConstraint("ck_copies_barcode", "barcode ~ '^[A-Za-z0-9-]{1,32}$'");
            });
        });

        modelBuilder.Entity<CirculationSetting>(setting =>
        {
            setting.HasKey(s => new { s.Kind, s.Version });
            setting.Property(s => s.Kind).HasMaxLength(16);
            setting.Property(s => s.Document).HasColumnType("jsonb");
        });

        modelBuilder.Entity<PatronGroup>(group =>
        {
            group.Property(g => g.Id).ValueGeneratedNever();
            group.Property(g => g.Name).HasMaxLength(100);
        });

        modelBuilder.Entity<Reader>(reader =>
        {
            reader.Property(r => r.Id).ValueGeneratedNever();
            reader.Property(r => r.FirstName).HasMaxLength(100);
            reader.Property(r => r.LastName).HasMaxLength(100);
            reader.Property(r => r.Email).HasMaxLength(254);
            // Readers known before the choice existed keep their history (the events' default too).
            reader.Property(r => r.KeepLoanHistory).HasDefaultValue(true).HasSentinel(true);
        });

        modelBuilder.Entity<Loan>(loan =>
        {
            loan.HasIndex(l => new { l.UserId, l.ReturnedAt });
            loan.HasIndex(l => new { l.BookId, l.ReturnedAt, l.DueAt });
            loan.HasIndex(l => l.DueAt).HasFilter("returned_at IS NULL AND overdue_notified_at IS NULL");
            loan.HasOne<Title>().WithMany().HasForeignKey(l => l.BookId).OnDelete(DeleteBehavior.Restrict);
            loan.HasOne<Copy>().WithMany().HasForeignKey(l => l.CopyId).OnDelete(DeleteBehavior.Restrict);
            // No copy is ever lent twice: one open loan per copy, kept by PostgreSQL.
            loan.HasIndex(l => l.CopyId).IsUnique().HasFilter("returned_at IS NULL").HasDatabaseName("ix_loans_copy_id_open");
            // The anonymiser's queue: returned loans still naming their reader, oldest first.
            loan.HasIndex(l => l.ReturnedAt, "to_anonymise").HasFilter("returned_at IS NOT NULL AND anonymised_at IS NULL").HasDatabaseName("ix_loans_to_anonymise");
            // Reports: loans and returns per day, and the outbox scrub of recently anonymised loans.
            loan.HasIndex(l => l.BorrowedAt);
            loan.HasIndex(l => l.ReturnedAt, "returned").HasDatabaseName("ix_loans_returned_at");
            loan.HasIndex(l => l.DueAt, "due").HasDatabaseName("ix_loans_due_at_all");
            loan.HasIndex(l => l.AnonymisedAt).HasFilter("anonymised_at IS NOT NULL");
            // A returned loan may lose its reader (privacy), an open one never.
            loan.ToTable(t => t.HasCheckConstraint("ck_loans_user", "user_id IS NOT NULL OR (returned_at IS NOT NULL AND anonymised_at IS NOT NULL)"));
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
            hold.HasIndex(h => h.PlacedAt);
            hold.HasIndex(h => h.ClosedAt).HasFilter("status = 'fulfilled'");
            // Only a fulfilled hold may lose its reader, with the loan it became.
            hold.ToTable(t => t.HasCheckConstraint("ck_holds_user", "user_id IS NOT NULL OR status = 'fulfilled'"));
            hold.HasOne<Title>().WithMany().HasForeignKey(h => h.BookId).OnDelete(DeleteBehavior.Restrict);
            hold.HasOne<Copy>().WithMany().HasForeignKey(h => h.CopyId).OnDelete(DeleteBehavior.Restrict);
            // A copy set aside is set aside for one ready hold.
            hold.HasIndex(h => h.CopyId).IsUnique().HasFilter("status = 'ready'").HasDatabaseName("ix_holds_copy_id_ready");
        });

        modelBuilder.Entity<Fine>(fine =>
        {
            fine.Property(f => f.Title).HasMaxLength(500);
            fine.Property(f => f.Kind).HasMaxLength(16);
            fine.Property(f => f.Status).HasMaxLength(16);
            // The balance query (open fines of a reader) and the reader's list.
            fine.HasIndex(f => new { f.UserId, f.Status });
            fine.HasIndex(f => f.LoanId);
            fine.HasIndex(f => f.CreatedAt);
            fine.HasOne<Loan>().WithMany().HasForeignKey(f => f.LoanId).OnDelete(DeleteBehavior.Restrict);
            fine.ToTable(t =>
            {
                t.HasCheckConstraint("ck_fines_kind", $"kind IN ({string.Join(", ", Library.LendingService.Fines.FineKinds.All.Select(x => $"'{x}'"))})");
                t.HasCheckConstraint("ck_fines_status", $"status IN ({string.Join(", ", Library.LendingService.Fines.FineStatus.All.Select(x => $"'{x}'"))})");
                // Never paid beyond the amount, whatever two desks do at once.
                t.HasCheckConstraint("ck_fines_amounts", "amount > 0 AND paid_amount >= 0 AND paid_amount <= amount");
            });
        });

        modelBuilder.Entity<FineTransaction>(transaction =>
        {
            transaction.Property(t => t.Kind).HasMaxLength(16);
            transaction.Property(t => t.Reason).HasMaxLength(Library.LendingService.Fines.FinesApi.MaxReasonLength);
            transaction.HasIndex(t => t.FineId);
            transaction.HasIndex(t => t.CreatedAt);
            transaction.HasOne<Fine>().WithMany().HasForeignKey(t => t.FineId).OnDelete(DeleteBehavior.Cascade);
            transaction.ToTable(t =>
            {
                t.HasCheckConstraint("ck_fine_transactions_kind", "kind IN ('payment', 'waiver')");
                t.HasCheckConstraint("ck_fine_transactions_amount", "amount > 0");
            });
        });

        modelBuilder.Entity<Block>(block =>
        {
            block.Property(b => b.Reason).HasMaxLength(Library.LendingService.Fines.FinesApi.MaxReasonLength);
            block.HasIndex(b => b.UserId);
            block.ToTable(t => t.HasCheckConstraint("ck_blocks_stops_something", "borrowing OR renewals OR holds"));
        });

        modelBuilder.Entity<IdempotentRequest>(request =>
        {
            request.HasKey(r => new { r.UserId, r.Key });
            request.Property(r => r.Key).HasMaxLength(Library.LendingService.Loans.Idempotency.MaxKeyLength);
            request.Property(r => r.Operation).HasMaxLength(50);
            request.Property(r => r.Response).HasColumnType("jsonb");
            request.HasIndex(r => r.CreatedAt);
        });

        modelBuilder.Entity<LoanRenewal>(renewal =>
        {
            renewal.Property(r => r.Id).UseIdentityAlwaysColumn();
            renewal.HasIndex(r => r.RenewedAt);
            renewal.HasOne<Loan>().WithMany().HasForeignKey(r => r.LoanId).OnDelete(DeleteBehavior.Cascade);
        });
    }
}

/// <summary>A title as lending knows it (from the catalog's events); its copies are <see cref="Copy"/> rows.</summary>
public sealed class Title
{
    public Guid Id { get; set; }
    public required string Name { get; set; }

    /// <summary>Grows with every change of availability: the version of BookAvailabilityChanged.</summary>
    public long AvailabilityVersion { get; set; }

    /// <summary>The catalog's version of this title last applied (its events may arrive out of order).</summary>
    public long CatalogVersion { get; set; }
    public bool Deleted { get; set; }

    /// <summary>
    /// The loanable copies the library has (<see cref="Library.LendingService.Copies.ShelfCounts.Total"/>),
    /// kept by the database: a trigger on <c>copies</c> adds every statement's change in its transaction
    /// (see <see cref="Library.LendingService.Copies.Shelf.CountsTriggerSql"/>). Never written by the code.
    /// </summary>
    public int LoanableCopies { get; private set; }

    /// <summary>The loanable copies on the shelf, kept like <see cref="LoanableCopies"/>.</summary>
    public int CopiesOnShelf { get; private set; }
}

public sealed class Reader
{
    public Guid Id { get; set; }
    public required string Email { get; set; }
    public required string FirstName { get; set; }
    public required string LastName { get; set; }
    public bool Active { get; set; } = true;
    public long Version { get; set; }

    /// <summary>
    /// The reader's choice (user service, <c>PUT /api/users/me/privacy</c>): false anonymises their
    /// returned loans at once and each later loan at its return.
    /// </summary>
    public bool KeepLoanHistory { get; set; } = true;

    /// <summary>The reader's patron group (the user service's); null until its event says.</summary>
    public Guid? PatronGroupId { get; set; }
}

/// <summary>A physical copy of a title, lent by its barcode. Its status changes only along <see cref="Library.LendingService.Copies.CopyStatus.Transitions"/> (a trigger refuses the rest).</summary>
public sealed class Copy
{
    public Guid Id { get; set; } = Guid.CreateVersion7();
    public Guid BookId { get; set; }
    public required string Barcode { get; set; }
    public string? CallNumber { get; set; }
    public string? Location { get; set; }
    public string LoanType { get; set; } = Rules.LoanTypes.Standard;
    public string Status { get; set; } = Library.LendingService.Copies.CopyStatus.Available;

    /// <summary>Surplus after the stock was lowered while it was out: withdrawn when it comes back.</summary>
    public bool WithdrawOnCheckIn { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
}

/// <summary>A version of the circulation rules or of the calendar (kinds <c>rules</c>, <c>calendar</c>); the newest applies.</summary>
public sealed class CirculationSetting
{
    public required string Kind { get; set; }
    public long Version { get; set; }
    public required string Document { get; set; }
    public DateTimeOffset ChangedAt { get; set; }
    public Guid? ChangedBy { get; set; }
}

/// <summary>A patron group as lending knows it (from the user service's events), for the rules.</summary>
public sealed class PatronGroup
{
    public Guid Id { get; set; }
    public required string Name { get; set; }
    public long Version { get; set; }
    public bool Deleted { get; set; }
}

public sealed class Loan
{
    public Guid Id { get; set; } = Guid.CreateVersion7();
    public Guid BookId { get; set; }

    /// <summary>The reader; null once the returned loan was anonymised (<see cref="AnonymisedAt"/>).</summary>
    public Guid? UserId { get; set; }
    public int Days { get; set; }
    public DateTimeOffset BorrowedAt { get; set; }
    public DateTimeOffset DueAt { get; set; }
    public DateTimeOffset? ReturnedAt { get; set; }
    public int Renewals { get; set; }

    /// <summary>The copy lent (null only for loans returned before copies existed).</summary>
    public Guid? CopyId { get; set; }

    /// <summary>The rules' version and the index of the rule the loan was made under (null: before rules existed).</summary>
    public long? RuleVersion { get; set; }
    public int? RuleIndex { get; set; }

    /// <summary>When LoanOverdue was published (once per loan).</summary>
    public DateTimeOffset? OverdueNotifiedAt { get; set; }

    /// <summary>When the returned loan lost its reader (privacy); statistics still count it.</summary>
    public DateTimeOffset? AnonymisedAt { get; set; }
}

/// <summary>
/// One renewal of a loan, when it happened: the loan keeps only a count, and the circulation
/// report counts renewals per day. No reader here: nothing to anonymise.
/// </summary>
public sealed class LoanRenewal
{
    public long Id { get; set; }
    public Guid LoanId { get; set; }
    public Guid BookId { get; set; }
    public DateTimeOffset RenewedAt { get; set; }
    public DateTimeOffset DueAt { get; set; }
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

    /// <summary>The reader; null once the loan this fulfilled hold became was anonymised.</summary>
    public Guid? UserId { get; set; }
    public required string Status { get; set; }

    /// <summary>Queue order: first come, first served, even within one clock tick.</summary>
    public long Sequence { get; set; }
    public DateTimeOffset PlacedAt { get; set; }
    public DateTimeOffset? ReadyUntil { get; set; }
    public DateTimeOffset? ClosedAt { get; set; }

    /// <summary>The copy set aside while the hold is ready.</summary>
    public Guid? CopyId { get; set; }
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

/// <summary>
/// Money a reader owes: an overdue fine (charged when the copy comes back) or a lost-item fee.
/// Amounts in minor units of <c>Circulation:Currency</c>; <see cref="Title"/> is kept as it was
/// when charged, so the account reads the same after the catalog renames or deletes the title.
/// <see cref="UserId"/> is null once the fine is closed and its loan anonymised (privacy: a paid or
/// waived fine needs no debtor, and with the title it would tell who read what); an open fine keeps
/// its reader, the debt is theirs.
/// </summary>
public sealed class Fine
{
    public Guid Id { get; set; } = Guid.CreateVersion7();
    public Guid? UserId { get; set; }
    public Guid? LoanId { get; set; }
    public Guid BookId { get; set; }
    public required string Title { get; set; }
    public required string Kind { get; set; }
    public long Amount { get; set; }
    public long PaidAmount { get; set; }
    public string Status { get; set; } = Library.LendingService.Fines.FineStatus.Open;
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? ClosedAt { get; set; }
}

/// <summary>A payment or waiver of a fine: how much, by which librarian, when and (waivers) why.</summary>
public sealed class FineTransaction
{
    public Guid Id { get; set; } = Guid.CreateVersion7();
    public Guid FineId { get; set; }
    public required string Kind { get; set; }
    public long Amount { get; set; }
    public Guid CreatedBy { get; set; }
    public string? Reason { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
}

/// <summary>A librarian's block on a reader, until <see cref="ExpiresAt"/> (or until deleted).</summary>
public sealed class Block
{
    public Guid Id { get; set; } = Guid.CreateVersion7();
    public Guid UserId { get; set; }
    public required string Reason { get; set; }
    public DateTimeOffset? ExpiresAt { get; set; }
    public bool Borrowing { get; set; }
    public bool Renewals { get; set; }
    public bool Holds { get; set; }
    public Guid CreatedBy { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
}

internal sealed class LendingDesignTimeFactory : Library.ServiceDefaults.NpgsqlDesignTimeFactory<LendingDbContext>
{
    protected override LendingDbContext Create(DbContextOptions<LendingDbContext> options) => new(options);
}
