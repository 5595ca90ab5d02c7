using System.Linq.Expressions;
using Library.BookService.Data;

namespace Library.BookService.Books;

public sealed record NamedRef(Guid Id, string Name);

/// <summary>A book as the API shows it.</summary>
public sealed record BookResponse(
    Guid Id,
    string Isbn,
    string Title,
    string? Subtitle,
    string? Description,
    string Publisher,
    int? PublishedYear,
    string? Language,
    int? PageCount,
    IReadOnlyList<NamedRef> Authors,
    IReadOnlyList<NamedRef> Categories,
    int TotalCopies,
    int AvailableCopies,
    DateTimeOffset? NextAvailableAt,
    long Version)
{
    public static readonly Expression<Func<Book, BookResponse>> Projection = b => new BookResponse(
        b.Id, b.Isbn, b.Title, b.Subtitle, b.Description, b.Publisher, b.PublishedYear, b.Language, b.PageCount,
        b.Authors.OrderBy(a => a.Name).Select(a => new NamedRef(a.Id, a.Name)).ToList(),
        b.Categories.OrderBy(c => c.Name).Select(c => new NamedRef(c.Id, c.Name)).ToList(),
        b.TotalCopies,
        // Copies on loan can exceed a lowered stock: lending shows that as none on the shelf.
        b.AvailableCopies < 0 ? 0 : b.AvailableCopies,
        b.NextAvailableAt,
        b.Version);
}
