using Library.BookService.Authors;
using Library.BookService.Books;
using Library.BookService.Categories;
using Library.EventBus;
using Microsoft.EntityFrameworkCore;
using Npgsql.EntityFrameworkCore.PostgreSQL.Metadata;

namespace Library.BookService.Data;

/// <summary>bookdb: the catalog (titles, authors, categories) and each title's stock.</summary>
public sealed class CatalogDbContext(DbContextOptions<CatalogDbContext> options) : DbContext(options)
{
    public DbSet<Book> Books => Set<Book>();
    public DbSet<Author> Authors => Set<Author>();
    public DbSet<Category> Categories => Set<Category>();
    public DbSet<BookLoan> BookLoans => Set<BookLoan>();
    public DbSet<AnonymisedLoan> AnonymisedLoans => Set<AnonymisedLoan>();

    /// <summary>What the current unit of work changed, for the cache (<see cref="Books.CatalogInvalidation"/>); stamped after it commits.</summary>
    internal HashSet<string> PendingInvalidations { get; } = [];

    /// <summary>Names what a statement EF does not track (raw SQL) changes; invalidated after the commit.</summary>
    public void Invalidates(params string[] dependencies) => PendingInvalidations.UnionWith(dependencies);

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.AddEventBusTables();

        modelBuilder.Entity<Book>(book =>
        {
            book.Property(b => b.Isbn).HasMaxLength(13).IsFixedLength();
            book.HasIndex(b => b.Isbn).IsUnique();
            book.Property(b => b.Title).HasMaxLength(500);
            book.Property(b => b.Subtitle).HasMaxLength(500);
            book.Property(b => b.Publisher).HasMaxLength(200);
            book.Property(b => b.Language).HasMaxLength(8);
            // The text limits are the API's (BookRequest, AuthorRequest, CategoryRequest): one number each, stored here too.
            book.Property(b => b.Description).HasMaxLength(BookRules.MaxDescription);
            book.HasIndex(b => new { b.Title, b.Id });
            book.HasIndex(b => b.PublishedYear);
            book.HasIndex(b => b.Language);
            // The "popular" and "newest" orders of GET /api/books, exactly as CatalogQuery.OrderBy
            // writes them: an index in that order lets a filtered page stop after its rows instead
            // of sorting every match (bench/README.md, search at scale).
            book.HasIndex(b => new { b.RecentLoans, b.Title, b.Id }, "ix_books_popular").IsDescending(true, false, false);
            book.HasIndex(b => new { b.PublishedYear, b.CreatedAt, b.Id }, "ix_books_newest").IsDescending(true, true, false)
                .HasNullSortOrder(NullSortOrder.NullsLast, NullSortOrder.NullsFirst, NullSortOrder.NullsLast);
            book.Property(b => b.Version).IsConcurrencyToken();
            book.ToTable(t => t.HasCheckConstraint("ck_books_total_copies", "total_copies >= 0"));
            // books.search_vector, books.search_text (AddCatalogSearch) and books.category_ids
            // (SearchAtScale4) are not in this model: raw SQL in those migrations creates them,
            // refresh_book_search() fills them.
            // An author or category in use cannot be deleted (409): the database refuses too.
            book.HasMany(b => b.Authors).WithMany(a => a.Books).UsingEntity<Dictionary<string, object>>("book_authors",
                r => r.HasOne<Author>().WithMany().HasForeignKey("AuthorsId").OnDelete(DeleteBehavior.Restrict),
                l => l.HasOne<Book>().WithMany().HasForeignKey("BooksId").OnDelete(DeleteBehavior.Cascade));
            // (categories_id, books_id) replaces the index on categories_id alone: a category filter
            // and the facets of a category read the books' IDs from the index only (bench/README.md,
            // search at scale); the primary key (books_id, categories_id) serves the other direction.
            book.HasMany(b => b.Categories).WithMany(c => c.Books).UsingEntity<Dictionary<string, object>>("book_categories",
                r => r.HasOne<Category>().WithMany().HasForeignKey("CategoriesId").OnDelete(DeleteBehavior.Restrict),
                l => l.HasOne<Book>().WithMany().HasForeignKey("BooksId").OnDelete(DeleteBehavior.Cascade),
                j => j.HasIndex("CategoriesId", "BooksId"));
        });

