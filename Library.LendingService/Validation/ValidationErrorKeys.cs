using Microsoft.AspNetCore.Http.HttpResults;

namespace Library.LendingService.Validation;

/// <summary>
/// AddValidation keys its errors by the C# member path (<c>BookId</c>) or parameter name
/// (<c>idempotencyKey</c>); the contract keys them by what the client sent. The shared defaults
/// (ProblemDetailsDefaults) camel-case the JSON fields; this, run after them, names the headers
/// as they are sent (<c>Idempotency-Key</c>, which the camel-casing also lowers) and says a message
/// once when two annotations of one field fail with it (a barcode's length and pattern).
/// </summary>
public static class ValidationErrorKeys
{
    /// <summary>
    /// Header parameters as the client names them, by their C# name, and as the shared camel-casing
    /// (ProblemDetailsDefaults, which runs first) leaves a hand-built key (<c>idempotency-Key</c>).
    /// </summary>
    private static readonly Dictionary<string, string> Headers = new(StringComparer.Ordinal)
    {
        ["idempotencyKey"] = Loans.Idempotency.Header,
        ["idempotency-Key"] = Loans.Idempotency.Header,
    };

    public static void ToClientNames(ProblemDetailsContext context)
    {
        // Two annotations of one field (a barcode's length and pattern) may both fail with the one message: said once.
        if (context.ProblemDetails is not HttpValidationProblemDetails { Errors.Count: > 0 } problem
            || !problem.Errors.Any(e => NeedsRenaming(e.Key) || e.Value.Distinct(StringComparer.Ordinal).Count() < e.Value.Length))
        {
            return;
        }
        var renamed = new Dictionary<string, string[]>(StringComparer.Ordinal);
        foreach (var (key, messages) in problem.Errors)
        {
            var name = ClientName(key);
            renamed[name] = (renamed.TryGetValue(name, out var earlier) ? [.. earlier, .. messages] : messages).Distinct(StringComparer.Ordinal).ToArray();
        }
        problem.Errors = renamed;
    }

    private static bool NeedsRenaming(string key) => ClientName(key) != key;

    /// <summary><c>Rules[0].LoanDays</c> is <c>rules[0].loanDays</c>; a name with a hyphen is a header's already.</summary>
    public static string ClientName(string key) =>
        Headers.TryGetValue(key, out var header) ? header
        : key.Contains('-', StringComparison.Ordinal) ? key
        : string.Join('.', key.Split('.').Select(segment => segment.Length > 0 && char.IsUpper(segment[0]) ? char.ToLowerInvariant(segment[0]) + segment[1..] : segment));
}
