namespace Library.Gateway.Routing;

/// <summary>
/// Which service answers which public path: the table of the API contract (shared/API.md). Only
/// these prefixes are routed; service-internal endpoints (gRPC, service tokens, health, OpenAPI)
/// are never reachable through the gateway. Each entry also matches its sub-paths.
/// </summary>
public static class ApiRoutes
{
    public const string UserService = "userservice";
    public const string BookService = "bookservice";
    public const string LendingService = "lendingservice";

    public static IReadOnlyList<string> Services { get; } = [UserService, BookService, LendingService];

    public static IReadOnlyList<(string Prefix, string Service)> Table { get; } =
    [
        ("/api/auth", UserService),
        ("/api/users", UserService),
        ("/api/books", BookService),
        ("/api/authors", BookService),
        ("/api/categories", BookService),
        ("/api/recommendations", BookService),
        ("/api/loans", LendingService),
        ("/api/holds", LendingService),
        ("/api/borrowers", LendingService),
        ("/api/unavailable-books", LendingService),
    ];
}
