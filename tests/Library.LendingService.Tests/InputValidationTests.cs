using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Tests;

/// <summary>
/// The inputs the endpoints' annotations refuse (AddValidation, before any handler runs): a 400
/// problem with <c>errors</c> keyed by the JSON field (or header) name and today's message, and
/// nothing changed. The same annotations give the OpenAPI document its limits.
/// </summary>
public sealed class InputValidationTests(LendingFixture fixture) : IClassFixture<LendingFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<JsonElement> RefusedAsync(HttpResponseMessage response, string field, string message)
    {
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{response.StatusCode} {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(body).RootElement;
        Assert.Equal(400, problem.GetProperty("status").GetInt32());
        Assert.Equal("One or more validation errors occurred.", problem.GetProperty("title").GetString());
        Assert.True(problem.TryGetProperty("traceId", out _), body);
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out var messages), body);
        Assert.Equal(message, messages.EnumerateArray().First().GetString());
        return problem;
    }

    [Fact]
    public async Task Borrow_requests_are_refused_by_field_with_todays_messages()
    {
        var (_, token) = await fixture.ReaderAsync();
        var book = await fixture.TitleAsync(1);
        var client = fixture.Client(token);
        const string days = "days must be between 1 and the rule's maxLoanDays (at most 366).";

        await RefusedAsync(await client.PostAsJsonAsync("/api/loans", new { days = 3 }, Ct), "bookId", "bookId is required.");
        await RefusedAsync(await client.PostAsJsonAsync("/api/loans", new { bookId = Guid.Empty, days = 3 }, Ct), "bookId", "bookId is required.");
        await RefusedAsync(await client.PostAsJsonAsync("/api/loans", new { bookId = book }, Ct), "days", days);
        await RefusedAsync(await client.PostAsJsonAsync("/api/loans", new { bookId = book, days = 367 }, Ct), "days", days);
        await RefusedAsync(await fixture.BorrowAsync(book, days: 3, token: token, idempotencyKey: new string('k', 101)),
            "Idempotency-Key", "Idempotency-Key must be 1 to 100 printable characters.");
        await RefusedAsync(await fixture.BorrowAsync(book, days: 3, token: token, idempotencyKey: "tab\there"),
            "Idempotency-Key", "Idempotency-Key must be 1 to 100 printable characters.");
        Assert.Equal(0, await fixture.InLendingAsync(db => db.Loans.CountAsync(l => l.BookId == book, Ct)));
    }

    [Fact]
    public async Task List_filters_and_pages_are_refused_by_name()
    {
        var (_, token) = await fixture.ReaderAsync();
        var client = fixture.Client(token);
        await RefusedAsync(await client.GetAsync("/api/loans?status=lost", Ct), "status", "status must be one of: active, overdue, returned.");
        await RefusedAsync(await client.GetAsync("/api/loans?page=0", Ct), "page", "page must be between 1 and 1000000.");
        await RefusedAsync(await client.GetAsync("/api/loans?pageSize=101", Ct), "pageSize", "pageSize must be between 1 and 100.");
        await RefusedAsync(await fixture.Librarian().GetAsync("/api/borrowers?pageSize=0", Ct), "pageSize", "pageSize must be between 1 and 100.");
        await RefusedAsync(await fixture.Librarian().GetAsync("/api/unavailable-books?page=1000001", Ct), "page", "page must be between 1 and 1000000.");
    }
}
