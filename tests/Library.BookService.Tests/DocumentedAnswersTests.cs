using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Library.TestSupport;

namespace Library.BookService.Tests;

/// <summary>
/// Every answer the book service's document promises is one a test receives (each through the
/// contract-checked client, so its body is checked against the document too), but 413 and 429:
/// those are the gateway's (its body limit and rate limits), produced by the gateway's tests.
/// The other tests of this project cover the rest; these are the answers none of them needed.
/// </summary>
public sealed class DocumentedAnswersTests(CatalogFixture fixture) : IClassFixture<CatalogFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static void Is(HttpStatusCode expected, HttpResponseMessage response, string what)
    {
        using (response)
        {
            Assert.True(expected == response.StatusCode, $"{what}: {(int)response.StatusCode}, expected {(int)expected}");
        }
    }

    [Fact]
    public async Task Authors_answer_every_documented_status()
    {
        var (anonymous, member, librarian) = (fixture.Client(), fixture.Client(fixture.MemberToken), fixture.Librarian());
        var id = await fixture.AuthorAsync("Documented " + Guid.NewGuid().ToString("N"));
        var unknown = Guid.CreateVersion7();

        Is(HttpStatusCode.OK, await anonymous.GetAsync("/api/authors?search=Documented", Ct), "ListAuthors");
        Is(HttpStatusCode.OK, await anonymous.GetAsync($"/api/authors/{id}", Ct), "GetAuthor");
        Is(HttpStatusCode.BadRequest, await anonymous.GetAsync($"/api/authors/{id}/books?page=0", Ct), "ListAuthorBooks");

        Is(HttpStatusCode.Unauthorized, await anonymous.PostAsJsonAsync("/api/authors", new { name = "X" }, Ct), "CreateAuthor");
        Is(HttpStatusCode.Unauthorized, await anonymous.PutAsJsonAsync($"/api/authors/{id}", new { name = "X" }, Ct), "UpdateAuthor");
        Is(HttpStatusCode.Forbidden, await member.PutAsJsonAsync($"/api/authors/{id}", new { name = "X" }, Ct), "UpdateAuthor");
        Is(HttpStatusCode.BadRequest, await librarian.PutAsJsonAsync($"/api/authors/{id}", new { name = "" }, Ct), "UpdateAuthor");
        Is(HttpStatusCode.NotFound, await librarian.PutAsJsonAsync($"/api/authors/{unknown}", new { name = "X" }, Ct), "UpdateAuthor");

        Is(HttpStatusCode.Unauthorized, await anonymous.DeleteAsync($"/api/authors/{id}", Ct), "DeleteAuthor");
        Is(HttpStatusCode.Forbidden, await member.DeleteAsync($"/api/authors/{id}", Ct), "DeleteAuthor");
        Is(HttpStatusCode.NotFound, await librarian.DeleteAsync($"/api/authors/{unknown}", Ct), "DeleteAuthor");
    }

    [Fact]
    public async Task Categories_answer_every_documented_status()
    {
        var (anonymous, member, librarian) = (fixture.Client(), fixture.Client(fixture.MemberToken), fixture.Librarian());
        var name = "Documented " + Guid.NewGuid().ToString("N");
        var id = await fixture.CategoryAsync(name);
        var other = await fixture.CategoryAsync(name + " other");
        var unknown = Guid.CreateVersion7();

        Is(HttpStatusCode.Unauthorized, await anonymous.PostAsJsonAsync("/api/categories", new { name = "X" }, Ct), "CreateCategory");
        Is(HttpStatusCode.OK, await librarian.PutAsJsonAsync($"/api/categories/{id}", new { name, description = "Changed" }, Ct), "UpdateCategory");
        Is(HttpStatusCode.Unauthorized, await anonymous.PutAsJsonAsync($"/api/categories/{id}", new { name }, Ct), "UpdateCategory");
        Is(HttpStatusCode.Forbidden, await member.PutAsJsonAsync($"/api/categories/{id}", new { name }, Ct), "UpdateCategory");
        Is(HttpStatusCode.BadRequest, await librarian.PutAsJsonAsync($"/api/categories/{id}", new { name = " " }, Ct), "UpdateCategory");
        Is(HttpStatusCode.NotFound, await librarian.PutAsJsonAsync($"/api/categories/{unknown}", new { name }, Ct), "UpdateCategory");
        Is(HttpStatusCode.Conflict, await librarian.PutAsJsonAsync($"/api/categories/{other}", new { name = name.ToUpperInvariant() }, Ct), "UpdateCategory");

        Is(HttpStatusCode.Unauthorized, await anonymous.DeleteAsync($"/api/categories/{id}", Ct), "DeleteCategory");
        Is(HttpStatusCode.Forbidden, await member.DeleteAsync($"/api/categories/{id}", Ct), "DeleteCategory");
        Is(HttpStatusCode.NotFound, await librarian.DeleteAsync($"/api/categories/{unknown}", Ct), "DeleteCategory");
    }

    [Fact]
    public async Task Books_answer_every_documented_status()
    {
        var (anonymous, member, librarian) = (fixture.Client(), fixture.Client(fixture.MemberToken), fixture.Librarian());
        var book = await fixture.BookAsync("Documented", TestIsbn.Next(), [], []);
        var taken = await fixture.BookAsync("Documented, taken ISBN", TestIsbn.Next(), [], []);
        var id = book.GetProperty("id").GetGuid();
        var fields = new { isbn = book.GetProperty("isbn").GetString(), title = "Documented", publisher = "Ace" };

        Is(HttpStatusCode.Unauthorized, await anonymous.PutAsJsonAsync($"/api/books/{id}", fields, Ct), "UpdateBook");
        Is(HttpStatusCode.Forbidden, await member.PutAsJsonAsync($"/api/books/{id}", fields, Ct), "UpdateBook");
        Is(HttpStatusCode.BadRequest, await librarian.PutAsJsonAsync($"/api/books/{id}", fields with { title = "" }, Ct), "UpdateBook");
        Is(HttpStatusCode.Conflict, await librarian.PutAsJsonAsync($"/api/books/{id}", fields with { isbn = taken.GetProperty("isbn").GetString() }, Ct), "UpdateBook");
        Is(HttpStatusCode.Unauthorized, await anonymous.PutAsJsonAsync($"/api/books/{id}/stock", new { totalCopies = 1 }, Ct), "ChangeBookStock");

        Is(HttpStatusCode.Forbidden, await member.DeleteAsync($"/api/books/{id}", Ct), "DeleteBook");
        using (var stale = new HttpRequestMessage(HttpMethod.Delete, $"/api/books/{id}"))
        {
            stale.Headers.IfMatch.ParseAdd("\"999\"");
            Is(HttpStatusCode.PreconditionFailed, await librarian.SendAsync(stale, Ct), "DeleteBook");
        }
        using (var tooLong = new HttpRequestMessage(HttpMethod.Delete, $"/api/books/{id}"))
        {
            tooLong.Headers.TryAddWithoutValidation("If-Match", new string('"', 1001));
            Is(HttpStatusCode.BadRequest, await librarian.SendAsync(tooLong, Ct), "DeleteBook");
        }
        var fresh = await anonymous.GetFromJsonAsync<JsonElement>($"/api/books/{id}", Ct);
        Assert.Equal("Documented", fresh.GetProperty("title").GetString());
    }

    [Fact]
    public async Task Recommendations_for_the_caller_are_for_people_only()
    {
        var service = await fixture.Users.ServiceTokenAsync();
        Is(HttpStatusCode.Forbidden, await fixture.Client(service).GetAsync("/api/recommendations", Ct), "ListMyRecommendations");
    }
}
