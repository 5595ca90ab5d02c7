using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Tests;

/// <summary>
/// Refusals the document promises that the feature tests do not reach: each answered as
/// documented (the contract check validates every answer here against the document too).
/// </summary>
public sealed class DocumentedRefusalsTests(LendingFixture fixture) : IClassFixture<LendingFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly Guid Any = Guid.CreateVersion7();

    public static TheoryData<string, string> SignedInOperations => new()
    {
        { "GET", "/api/loans" }, { "GET", $"/api/loans/{Any}" }, { "POST", $"/api/loans/{Any}/return" }, { "POST", $"/api/loans/{Any}/renew" },
        { "GET", "/api/borrowers" }, { "GET", "/api/unavailable-books" },
        { "GET", "/api/holds" }, { "POST", "/api/holds" }, { "DELETE", $"/api/holds/{Any}" },
        { "GET", "/api/copies/by-barcode/LIB1" }, { "PATCH", $"/api/copies/{Any}" },
        { "POST", "/api/circulation/check-out" }, { "POST", "/api/circulation/check-in" },
        { "GET", "/api/circulation-rules" }, { "PUT", "/api/circulation-rules" }, { "GET", $"/api/circulation-rules/resolve?userId={Any}&copyId={Any}" },
        { "PUT", "/api/calendar" },
        { "POST", $"/api/fines/{Any}/payments" }, { "POST", $"/api/fines/{Any}/waive" },
        { "GET", $"/api/users/{Any}/account" }, { "POST", $"/api/users/{Any}/blocks" }, { "DELETE", $"/api/blocks/{Any}" },
        { "GET", "/api/notices" }, { "GET", "/api/fines" }, { "GET", "/api/reports/circulation?from=2026-01-01&to=2026-01-31" },
    };

    [Theory]
    [MemberData(nameof(SignedInOperations))]
    public async Task Without_a_token_every_signed_in_operation_is_a_401(string method, string path)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (method is "POST" or "PUT" or "PATCH")
        {
            request.Content = JsonContent.Create(new { });
        }
        using var response = await fixture.Client().SendAsync(request, Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task Unknown_ids_and_barcodes_are_404_for_a_librarian()
    {
        var librarian = fixture.Librarian();
        Assert.Equal(HttpStatusCode.NotFound, (await librarian.GetAsync($"/api/loans/{Any}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await librarian.PostAsync($"/api/loans/{Any}/renew", null, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await librarian.GetAsync("/api/copies/by-barcode/NO-SUCH-COPY", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await librarian.PostAsJsonAsync($"/api/fines/{Any}/waive", new { reason = "Never charged" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await fixture.PlaceHoldAsync(Any)).StatusCode);
    }

    [Fact]
    public async Task Bad_keys_barcodes_and_pages_are_400_and_a_key_reused_for_another_request_a_422()
    {
        var (_, token) = await fixture.ReaderAsync();
        var member = fixture.Client(token);
        var librarian = fixture.Librarian();
        var badKey = new string('k', 101);

        Assert.Equal(HttpStatusCode.BadRequest, (await librarian.GetAsync("/api/copies/by-barcode/not%20a%20barcode", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await member.GetAsync("/api/holds?pageSize=0", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await SendAsync(member, HttpMethod.Delete, $"/api/holds/{Any}", badKey)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await SendAsync(member, HttpMethod.Post, $"/api/loans/{Any}/renew", badKey)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await SendAsync(member, HttpMethod.Post, "/api/holds", badKey, new { bookId = Any })).StatusCode);

        // A key is one request: the same key on another kind of request is refused, whatever it asks.
        var book = await fixture.TitleAsync(2);
        var key = Guid.NewGuid().ToString();
        using var borrowed = await fixture.BorrowAsync(book, days: 7, token: token, idempotencyKey: key);
        Assert.Equal(HttpStatusCode.Created, borrowed.StatusCode);
        var problem = await (await SendAsync(member, HttpMethod.Post, "/api/holds", key, new { bookId = book })).Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(422, problem.GetProperty("status").GetInt32());
        var loan = (await borrowed.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetGuid();
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await SendAsync(member, HttpMethod.Post, $"/api/loans/{loan}/return", key)).StatusCode);
        Assert.Null(await fixture.InLendingAsync(db => db.Loans.Where(l => l.Id == loan).Select(l => l.ReturnedAt).SingleAsync(Ct)));
    }

    private static async Task<HttpResponseMessage> SendAsync(HttpClient client, HttpMethod method, string path, string key, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.TryAddWithoutValidation("Idempotency-Key", key);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }
        return await client.SendAsync(request, Ct);
    }
}
