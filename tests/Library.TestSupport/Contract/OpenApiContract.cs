using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;

namespace Library.TestSupport.Contract;

/// <summary>One operation of a document: where it is, and the answers it promises.</summary>
public sealed record ContractOperation(string Method, string Template, string Key, JsonElement Element)
{
    public IEnumerable<string> Statuses => Element.TryGetProperty("responses", out var r) ? r.EnumerateObject().Select(p => p.Name) : [];
}

/// <summary>
/// A published OpenAPI 3.1 document, read as JSON: finds the operation a request went to (method
/// and path template, the literal segments preferred, path parameters matched by their format as
/// routing would), and checks an answer against it: the status is one the operation documents,
/// the body is valid against that response's schema. Schemas are JSON Schema 2020-12 in OpenAPI
/// 3.1, validated by JsonSchema.Net with the whole document registered, so its
/// <c>#/components/schemas/...</c> references resolve.
/// </summary>
public sealed class OpenApiContract
{
    private static int _documents;
    private readonly JsonDocument _document;
    private readonly Uri _baseUri;
    private readonly BuildOptions _build;
    private readonly Dictionary<string, JsonSchema> _schemas = new();
    private readonly Lock _lock = new();

    public OpenApiContract(string name, string json)
    {
        Name = name;
        var node = JsonNode.Parse(json)!;
        WithoutOpenApiKeywords(node, parentKey: null);
        _document = JsonDocument.Parse(node.ToJsonString());
        _baseUri = new Uri($"https://contract.library.test/{Interlocked.Increment(ref _documents)}/{Uri.EscapeDataString(name)}.json");
        var registry = new SchemaRegistry();
        registry.Register(_baseUri, new JsonElementBaseDocument(_document.RootElement, _baseUri));
        _build = new BuildOptions { SchemaRegistry = registry };
        var operations = new List<ContractOperation>();
        if (Root.TryGetProperty("paths", out var paths))
        {
            foreach (var path in paths.EnumerateObject())
            {
                foreach (var op in path.Value.EnumerateObject().Where(o => o.Value.ValueKind == JsonValueKind.Object && IsMethod(o.Name)))
                {
                    var key = op.Value.TryGetProperty("operationId", out var id) && id.GetString() is { Length: > 0 } s ? s : $"{op.Name.ToUpperInvariant()} {path.Name}";
                    operations.Add(new ContractOperation(op.Name.ToUpperInvariant(), path.Name, key, op.Value));
                }
            }
        }
        Operations = operations;
    }

    public string Name { get; }
    public JsonElement Root => _document.RootElement;
    public IReadOnlyList<ContractOperation> Operations { get; }

    /// <summary>Every (operation, status) pair the document promises.</summary>
    public IEnumerable<(string Operation, string Status)> Promised => Operations.SelectMany(o => o.Statuses.Select(s => (o.Key, s)));

    private static bool IsMethod(string name) => name is "get" or "put" or "post" or "delete" or "patch" or "head" or "options" or "trace";

    /// <summary>The operation for a request, or null when no path template of the document matches.</summary>
    public ContractOperation? Find(string method, string path, out bool pathKnown)
    {
        var segments = path.Trim('/').Split('/', StringSplitOptions.RemoveEmptyEntries).Select(Uri.UnescapeDataString).ToArray();
        ContractOperation? best = null;
        var bestLiterals = -1;
        pathKnown = false;
        foreach (var operation in Operations)
        {
            var literals = Match(operation, segments);
            if (literals < 0)
            {
                continue;
            }
            pathKnown = true;
            if (string.Equals(operation.Method, method, StringComparison.OrdinalIgnoreCase) && literals > bestLiterals)
            {
                best = operation;
                bestLiterals = literals;
            }
        }
        return best;
    }

    /// <summary>The number of literal segments matched, or -1.</summary>
    private static int Match(ContractOperation operation, string[] segments)
    {
        var template = operation.Template.Trim('/').Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (template.Length != segments.Length)
        {
            return -1;
        }
        var literals = 0;
        for (var i = 0; i < template.Length; i++)
        {
            var t = template[i];
            if (t.StartsWith('{') && t.EndsWith('}'))
            {
                if (!FitsParameter(operation.Element, t[1..^1], segments[i]))
                {
                    return -1;
                }
            }
            else if (string.Equals(t, segments[i], StringComparison.OrdinalIgnoreCase))
            {
                literals++;
            }
            else
            {
                return -1;
            }
        }
        return literals;
    }

    /// <summary>A route constraint (<c>{id:guid}</c>, <c>{n:int}</c>) shows as the parameter's format: routing would not match otherwise.</summary>
    private static bool FitsParameter(JsonElement operation, string name, string value)
    {
        if (!operation.TryGetProperty("parameters", out var parameters))
        {
            return true;
        }
        foreach (var p in parameters.EnumerateArray())
        {
            if (p.TryGetProperty("name", out var n) && n.GetString() == name && p.TryGetProperty("schema", out var schema))
            {
                var format = schema.TryGetProperty("format", out var f) ? f.GetString() : null;
                return format switch
                {
                    "uuid" => Guid.TryParse(value, out _),
                    "int32" or "int64" => long.TryParse(value, out _),
                    _ => true,
                };
            }
        }
        return true;
    }

