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
        // A reader's account and manual blocks are the lending service's (more specific than /api/users).
        ("/api/users/{userId}/account", LendingService),
        ("/api/users/{userId}/blocks", LendingService),
        ("/api/users", UserService),
        ("/api/patron-groups", UserService),
        // A title's copies are the lending service's (the more specific route wins over /api/books).
        ("/api/books/{bookId}/copies", LendingService),
        ("/api/books", BookService),
        ("/api/authors", BookService),
        ("/api/categories", BookService),
        ("/api/recommendations", BookService),
        ("/api/loans", LendingService),
        ("/api/holds", LendingService),
        ("/api/borrowers", LendingService),
        ("/api/unavailable-books", LendingService),
        ("/api/copies", LendingService),
        ("/api/circulation", LendingService),
        ("/api/circulation-rules", LendingService),
        ("/api/calendar", LendingService),
        ("/api/loan-types", LendingService),
        ("/api/fines", LendingService),
        ("/api/blocks", LendingService),
        ("/api/notices", LendingService),
        ("/api/reports", LendingService),
    ];

    /// <summary>
    /// The service a path (or an OpenAPI path template) is routed to, by the first entry of
    /// <see cref="Table"/> it falls under (the specific ones come first, as the proxy's
    /// precedence has it); null when the gateway does not route it.
    /// </summary>
    public static string? ServiceFor(string path)
    {
        var segments = path.Trim('/').Split('/');
        foreach (var (prefix, service) in Table)
        {
            var parts = prefix.Trim('/').Split('/');
            if (parts.Length <= segments.Length && parts.Select((p, i) => p.StartsWith('{') || p.Equals(segments[i], StringComparison.OrdinalIgnoreCase)).All(x => x))
            {
                return service;
            }
        }
        return null;
    }

    /// <summary>
    /// The writes whose service answers a repeated <c>Idempotency-Key</c> with the first answer and
    /// does nothing again (the lending service: borrow, return, renew, place and cancel a hold, check-out and check-in at the desk, pay and waive a fine), so
    /// one that carries a key may be sent again to another replica. No other write is: the user
    /// and catalog services ignore the header.
    /// </summary>
    public static bool HonoursIdempotencyKey(string method, PathString path)
    {
        var s = (path.Value ?? "").Trim('/').Split('/');
        if (s.Length < 2 || !s[0].Equals("api", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }
        bool Is(int i, string segment) => s[i].Equals(segment, StringComparison.OrdinalIgnoreCase);
        return (HttpMethods.IsPost(method), HttpMethods.IsDelete(method), s.Length) switch
        {
            (true, _, 2) => Is(1, "loans") || Is(1, "holds"),
            (true, _, 3) => Is(1, "circulation") && (Is(2, "check-out") || Is(2, "check-in")),
            (true, _, 4) => Guid.TryParse(s[2], out _)
                && ((Is(1, "loans") && (Is(3, "return") || Is(3, "renew"))) || (Is(1, "fines") && (Is(3, "payments") || Is(3, "waive")))),
            (_, true, 3) => Is(1, "holds") && Guid.TryParse(s[2], out _),
            _ => false,
        };
    }
}
