using System.Text.Json;
using System.Text.Json.Nodes;

namespace Library.LendingService.Tests;

/// <summary>
/// The lending service's OpenAPI document, as the app produces it, says what the service does:
/// every operation named, summarised, described and tagged; every input (parameter or body field,
/// however deep) limited: a string by maxLength (or a uuid/date-time format, or an enum), a number
/// by minimum and maximum, an array by maxItems; every operation with an input documents its 400.
/// </summary>
public sealed class OpenApiDocumentTests(LendingFixture fixture) : IClassFixture<LendingFixture>
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
    public async Task Every_input_has_its_limits_and_every_operation_with_input_its_400()
    {
        var document = await DocumentAsync();
        var schemas = document["components"]?["schemas"]?.AsObject();
        var inputs = new List<string>();
        var unlimited = new List<string>();
        foreach (var (path, method, operation) in Operations(document))
        {
            var what = $"{method} {path}";
            var hasInput = false;
            foreach (var parameter in operation["parameters"]?.AsArray() ?? [])
            {
                // A path parameter constrained to a GUID ({id:guid}) that is not one matches no route: a 404, not a 400.
                hasInput |= (string?)parameter!["in"] != "path" || parameter["schema"]?["format"]?.GetValue<string>() != "uuid";
                Check(schemas, $"{what} {parameter!["in"]} {parameter["name"]}", parameter["schema"]!.AsObject(), inputs, unlimited, []);
            }
            foreach (var content in operation["requestBody"]?["content"]?.AsObject() ?? [])
            {
                hasInput = true;
                Check(schemas, $"{what} body", content.Value!["schema"]!.AsObject(), inputs, unlimited, []);
            }
            if (hasInput)
            {
                Assert.True(operation["responses"]!.AsObject().ContainsKey("400"), $"{what} takes input but documents no 400");
            }
        }
        TestContext.Current.SendDiagnosticMessage($"lending inputs: {inputs.Count}, without limits: {unlimited.Count}");
        Assert.True(unlimited.Count == 0, $"{unlimited.Count} of {inputs.Count} inputs without limits:\n{string.Join('\n', unlimited)}");
    }

    /// <summary>Walks a schema (through $ref, allOf/oneOf/anyOf, properties and items), listing each leaf input and those without limits.</summary>
    private static void Check(JsonObject? schemas, string where, JsonObject schema, List<string> inputs, List<string> unlimited, HashSet<string> seen)
    {
        if (schema["$ref"] is { } reference)
        {
            var name = ((string)reference!).Split('/')[^1];
            if (seen.Add(name))
            {
                Check(schemas, where, schemas![name]!.AsObject(), inputs, unlimited, seen);
                seen.Remove(name);
            }
            return;
        }
        foreach (var combinator in new[] { "allOf", "oneOf", "anyOf" })
        {
            foreach (var part in schema[combinator]?.AsArray() ?? [])
            {
                Check(schemas, where, part!.AsObject(), inputs, unlimited, seen);
            }
        }
        var types = schema["type"] switch
        {
            JsonArray many => many.Select(t => (string)t!).Where(t => t != "null").ToList(),
            JsonValue one => [(string)one!],
            _ => [],
        };
        foreach (var type in types)
        {
            var limited = type switch
            {
                "string" => schema.ContainsKey("maxLength") || schema.ContainsKey("enum") || schema["format"]?.GetValue<string>() is "uuid" or "date-time" or "date",
                "integer" or "number" => schema.ContainsKey("minimum") && schema.ContainsKey("maximum"),
                "array" => schema.ContainsKey("maxItems"),
                _ => true,
            };
            if (type is "string" or "integer" or "number" or "array")
            {
                inputs.Add(where);
                if (!limited)
                {
                    unlimited.Add($"{where} ({type})");
                }
            }
            if (type == "array" && schema["items"] is JsonObject items)
            {
                Check(schemas, $"{where}[]", items, inputs, unlimited, seen);
            }
        }
        foreach (var property in schema["properties"]?.AsObject() ?? [])
        {
            Check(schemas, $"{where}.{property.Key}", property.Value!.AsObject(), inputs, unlimited, seen);
        }
    }
}
