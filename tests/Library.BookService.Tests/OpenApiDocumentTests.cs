using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Library.TestSupport.Contract;

namespace Library.BookService.Tests;

/// <summary>
/// The book service's own OpenAPI document (/openapi/v1.json), as the running service produces it:
/// every operation named and described, every input with its limits (what the validation enforces,
/// from the same annotations), every refusal a handler gives documented.
/// </summary>
public sealed class OpenApiDocumentTests(CatalogFixture fixture, ITestOutputHelper output) : IClassFixture<CatalogFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_document_follows_the_rules_every_public_document_follows()
    {
        var report = OpenApiLint.Check("bookservice", await fixture.Client().GetStringAsync("/openapi/v1.json", Ct));
        output.WriteLine(report.ToString());
        Assert.True(report.Operations >= 22, report.Counts);
        Assert.Empty(report.Findings);
        Assert.Equal(0, report.InputsWithoutLimits);
    }

    [Fact]
    public async Task Each_operation_names_who_may_call_it()
    {
        var document = await DocumentAsync();
        Assert.True(Operation(document, "get", "/api/books").GetProperty("x-anonymous").GetBoolean());
        Assert.True(Operation(document, "get", "/api/books/{id}/recommendations").GetProperty("x-anonymous").GetBoolean());
        foreach (var (method, path) in new[] { ("post", "/api/books"), ("put", "/api/books/{id}/stock"), ("post", "/api/books/import"), ("get", "/api/books/export"), ("delete", "/api/authors/{id}"), ("put", "/api/categories/{id}") })
        {
            var operation = Operation(document, method, path);
            Assert.Equal("librarian", operation.GetProperty("security")[0].GetProperty("Bearer")[0].GetString());
            Assert.True(operation.GetProperty("responses").TryGetProperty("401", out _) && operation.GetProperty("responses").TryGetProperty("403", out _), $"{method} {path}");
        }
        Assert.True(Operation(document, "get", "/api/recommendations").GetProperty("responses").TryGetProperty("401", out _));
    }

    /// <summary>The check in front of every test's client, fed a deliberately wrong book for the real document: caught.</summary>
    [Theory]
    [InlineData(200, """{"id":"0197a000-0000-7000-8000-000000000000","title":"No ISBN, no copies"}""", "not valid against its schema")]
    [InlineData(409, """{"title":"Conflict","status":409,"traceId":"x"}""", "answered 409, which it does not document")]
    public async Task A_wrong_book_answer_is_caught(int status, string body, string expected)
    {
        var json = await fixture.Client().GetStringAsync("/openapi/v1.json", Ct);
        var check = ContractCheck.Handler("bookservice (deliberately wrong answers)", _ => Task.FromResult(json), ContractMode.Enforce, record: false);
        check.InnerHandler = new Answer((HttpStatusCode)status, body, status >= 400 ? "application/problem+json" : "application/json");
        using var client = new HttpClient(check) { BaseAddress = new Uri("http://bookservice.test") };

        var failure = await Assert.ThrowsAsync<ContractViolationException>(() => client.GetAsync($"/api/books/{Guid.CreateVersion7()}", Ct));
        output.WriteLine(failure.Message);
        Assert.Contains("GetBook", failure.Message, StringComparison.Ordinal);
        Assert.Contains(expected, failure.Message, StringComparison.Ordinal);
    }

    private sealed class Answer(HttpStatusCode status, string body, string mediaType) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(new HttpResponseMessage(status) { Content = new StringContent(body, Encoding.UTF8, mediaType), RequestMessage = request });
    }

    [Fact]
    public async Task Every_operation_is_named_summarised_described_and_tagged()
    {
        var document = await DocumentAsync();
        var operations = Operations(document).ToList();
        Assert.NotEmpty(operations);
        foreach (var (method, path, operation) in operations)
        {
            foreach (var member in new[] { "operationId", "summary", "description" })
            {
                Assert.True(operation.TryGetProperty(member, out var value) && !string.IsNullOrWhiteSpace(value.GetString()), $"{method} {path} has no {member}");
            }
            Assert.True(operation.TryGetProperty("tags", out var tags) && tags.GetArrayLength() > 0, $"{method} {path} has no tag");
        }
        var ids = operations.Select(o => o.Operation.GetProperty("operationId").GetString()).ToList();
        Assert.Equal(ids.Count, ids.Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public async Task Every_input_declares_its_limits()
    {
        var document = await DocumentAsync();
        var operations = Operations(document).ToList();
        var inputs = new List<string>();
        var unbounded = new List<string>();
        foreach (var (method, path, operation) in operations)
        {
            if (operation.TryGetProperty("parameters", out var parameters))
            {
                foreach (var parameter in parameters.EnumerateArray())
                {
                    Check(document, $"{method} {path} {parameter.GetProperty("in").GetString()} {parameter.GetProperty("name").GetString()}",
                        parameter.GetProperty("schema"), inputs, unbounded);
                }
            }
            if (operation.TryGetProperty("requestBody", out var body))
            {
                foreach (var content in body.GetProperty("content").EnumerateObject())
                {
                    Check(document, $"{method} {path} body ({content.Name})", content.Value.GetProperty("schema"), inputs, unbounded);
                }
            }
        }
        var responses = operations.Sum(o => o.Operation.GetProperty("responses").EnumerateObject().Count());
        output.WriteLine(
            $"book service: {operations.Count} operations, {responses} documented responses, {inputs.Count} inputs, {unbounded.Count} without limits");
        Assert.True(unbounded.Count == 0, $"{unbounded.Count} of {inputs.Count} inputs without limits:\n{string.Join('\n', unbounded)}");
    }

    [Fact]
    public async Task Operations_document_the_refusals_their_handlers_give()
    {
        var document = await DocumentAsync();
        foreach (var (method, path, operation) in Operations(document))
        {
            var codes = operation.GetProperty("responses").EnumerateObject().Select(r => r.Name).ToHashSet();
            Assert.Contains(codes, c => c.StartsWith('2'));
            if (path.Contains("{id}", StringComparison.Ordinal))
            {
                Assert.True(codes.Contains("404"), $"{method} {path}: an unknown ID is a 404");
            }
            var hasLimitedInput = operation.TryGetProperty("requestBody", out _)
                || (operation.TryGetProperty("parameters", out var parameters) && parameters.EnumerateArray().Any(p => p.GetProperty("in").GetString() == "query"));
            if (hasLimitedInput)
            {
                Assert.True(codes.Contains("400"), $"{method} {path}: input out of its limits is a 400");
            }
        }
        var create = Operation(document, "post", "/api/books");
        var createCodes = create.GetProperty("responses").EnumerateObject().Select(r => r.Name).ToHashSet();
        Assert.Superset(new HashSet<string> { "201", "400", "409" }, createCodes);
        Assert.DoesNotContain("404", createCodes);
        var update = Operation(document, "put", "/api/books/{id}");
        Assert.True(update.GetProperty("responses").TryGetProperty("412", out _));
        // Optimistic concurrency, documented both ways: the ETag a success carries, the If-Match a change takes.
        Assert.Contains(update.GetProperty("parameters").EnumerateArray(), p => p.GetProperty("in").GetString() == "header" && p.GetProperty("name").GetString() == "If-Match");
        Assert.True(Operation(document, "get", "/api/books/{id}").GetProperty("responses").GetProperty("200").GetProperty("headers").TryGetProperty("ETag", out _));
        var example = create.GetProperty("requestBody").GetProperty("content").GetProperty("application/json").GetProperty("example");
        Assert.Equal("The Left Hand of Darkness", example.GetProperty("title").GetString());
    }

    [Fact]
    public async Task Book_fields_carry_the_limits_the_service_enforces()
    {
        var document = await DocumentAsync();
        var book = Resolve(document, Operation(document, "post", "/api/books").GetProperty("requestBody").GetProperty("content").GetProperty("application/json").GetProperty("schema"));
        var properties = book.GetProperty("properties");
        Assert.Equal(["isbn", "publisher", "title", "totalCopies"], book.GetProperty("required").EnumerateArray().Select(r => r.GetString()!).Order().ToArray());
        Assert.Equal(500, properties.GetProperty("title").GetProperty("maxLength").GetInt32());
        Assert.Equal(40, properties.GetProperty("isbn").GetProperty("maxLength").GetInt32());
        Assert.Equal(1000, properties.GetProperty("publishedYear").GetProperty("minimum").GetInt32());
        Assert.Equal(DateTime.UtcNow.Year + 1, properties.GetProperty("publishedYear").GetProperty("maximum").GetInt32());
        Assert.Equal(10_000, properties.GetProperty("totalCopies").GetProperty("maximum").GetInt32());
        Assert.Equal(50, properties.GetProperty("authorIds").GetProperty("maxItems").GetInt32());

        // The documented ISBN pattern admits what the service accepts and refuses what it refuses for its form.
        var isbn = new System.Text.RegularExpressions.Regex(properties.GetProperty("isbn").GetProperty("pattern").GetString()!);
        Assert.Matches(isbn, "978-0-441-47812-5");
        Assert.Matches(isbn, "ISBN 0-441-47812-3");
        Assert.Matches(isbn, "044147812X");
        Assert.DoesNotMatch(isbn, "not an isbn");
        var title = new System.Text.RegularExpressions.Regex(properties.GetProperty("title").GetProperty("pattern").GetString()!);
        Assert.Matches(title, "Line one\nline two");
        Assert.DoesNotMatch(title, "Null\0byte");
    }

    private async Task<JsonElement> DocumentAsync() =>
        await fixture.Client().GetFromJsonAsync<JsonElement>("/openapi/v1.json", Ct);

    private static IEnumerable<(string Method, string Path, JsonElement Operation)> Operations(JsonElement document) =>
        document.GetProperty("paths").EnumerateObject().SelectMany(path => path.Value.EnumerateObject()
            .Where(o => o.Name is "get" or "put" or "post" or "delete" or "patch")
            .Select(o => (o.Name.ToUpperInvariant(), path.Name, o.Value)));

    private static JsonElement Operation(JsonElement document, string method, string path) =>
        document.GetProperty("paths").GetProperty(path).GetProperty(method);

    private static JsonElement Resolve(JsonElement document, JsonElement schema) =>
        schema.TryGetProperty("$ref", out var reference)
            ? document.GetProperty("components").GetProperty("schemas").GetProperty(reference.GetString()!.Split('/').Last())
            : schema;

    /// <summary>
    /// A string needs maxLength (or a format/enum that bounds it: uuid, binary body), an integer
    /// minimum and maximum, an array maxItems; objects and arrays are walked.
    /// </summary>
    private static void Check(JsonElement document, string name, JsonElement schema, List<string> inputs, List<string> unbounded)
    {
        schema = Resolve(document, schema);
        var types = !schema.TryGetProperty("type", out var type) ? []
            : type.ValueKind == JsonValueKind.Array ? type.EnumerateArray().Select(t => t.GetString()!).ToHashSet()
            : [type.GetString()!];
        if (types.Contains("object") && schema.TryGetProperty("properties", out var properties))
        {
            foreach (var property in properties.EnumerateObject())
            {
                Check(document, $"{name}.{property.Name}", property.Value, inputs, unbounded);
            }
            return;
        }
        inputs.Add(name);
        var format = schema.TryGetProperty("format", out var f) ? f.GetString() : null;
        var bounded = types switch
        {
            _ when types.Contains("array") => schema.TryGetProperty("maxItems", out _),
            _ when types.Contains("integer") || types.Contains("number") => schema.TryGetProperty("minimum", out _) && schema.TryGetProperty("maximum", out _),
            _ when types.Contains("string") => schema.TryGetProperty("maxLength", out _) || schema.TryGetProperty("enum", out _) || format is "uuid" or "binary",
            _ => true,
        };
        if (!bounded)
        {
            unbounded.Add(name);
        }
        if (types.Contains("array") && schema.TryGetProperty("items", out var items) && Resolve(document, items).TryGetProperty("properties", out _))
        {
            Check(document, $"{name}[]", items, inputs, unbounded);
        }
    }
}
