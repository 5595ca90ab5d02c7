using Microsoft.AspNetCore.Http;

namespace Library.ServiceDefaults;

/// <summary>One page of a list, as every list endpoint of the API answers it.</summary>
public sealed record PagedList<T>(IReadOnlyList<T> Items, int Page, int PageSize, long TotalCount);

/// <summary>
/// <c>?page=&amp;pageSize=</c> as the API's conventions define them: page from 1, pageSize 1..100,
/// default 20. Out-of-range values are a 400 naming the field, never clamped silently.
/// </summary>
public readonly record struct PageRequest(int Page, int PageSize)
{
    public const int DefaultPageSize = 20;
    public const int MaxPageSize = 100;
    public const int MaxPage = 1_000_000;

    /// <summary>The 400 messages, for <c>[Range(1, MaxPage, ErrorMessage = PageMessage)] int? page</c> on an endpoint's parameters.</summary>
    public const string PageMessage = "page must be between 1 and 1000000.";
    public const string PageSizeMessage = "pageSize must be between 1 and 100.";

    public int Skip => (Page - 1) * PageSize;

    public static bool TryCreate(int? page, int? pageSize, out PageRequest request, out IResult? problem)
    {
        var errors = new Dictionary<string, string[]>();
        var p = page ?? 1;
        var size = pageSize ?? DefaultPageSize;
        if (p < 1 || p > MaxPage)
        {
            errors["page"] = [PageMessage];
        }
        if (size is < 1 or > MaxPageSize)
        {
            errors["pageSize"] = [PageSizeMessage];
        }

        request = new PageRequest(p, size);
        problem = errors.Count == 0 ? null : Results.ValidationProblem(errors);
        return problem is null;
    }
}
