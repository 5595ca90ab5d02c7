using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Library.TestSupport;

namespace Library.BookService.Tests;

/// <summary>
/// The rules the request records and parameters declare (AddValidation): a 400 naming the JSON
/// field with the message clients always got, limits equal to the database columns (the longest
/// accepted value is stored), and the catalog import refusing a row by the same rules.
/// </summary>
public sealed class DeclaredValidationTests(CatalogFixture fixture) : IClassFixture<CatalogFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<JsonElement> ErrorsAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.True(problem.TryGetProperty("traceId", out _));
        return problem.GetProperty("errors");
    }

    private static string[] Messages(JsonElement errors, string field) =>
        errors.TryGetProperty(field, out var messages) ? messages.EnumerateArray().Select(m => m.GetString()!).ToArray() : [];

    [Fact]
    public async Task The_longest_texts_the_API_accepts_are_stored_and_one_more_character_is_a_400()
    {
        var librarian = fixture.Librarian();
        var longest = new { isbn = TestIsbn.Next(), title = new string('t', 500), description = new string('d', 10_000), publisher = new string('p', 200), totalCopies = 1 };
        using (var created = await librarian.PostAsJsonAsync("/api/books", longest, Ct))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            var book = await created.Content.ReadFromJsonAsync<JsonElement>(Ct);
            Assert.Equal(10_000, book.GetProperty("description").GetString()!.Length);
        }
        using (var tooLong = await librarian.PostAsJsonAsync("/api/books", longest with { isbn = TestIsbn.Next(), description = new string('d', 10_001) }, Ct))
        {
            Assert.Equal(["description must have at most 10000 characters."], Messages(await ErrorsAsync(tooLong), "description"));
        }

        using (var author = await librarian.PostAsJsonAsync("/api/authors", new { name = new string('n', 200), bio = new string('b', 5_000) }, Ct))
        {
            Assert.Equal(HttpStatusCode.Created, author.StatusCode);
        }
        using (var author = await librarian.PostAsJsonAsync("/api/authors", new { name = new string('n', 201), bio = new string('b', 5_001) }, Ct))
        {
            var errors = await ErrorsAsync(author);
            Assert.Equal(["name is required, at most 200 characters."], Messages(errors, "name"));
            Assert.Equal(["bio must have at most 5000 characters."], Messages(errors, "bio"));
        }

        var name = "Longest " + Guid.NewGuid().ToString("N");
        using (var category = await librarian.PostAsJsonAsync("/api/categories", new { name, description = new string('c', 2_000) }, Ct))
        {
            Assert.Equal(HttpStatusCode.Created, category.StatusCode);
        }
        using (var category = await librarian.PostAsJsonAsync("/api/categories", new { name = new string('c', 101), description = new string('c', 2_001) }, Ct))
        {
            var errors = await ErrorsAsync(category);
            Assert.Equal(["name is required, at most 100 characters."], Messages(errors, "name"));
            Assert.Equal(["description must have at most 2000 characters."], Messages(errors, "description"));
        }
    }

    [Fact]
    public async Task Bad_fields_are_named_as_in_JSON_with_the_messages_of_the_contract_and_change_nothing()
    {
        var title = "Refused " + Guid.NewGuid().ToString("N");
        using var response = await fixture.Librarian().PostAsJsonAsync("/api/books", new
        {
            isbn = "978-0-441-47812-7", title = title + "\u0007", publisher = " ", publishedYear = DateTime.UtcNow.Year + 2, language = "e1",
            pageCount = 0, authorIds = Enumerable.Range(0, 51).Select(_ => Guid.CreateVersion7()).ToArray(), totalCopies = 10_001,
        }, Ct);
        var errors = await ErrorsAsync(response);
        Assert.Equal(["isbn must be a valid ISBN-10 or ISBN-13 (check digit included)."], Messages(errors, "isbn"));
        Assert.Equal(["title must not contain control characters."], Messages(errors, "title"));
        Assert.Equal(["publisher is required."], Messages(errors, "publisher"));
        Assert.Equal([$"publishedYear must be between 1000 and {DateTime.UtcNow.Year + 1}."], Messages(errors, "publishedYear"));
        Assert.Equal(["language must be a language code such as en or pt-BR."], Messages(errors, "language"));
        Assert.Equal(["pageCount must be between 1 and 100000."], Messages(errors, "pageCount"));
        Assert.Equal(["At most 50 authors."], Messages(errors, "authorIds"));
        Assert.Equal(["totalCopies must be between 0 and 10000."], Messages(errors, "totalCopies"));

        using var missing = await fixture.Librarian().PostAsJsonAsync("/api/books", new { title }, Ct);
        var missingErrors = await ErrorsAsync(missing);
        Assert.Equal(["isbn", "publisher", "totalCopies"], missingErrors.EnumerateObject().Select(e => e.Name).Order().ToArray());

        var found = await fixture.Client().GetFromJsonAsync<JsonElement>($"/api/books?search={Uri.EscapeDataString(title)}", Ct);
        Assert.Equal(0, found.GetProperty("totalCount").GetInt64());
    }

    [Fact]
    public async Task A_change_of_fields_needs_no_stock_and_the_stock_its_own_limits()
    {
        var book = await fixture.BookAsync("Fields only", TestIsbn.Next(), [], []);
        var id = book.GetProperty("id").GetGuid();
        using var update = await fixture.Librarian().PutAsJsonAsync($"/api/books/{id}", new { isbn = book.GetProperty("isbn").GetString(), title = "Fields only, changed", publisher = "Ace" }, Ct);
        Assert.Equal(HttpStatusCode.OK, update.StatusCode);
        Assert.Equal(2, (await update.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("totalCopies").GetInt32());

        using var noStock = await fixture.Librarian().PutAsJsonAsync($"/api/books/{id}/stock", new { }, Ct);
        Assert.Equal(["totalCopies must be between 0 and 10000."], Messages(await ErrorsAsync(noStock), "totalCopies"));

        // If-Match is a declared header (its errors keyed ifMatch, the parameter's name): a few ETags fit, a kilobyte of them is a 400, a stale one still a 412.
        var librarian = fixture.Librarian();
        librarian.DefaultRequestHeaders.TryAddWithoutValidation("If-Match", string.Join(", ", Enumerable.Range(100, 200).Select(v => $"\"{v}\"")));
        using var longIfMatch = await librarian.PutAsJsonAsync($"/api/books/{id}/stock", new { totalCopies = 3 }, Ct);
        Assert.Equal(["If-Match must have at most 1000 characters."], Messages(await ErrorsAsync(longIfMatch), "ifMatch"));
        librarian.DefaultRequestHeaders.Remove("If-Match");
        librarian.DefaultRequestHeaders.TryAddWithoutValidation("If-Match", "\"1\", \"99\"");
        using var stale = await librarian.PutAsJsonAsync($"/api/books/{id}/stock", new { totalCopies = 3 }, Ct);
        Assert.Equal(HttpStatusCode.PreconditionFailed, stale.StatusCode);
    }

    [Fact]
    public async Task Values_crafted_to_make_a_pattern_backtrack_are_refused_at_once()
    {
        var spaces = new string(' ', 50_000);
        using var isbn = await fixture.Librarian().PostAsJsonAsync("/api/books", new { isbn = spaces + "!", title = "T", publisher = "P", totalCopies = 1 }, Ct);
        Assert.Equal(["isbn must be a valid ISBN-10 or ISBN-13 (check digit included)."], Messages(await ErrorsAsync(isbn), "isbn"));
        using var sort = await fixture.Client().GetAsync($"/api/books?sort={new string('+', 5_000)}x&search={new string('+', 5_000)}%01", Ct);
        var errors = await ErrorsAsync(sort);
        Assert.Contains("sort must be one of: relevance, title, newest, popular.", Messages(errors, "sort"));
        Assert.Contains("search must have at most 200 characters.", Messages(errors, "search"));
    }

    [Theory]
    [InlineData("/api/books?sort=Title&available=TRUE", HttpStatusCode.OK, null)]
    [InlineData("/api/books?sort=%20newest%20&available=", HttpStatusCode.OK, null)]
    [InlineData("/api/books?search=a%00b", HttpStatusCode.BadRequest, "search")]
    [InlineData("/api/books/facets?publisher=%1Fx", HttpStatusCode.BadRequest, "publisher")]
    [InlineData("/api/books/facets?available=yes", HttpStatusCode.BadRequest, "available")]
    [InlineData("/api/authors?pageSize=101", HttpStatusCode.BadRequest, "pageSize")]
    [InlineData("/api/categories?page=0", HttpStatusCode.BadRequest, "page")]
    [InlineData("/api/recommendations?limit=51", HttpStatusCode.Unauthorized, null)]
    public async Task Query_parameters_are_checked_as_declared(string url, HttpStatusCode status, string? field)
    {
        using var response = await fixture.Client().GetAsync(url, Ct);
        Assert.Equal(status, response.StatusCode);
        if (field is not null)
        {
            Assert.NotEmpty(Messages(await ErrorsAsync(response), field));
        }
    }

    [Fact]
    public async Task A_recommendation_limit_out_of_range_is_a_400_for_readers_too()
    {
        using var response = await fixture.Client(fixture.MemberToken).GetAsync("/api/recommendations?limit=51", Ct);
        Assert.Equal(["limit must be between 1 and 50."], Messages(await ErrorsAsync(response), "limit"));
    }

    [Fact]
    public async Task The_import_refuses_a_row_by_the_rules_of_the_API()
    {
        var csv = "isbn,title,subtitle,authors,categories,publisher,publishedYear,language,copies\n"
            + $"{TestIsbn.Next()},\"Bell\u0007Title\",,,,Ace,2000,en,1\n"
            + $"{TestIsbn.Next()},Year Ahead,,,,Ace,{DateTime.UtcNow.Year + 2},en,1\n";
        using var response = await fixture.Librarian().PostAsync("/api/books/import", new StringContent(csv, Encoding.UTF8, "text/csv"), Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var rejected = (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("rejected").EnumerateArray()
            .ToDictionary(r => r.GetProperty("line").GetInt32(), r => r.GetProperty("errors"));
        Assert.Equal(["title must not contain control characters."], Messages(rejected[2], "title"));
        Assert.Equal([$"publishedYear must be between 1000 and {DateTime.UtcNow.Year + 1}."], Messages(rejected[3], "publishedYear"));
    }
}