        modelBuilder.Entity<Author>(author =>
        {
            author.Property(a => a.Name).HasMaxLength(AuthorsApi.MaxName);
            author.Property(a => a.Bio).HasMaxLength(AuthorsApi.MaxBio);
            author.HasIndex(a => a.Name);
        });

        modelBuilder.Entity<BookLoan>(loan =>
        {
            loan.HasKey(l => l.LoanId);
            loan.HasIndex(l => new { l.BookId, l.UserId });
            loan.HasIndex(l => new { l.UserId, l.BookId });
            loan.HasIndex(l => l.BorrowedAt);
        });

        modelBuilder.Entity<AnonymisedLoan>(loan => loan.HasKey(l => l.LoanId));

        modelBuilder.Entity<Category>(category =>
        {
            category.Property(c => c.Name).HasMaxLength(CategoriesApi.MaxName);
            category.Property(c => c.Description).HasMaxLength(CategoriesApi.MaxDescription);
            // Category names are unique regardless of case ("Fantasy" and "fantasy" are one).
            category.HasIndex(c => c.NormalizedName).IsUnique();
            category.Property(c => c.NormalizedName).HasMaxLength(100);
        });
    }
}

public sealed class Book
{
    public Guid Id { get; set; } = Guid.CreateVersion7();

    /// <summary>ISBN-13, digits only.</summary>
    public required string Isbn { get; set; }
    public required string Title { get; set; }
    public string? Subtitle { get; set; }
    public string? Description { get; set; }
    public required string Publisher { get; set; }
    public int? PublishedYear { get; set; }
    public string? Language { get; set; }
    public int? PageCount { get; set; }

    /// <summary>Copies the library owns (the catalog's truth; lending decides how many are out).</summary>
    public int TotalCopies { get; set; }

    /// <summary>Read model from the lending service's BookAvailabilityChanged events.</summary>
    public int AvailableCopies { get; set; }
    public DateTimeOffset? NextAvailableAt { get; set; }

    /// <summary>Version of the last availability event applied (they may arrive out of order).</summary>
    public long AvailabilityVersion { get; set; }

    /// <summary>Loans in the last 90 days: the "popular" sort and recommendation tie-breaks.</summary>
    public int RecentLoans { get; set; }

    /// <summary>Grows with every change; the ETag, and the version of the book's events.</summary>
    public long Version { get; set; } = 1;

    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }

    public List<Author> Authors { get; set; } = [];
    public List<Category> Categories { get; set; } = [];
}

/// <summary>A loan as the catalog learns it from the lending service's events: history for recommendations.</summary>
public sealed class BookLoan
{
    public Guid LoanId { get; set; }
    public Guid BookId { get; set; }

    /// <summary>The reader; null once the loan is anonymised (privacy), for good.</summary>
    public Guid? UserId { get; set; }
    public DateTimeOffset BorrowedAt { get; set; }
    public DateTimeOffset? ReturnedAt { get; set; }
}

/// <summary>
/// A loan the lending service has anonymised (LoansAnonymised). Kept apart from book_loans because
/// that event names loans only: a LoanCreated or LoanReturned of the same loan delivered later
/// (queues reorder, retries delay) finds the mark here and records the loan without its reader.
/// Kept until the loan's history row exists without its reader (AnonymisedLoanMarks, hourly).
/// Holds no personal data.
/// </summary>
public sealed class AnonymisedLoan
{
    public Guid LoanId { get; set; }
    public DateTimeOffset AnonymisedAt { get; set; }
}

public sealed class Author
{
    public Guid Id { get; set; } = Guid.CreateVersion7();
    public required string Name { get; set; }
    public string? Bio { get; set; }
    public int? BirthYear { get; set; }
    public List<Book> Books { get; set; } = [];
}

public sealed class Category
{
    public Guid Id { get; set; } = Guid.CreateVersion7();
    public required string Name { get; set; }
    public required string NormalizedName { get; set; }
    public string? Description { get; set; }
    public List<Book> Books { get; set; } = [];
}

internal sealed class CatalogDesignTimeFactory : Library.ServiceDefaults.NpgsqlDesignTimeFactory<CatalogDbContext>
{
    protected override CatalogDbContext Create(DbContextOptions<CatalogDbContext> options) => new(options);
}
