using System.Text.Json.Nodes;
using Library.TestSupport.Contract;

namespace Library.LendingService.Tests;

/// <summary>
/// The lending service's OpenAPI document, as the app produces it, says what the service does:
/// the team's lint (security, 4xx answers, a limit on every input, no internal endpoint), and
/// every operation named, summarised, described and tagged; every operation with an input documents its 400.
/// </summary>
public sealed class OpenApiDocumentTests(LendingFixture fixture, ITestOutputHelper output) : IClassFixture<LendingFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly string[] Methods = ["get", "put", "post", "delete", "patch"];

    private async Task<JsonObject> DocumentAsync()
    {
        var text = await fixture.Client().GetStringAsync("/openapi/v1.json", Ct);
        if (Environment.GetEnvironmentVariable("LIBRARY_OPENAPI_DUMP") is { Length: > 0 } path)
        {
            await File.WriteAllTextAsync(path, text, Ct);
        }
        return JsonNode.Parse(text)!.AsObject();
    }

    private static IEnumerable<(string Path, string Method, JsonObject Operation)> Operations(JsonObject document) =>
        from path in document["paths"]!.AsObject()
        from method in path.Value!.AsObject()
        where Methods.Contains(method.Key)
        select (path.Key, method.Key, method.Value!.AsObject());

    /// <summary>The rules every public document follows (Library.TestSupport's lint): security, 4xx answers, limits on every input, no internal endpoint.</summary>
    [Fact]
    public void The_lint_looks_inside_a_choice_of_shapes()
    {
        // A nullable object is oneOf [{$ref}, {type: null}]: its properties are inputs like any
        // other (one without a limit here), and a nullable string with a maxLength is limited.
        const string document = """
            {"paths": {"/api/things": {"post": {"operationId": "T", "summary": "s", "tags": ["t"], "x-anonymous": true,
              "responses": {"400": {"content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/P"}}}}},
              "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {
                "inner": {"oneOf": [{"$ref": "#/components/schemas/Inner"}, {"type": "null"}]},
                "note": {"oneOf": [{"type": "string", "maxLength": 10}, {"type": "null"}]}}}}}}}}},
             "components": {"schemas": {
               "P": {"type": "object", "properties": {"traceId": {"type": "string"}, "status": {"type": "integer"}}},
               "Inner": {"type": "object", "properties": {"name": {"type": "string"}, "count": {"type": "integer", "minimum": 0, "maximum": 9}}}}}}
            """;
        var report = OpenApiLint.Check("sample", document);
        Assert.Equal((3, 1), (report.Inputs, report.InputsWithoutLimits));
        Assert.Equal(["POST /api/things: body.inner.name: no maxLength"], report.Findings);
    }

    [Fact]
    public async Task The_document_follows_the_rules_every_public_document_follows()
    {
        var text = (await DocumentAsync()).ToJsonString();
        OpenApiLint.AssertFollowsTheRules(OpenApiLint.Check("lendingservice", text), output);
    }

    [Fact]
    public async Task Every_operation_is_named_summarised_described_and_tagged()
    {
        var document = await DocumentAsync();
        var operations = Operations(document).ToList();
        Assert.True(operations.Count >= 31, $"{operations.Count} operations");
        var ids = operations.Select(o => (string?)o.Operation["operationId"]).ToList();
        Assert.All(operations, o =>
        {
            var what = $"{o.Method} {o.Path}";
            Assert.False(string.IsNullOrWhiteSpace((string?)o.Operation["operationId"]), what);
            Assert.False(string.IsNullOrWhiteSpace((string?)o.Operation["summary"]), what);
            Assert.False(string.IsNullOrWhiteSpace((string?)o.Operation["description"]), what);
            Assert.NotEmpty(o.Operation["tags"]!.AsArray());
        });
        Assert.Equal(ids.Count, ids.Distinct().Count());
    }

    [Fact]
    public async Task Every_operation_that_takes_input_documents_its_400()
    {
        var document = await DocumentAsync();
        foreach (var (path, method, operation) in Operations(document))
        {
            // A path parameter constrained to a GUID ({id:guid}) that is not one matches no route: a 404, not a 400.
            var takesInput = operation["requestBody"] is not null
                || (operation["parameters"]?.AsArray() ?? []).Any(p => (string?)p!["in"] != "path" || p["schema"]?["format"]?.GetValue<string>() != "uuid");
            if (takesInput)
            {
                Assert.True(operation["responses"]!.AsObject().ContainsKey("400"), $"{method} {path} takes input but documents no 400");
            }
            else if (method == "get")
            {
                // A read by ID alone (GET /api/loans/{id}) cannot be a bad request: no 400 promised.
                Assert.False(operation["responses"]!.AsObject().ContainsKey("400"), $"{method} {path} takes no input but documents a 400");
            }
        }
    }
}