    /// <summary>What is wrong with an answer to the operation, or null when it is as documented.</summary>
    public string? Check(ContractOperation operation, HttpStatusCode status, string? mediaType, string body)
    {
        var code = ((int)status).ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (!operation.Element.TryGetProperty("responses", out var responses))
        {
            return $"{operation.Key} ({operation.Method} {operation.Template}) documents no responses, answered {code}";
        }
        if (!responses.TryGetProperty(code, out var response) && !responses.TryGetProperty($"{code[0]}XX", out response) && !responses.TryGetProperty("default", out response))
        {
            return $"{operation.Key} ({operation.Method} {operation.Template}) answered {code}, which it does not document (documented: {string.Join(", ", operation.Statuses)})";
        }
        if (response.TryGetProperty("$ref", out var reference))
        {
            response = Resolve(reference.GetString()!);
        }
        if (!response.TryGetProperty("content", out var content) || body.Length == 0)
        {
            // A body the document does not describe: only a JSON one is a broken promise (a 304 or
            // a HEAD has none; a CSV or a redirect page is not JSON).
            return body.Length > 0 && IsJson(mediaType) && !content.ValueKindIsObject()
                ? $"{operation.Key} answered {code} with a JSON body, but documents none for {code}"
                : null;
        }
        if (!IsJson(mediaType))
        {
            return null;
        }
        JsonElement? schemaElement = null;
        foreach (var media in content.EnumerateObject())
        {
            if (string.Equals(media.Name, mediaType, StringComparison.OrdinalIgnoreCase) || (schemaElement is null && IsJson(media.Name)))
            {
                schemaElement = media.Value.TryGetProperty("schema", out var s) ? s : null;
            }
        }
        if (schemaElement is null)
        {
            return null;
        }
        JsonElement instance;
        try
        {
            instance = JsonDocument.Parse(body).RootElement;
        }
        catch (JsonException ex)
        {
            return $"{operation.Key} answered {code} with a body that is not JSON: {ex.Message}";
        }
        var schema = Schema(operation.Key + " " + code + " " + mediaType, schemaElement.Value);
        var result = schema.Evaluate(instance, new EvaluationOptions { OutputFormat = OutputFormat.List, RequireFormatValidation = true });
        if (result.IsValid)
        {
            return null;
        }
        var errors = (result.Details ?? []).Where(d => d.Errors is { Count: > 0 })
            .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation} ({d.EvaluationPath}): {e.Value}"))
            .Distinct().Take(8);
        var shown = body.Length > 600 ? body[..600] + "..." : body;
        return $"{operation.Key} ({operation.Method} {operation.Template}) answered {code} with a body not valid against its schema: {string.Join("; ", errors)}. Body: {shown}";
    }

    private JsonSchema Schema(string key, JsonElement element)
    {
        lock (_lock)
        {
            if (!_schemas.TryGetValue(key, out var schema))
            {
                // Its references ("#/components/schemas/X") point into the registered document;
                // the schema itself gets a URI of its own.
                var node = JsonNode.Parse(element.GetRawText())!;
                Absolute(node);
                schema = JsonSchema.FromText(node.ToJsonString(), _build, new Uri(_baseUri, $"responses/{_schemas.Count}.json"));
                _schemas[key] = schema;
            }
            return schema;
        }
    }

    /// <summary>Members whose keys are names (a property called "example"), not keywords.</summary>
    private static readonly HashSet<string> NameMaps = ["properties", "patternProperties", "$defs", "definitions", "schemas", "dependentSchemas"];

    /// <summary>OpenAPI's own schema keywords, which a JSON Schema 2020-12 validator refuses as unknown.</summary>
    private static readonly HashSet<string> OpenApiKeywords = ["example", "discriminator", "xml", "externalDocs"];

    /// <summary>
    /// Drops what is OpenAPI's and not JSON Schema's (<c>example</c>, <c>discriminator</c>,
    /// <c>xml</c>, <c>externalDocs</c>, <c>x-*</c> extensions): annotations that say nothing about
    /// validity, and that JsonSchema.Net 8 refuses as unknown keywords.
    /// </summary>
    private static void WithoutOpenApiKeywords(JsonNode? node, string? parentKey)
    {
        switch (node)
        {
            case JsonObject o:
                if (parentKey is null || !NameMaps.Contains(parentKey))
                {
                    foreach (var key in o.Select(p => p.Key).Where(k => OpenApiKeywords.Contains(k) || k.StartsWith("x-", StringComparison.Ordinal)).ToList())
                    {
                        o.Remove(key);
                    }
                }
                foreach (var (key, child) in o.ToList())
                {
                    WithoutOpenApiKeywords(child, key);
                }
                break;
            case JsonArray a:
                foreach (var child in a)
                {
                    WithoutOpenApiKeywords(child, null);
                }
                break;
        }
    }

    private void Absolute(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                if (o["$ref"] is JsonValue r && r.GetValue<string>() is { } target && target.StartsWith('#'))
                {
                    o["$ref"] = _baseUri + target;
                }
                foreach (var (_, child) in o.ToList())
                {
                    Absolute(child);
                }
                break;
            case JsonArray a:
                foreach (var child in a)
                {
                    Absolute(child);
                }
                break;
        }
    }

    private JsonElement Resolve(string reference)
    {
        var node = Root;
        foreach (var part in reference.TrimStart('#').Trim('/').Split('/'))
        {
            node = node.GetProperty(part.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal));
        }
        return node;
    }

    private static bool IsJson(string? mediaType) =>
        mediaType is not null && (mediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase) || mediaType.EndsWith("+json", StringComparison.OrdinalIgnoreCase));
}

internal static class JsonElementExtensions
{
    public static bool ValueKindIsObject(this JsonElement element) => element.ValueKind == JsonValueKind.Object;
}
