namespace Library.FuzzTests;

/// <summary>Who may call an endpoint (the "who" column of shared/API.md).</summary>
public enum Access
{
    Anyone,
    User,
    Librarian,
    Admin,

    /// <summary>A librarian, or the user the path names (GET /api/users/{id}).</summary>
    SelfOrLibrarian,

    /// <summary>A librarian, or the reader who owns the loan or hold the path names.</summary>
    OwnerOrLibrarian,
}

/// <summary>What the <c>{id}</c> of a path names.</summary>
public enum IdKind
{
    None,
    User,
    Book,
    Author,
    Category,
    Loan,
    Hold,
    Fine,
    Block,
}

/// <summary>What a body field or query parameter holds, so a valid value can be made for it.</summary>
public enum FieldKind
{
    Text,
    Name,
    Email,
    Password,
    Role,
    RefreshToken,
    Isbn,
    Language,
    Year,
    PageCount,
    Copies,
    Days,
    BookId,
    UserId,
    AuthorId,
    CategoryId,
    AuthorIds,
    CategoryIds,
    Page,
    PageSize,
    Limit,
    Bool,
    Sort,
    LoanStatus,
    FineStatus,
    Amount,
}

public sealed record Field(string Name, FieldKind Kind, bool Required = false);

/// <summary>One row of the contract: verb, path, who, body fields, query parameters.</summary>
public sealed record Endpoint(
    string Method, string Path, Access Access, IdKind Id, string Service,
    Field[] Body, Field[] Query)
{
    public bool HasBody => Body.Length > 0;
    public bool Mutates => Method != "GET";
    public string Name => $"{Method} {Path}";
}

/// <summary>
/// Every endpoint of shared/API.md, as data: the fuzz generator walks this table, so an endpoint
/// added to the contract and here is fuzzed with every payload family at once.
/// </summary>
public static class Contract
{
    public const string Users = "userservice";
    public const string Books = "bookservice";
    public const string Lending = "lendingservice";

    private static readonly Field[] None = [];
    private static readonly Field[] Paging = [new("page", FieldKind.Page), new("pageSize", FieldKind.PageSize)];

    private static readonly Field[] CatalogFilters =
    [
        new("search", FieldKind.Text), new("authorId", FieldKind.AuthorId), new("categoryId", FieldKind.CategoryId),
        new("category", FieldKind.Text), new("publisher", FieldKind.Text), new("language", FieldKind.Language),
        new("available", FieldKind.Bool),
    ];

    private static readonly Field[] BookFields =
    [
        new("isbn", FieldKind.Isbn, true), new("title", FieldKind.Name, true), new("subtitle", FieldKind.Text),
        new("description", FieldKind.Text), new("publisher", FieldKind.Name, true), new("publishedYear", FieldKind.Year),
        new("language", FieldKind.Language), new("pageCount", FieldKind.PageCount),
        new("authorIds", FieldKind.AuthorIds), new("categoryIds", FieldKind.CategoryIds),
    ];

    private static readonly Field[] AuthorFields = [new("name", FieldKind.Name, true), new("bio", FieldKind.Text), new("birthYear", FieldKind.Year)];
    private static readonly Field[] CategoryFields = [new("name", FieldKind.Name, true), new("description", FieldKind.Text)];

    public static IReadOnlyList<Endpoint> Endpoints { get; } =
    [
        // Users and auth
        new("POST", "/api/auth/register", Access.Anyone, IdKind.None, Users,
            [new("email", FieldKind.Email, true), new("firstName", FieldKind.Name, true), new("lastName", FieldKind.Name, true), new("password", FieldKind.Password, true)], None),
        new("POST", "/api/auth/login", Access.Anyone, IdKind.None, Users,
            [new("email", FieldKind.Email, true), new("password", FieldKind.Password, true)], None),
        new("POST", "/api/auth/refresh", Access.Anyone, IdKind.None, Users, [new("refreshToken", FieldKind.RefreshToken, true)], None),
        new("POST", "/api/auth/logout", Access.User, IdKind.None, Users, [new("refreshToken", FieldKind.RefreshToken, true)], None),
        new("GET", "/api/users/me", Access.User, IdKind.None, Users, None, None),
        new("POST", "/api/users", Access.Librarian, IdKind.None, Users,
            [new("email", FieldKind.Email, true), new("firstName", FieldKind.Name, true), new("lastName", FieldKind.Name, true), new("password", FieldKind.Password, true), new("role", FieldKind.Role)], None),
        new("GET", "/api/users", Access.Librarian, IdKind.None, Users, None,
            [new("search", FieldKind.Text), new("role", FieldKind.Role), .. Paging]),
        new("GET", "/api/users/{id}", Access.SelfOrLibrarian, IdKind.User, Users, None, None),
        new("PUT", "/api/users/{id}/role", Access.Admin, IdKind.User, Users, [new("role", FieldKind.Role, true)], None),
        new("POST", "/api/users/{id}/deactivate", Access.Admin, IdKind.User, Users, None, None),

        // Catalog
        new("GET", "/api/books", Access.Anyone, IdKind.None, Books, None, [.. CatalogFilters, new("sort", FieldKind.Sort), .. Paging]),
        new("GET", "/api/books/facets", Access.Anyone, IdKind.None, Books, None, CatalogFilters),
        new("GET", "/api/books/{id}", Access.Anyone, IdKind.Book, Books, None, None),
        new("POST", "/api/books", Access.Librarian, IdKind.None, Books, [.. BookFields, new("totalCopies", FieldKind.Copies, true)], None),
        new("PUT", "/api/books/{id}", Access.Librarian, IdKind.Book, Books, BookFields, None),
        new("DELETE", "/api/books/{id}", Access.Librarian, IdKind.Book, Books, None, None),
        new("PUT", "/api/books/{id}/stock", Access.Librarian, IdKind.Book, Books, [new("totalCopies", FieldKind.Copies, true)], None),
        new("GET", "/api/books/{id}/recommendations", Access.Anyone, IdKind.Book, Books, None, [new("limit", FieldKind.Limit)]),
        new("GET", "/api/recommendations", Access.User, IdKind.None, Books, None, [new("limit", FieldKind.Limit)]),
        new("GET", "/api/authors", Access.Anyone, IdKind.None, Books, None, [new("search", FieldKind.Text), .. Paging]),
        new("POST", "/api/authors", Access.Librarian, IdKind.None, Books, AuthorFields, None),
        new("GET", "/api/authors/{id}", Access.Anyone, IdKind.Author, Books, None, None),
        new("PUT", "/api/authors/{id}", Access.Librarian, IdKind.Author, Books, AuthorFields, None),
        new("DELETE", "/api/authors/{id}", Access.Librarian, IdKind.Author, Books, None, None),
        new("GET", "/api/authors/{id}/books", Access.Anyone, IdKind.Author, Books, None, Paging),
        new("GET", "/api/categories", Access.Anyone, IdKind.None, Books, None, Paging),
        new("POST", "/api/categories", Access.Librarian, IdKind.None, Books, CategoryFields, None),
        new("GET", "/api/categories/{id}", Access.Anyone, IdKind.Category, Books, None, None),
        new("PUT", "/api/categories/{id}", Access.Librarian, IdKind.Category, Books, CategoryFields, None),
        new("DELETE", "/api/categories/{id}", Access.Librarian, IdKind.Category, Books, None, None),

        // Lending
        new("POST", "/api/loans", Access.User, IdKind.None, Lending,
            [new("bookId", FieldKind.BookId, true), new("days", FieldKind.Days, true), new("userId", FieldKind.UserId)], None),
        new("POST", "/api/loans/{id}/return", Access.OwnerOrLibrarian, IdKind.Loan, Lending, None, None),
        new("POST", "/api/loans/{id}/renew", Access.OwnerOrLibrarian, IdKind.Loan, Lending, None, None),
        new("GET", "/api/loans", Access.User, IdKind.None, Lending, None,
            [new("userId", FieldKind.UserId), new("bookId", FieldKind.BookId), new("status", FieldKind.LoanStatus), .. Paging]),
        new("GET", "/api/loans/{id}", Access.OwnerOrLibrarian, IdKind.Loan, Lending, None, None),
        new("GET", "/api/borrowers", Access.Librarian, IdKind.None, Lending, None, Paging),
        new("GET", "/api/unavailable-books", Access.Librarian, IdKind.None, Lending, None, Paging),
        new("POST", "/api/holds", Access.User, IdKind.None, Lending, [new("bookId", FieldKind.BookId, true), new("userId", FieldKind.UserId)], None),
        new("GET", "/api/holds", Access.User, IdKind.None, Lending, None, [new("userId", FieldKind.UserId), .. Paging]),
        new("DELETE", "/api/holds/{id}", Access.OwnerOrLibrarian, IdKind.Hold, Lending, None, None),
        // Fines and the reader's account (the writes, which need a fine or a block in the world, are FinesTests').
        new("GET", "/api/fines", Access.User, IdKind.None, Lending, None,
            [new("userId", FieldKind.UserId), new("status", FieldKind.FineStatus), .. Paging]),
        new("GET", "/api/users/{id}/account", Access.SelfOrLibrarian, IdKind.User, Lending, None, None),
        new("POST", "/api/fines/{id}/payments", Access.Librarian, IdKind.Fine, Lending, [new("amount", FieldKind.Amount, true)], None),
        new("POST", "/api/fines/{id}/waive", Access.Librarian, IdKind.Fine, Lending, [new("reason", FieldKind.Text, true)], None),
        new("POST", "/api/users/{id}/blocks", Access.Librarian, IdKind.User, Lending,
            [new("reason", FieldKind.Text, true), new("borrowing", FieldKind.Bool), new("renewals", FieldKind.Bool), new("holds", FieldKind.Bool)], None),
        new("DELETE", "/api/blocks/{id}", Access.Librarian, IdKind.Block, Lending, None, None),
    ];
}
