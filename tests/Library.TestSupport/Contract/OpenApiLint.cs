using System.Text;
using System.Text.Json;

namespace Library.TestSupport.Contract;

/// <summary>What <see cref="OpenApiLint"/> found in one document.</summary>
public sealed record LintReport(string Document, int Operations, int DocumentedResponses, int Inputs, int InputsWithoutLimits, IReadOnlyList<string> Findings)
{
    public string Counts => $"{Document}: {Operations} operations, {DocumentedResponses} documented responses, {Inputs} inputs, {InputsWithoutLimits} inputs without limits, {Findings.Count} findings";

    public override string ToString() => Counts + (Findings.Count == 0 ? "" : Environment.NewLine + string.Join(Environment.NewLine, Findings.Select(f => "  " + f)));
}

/// <summary>
/// The rules a published document must follow (issue 17): every operation has an operationId, a
/// summary, tags, a security requirement or the explicit anonymous marker (<c>x-anonymous</c>),
/// and its 4xx answers with a problem-details schema; every input (path, query and header
/// parameters, and every property of a request body, nested ones too) has limits: a string a
/// <c>maxLength</c> (or an enum, or a format that bounds it: uuid, date, date-time), an integer or
/// number a <c>minimum</c> and <c>maximum</c>, an array <c>maxItems</c>; no internal endpoint
/// (token, JWKS, discovery, gRPC, health, the documents themselves) is in it.
/// </summary>
public static class OpenApiLint
{
    private static readonly string[] Methods = ["get", "put", "post", "delete", "patch", "head", "options", "trace"];
    private static readonly string[] BoundedFormats = ["uuid", "date", "date-time", "time"];

    /// <summary>Path fragments that mark an internal endpoint (never in a public document).</summary>
    private static readonly string[] InternalPaths = ["/connect/", "/.well-known", "jwks", "/health", "/alive", "/openapi", "/internal"];

    /// <summary>
    /// The report in the test's output; its findings fail the test when the contract check is
    /// enforced (<see cref="ContractCheck.Mode"/>), so a service still being described can run
    /// its tests with <c>LIBRARY_CONTRACT_CHECK=report</c> and read what is left to do.
    /// </summary>
    public static void AssertFollowsTheRules(LintReport report, Xunit.ITestOutputHelper output)
    {
        output.WriteLine(report.ToString());
        if (ContractCheck.Mode == ContractMode.Enforce)
        {
            Xunit.Assert.True(report.Findings.Count == 0 && report.InputsWithoutLimits == 0, report.ToString());
        }
    }

    public static LintReport Check(string name, string json)
    {
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        var findings = new List<string>();
        int operations = 0, responses = 0, inputs = 0, unlimited = 0;
        if (!root.TryGetProperty("paths", out var paths))
        {
            return new LintReport(name, 0, 0, 0, 0, ["the document has no paths"]);
        }
        foreach (var path in paths.EnumerateObject())
        {
            if (InternalPaths.Any(p => path.Name.Contains(p, StringComparison.OrdinalIgnoreCase)) || path.Name.TrimStart('/').Split('/')[0].Contains('.', StringComparison.Ordinal))
            {
                findings.Add($"{path.Name}: an internal endpoint is in the public document");
            }
            foreach (var method in Methods)
            {
                if (!path.Value.TryGetProperty(method, out var op))
                {
                    continue;
                }
                operations++;
                var where = $"{method.ToUpperInvariant()} {path.Name}";
                if (!HasText(op, "operationId"))
                {
                    findings.Add($"{where}: no operationId");
                }
                if (!HasText(op, "summary"))
                {
                    findings.Add($"{where}: no summary");
                }
                if (!op.TryGetProperty("tags", out var tags) || tags.GetArrayLength() == 0)
                {
                    findings.Add($"{where}: no tags");
                }
                var anonymous = op.TryGetProperty("x-anonymous", out var marker) && marker.ValueKind == JsonValueKind.True;
                var secured = op.TryGetProperty("security", out var security) && security.EnumerateArray().Any(r => r.EnumerateObject().Any());
                if (!anonymous && !secured)
                {
                    findings.Add($"{where}: neither a security requirement nor the x-anonymous marker");
                }

                var fourXx = 0;
                if (op.TryGetProperty("responses", out var answers))
                {
                    foreach (var answer in answers.EnumerateObject())
                    {
                        responses++;
                        if (answer.Name.StartsWith('4'))
                        {
                            fourXx++;
                        }
                        if ((answer.Name.StartsWith('4') || answer.Name.StartsWith('5')) && !IsProblem(root, answer.Value))
                        {
                            findings.Add($"{where}: {answer.Name} has no problem-details schema");
                        }
                    }
                }
                if (fourXx == 0)
                {
                    findings.Add($"{where}: no 4xx answer documented");
                }

                foreach (var parameter in Parameters(path.Value, op))
                {
                    inputs++;
                    var label = $"{where}: parameter {parameter.GetProperty("name").GetString()}";
                    if (parameter.TryGetProperty("schema", out var schema) && Unlimited(root, schema, label, findings, 0))
                    {
                        unlimited++;
                    }
                }
                if (op.TryGetProperty("requestBody", out var body) && body.TryGetProperty("content", out var content))
                {
                    foreach (var media in content.EnumerateObject())
                    {
                        if (media.Value.TryGetProperty("schema", out var schema))
                        {
                            var (count, without) = BodyInputs(root, schema, $"{where}: body", findings, [], 0);
                            inputs += count;
                            unlimited += without;
                        }
                    }
                }
            }
        }
        return new LintReport(name, operations, responses, inputs, unlimited, findings);
    }

    private static IEnumerable<JsonElement> Parameters(JsonElement pathItem, JsonElement op)
    {
        foreach (var holder in new[] { pathItem, op })
        {
            if (holder.TryGetProperty("parameters", out var list))
            {
                foreach (var p in list.EnumerateArray())
                {
                    yield return p;
                }
            }
        }
    }

    private static bool HasText(JsonElement element, string property) =>
        element.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.String && !string.IsNullOrWhiteSpace(value.GetString());

    private static bool IsProblem(JsonElement root, JsonElement response)
    {
        response = Deref(root, response);
        if (!response.TryGetProperty("content", out var content))
        {
            return false;
        }
        foreach (var media in content.EnumerateObject())
        {
            if (media.Value.TryGetProperty("schema", out var schema))
            {
                var resolved = Deref(root, schema);
                if (resolved.TryGetProperty("properties", out var props) && props.TryGetProperty("traceId", out _) && props.TryGetProperty("status", out _))
                {
                    return true;
                }
            }
        }
        return false;
    }

    private static JsonElement Deref(JsonElement root, JsonElement element)
    {
        for (var i = 0; i < 16 && element.ValueKind == JsonValueKind.Object && element.TryGetProperty("$ref", out var r) && r.GetString() is { } target && target.StartsWith("#/", StringComparison.Ordinal); i++)
        {
            var node = root;
            foreach (var part in target[2..].Split('/'))
            {
                if (!node.TryGetProperty(part.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal), out node))
                {
                    return element;
                }
            }
            element = node;
        }
        return element;
    }

    /// <summary>The inputs of a body (each leaf property), and how many have no limits.</summary>
    private static (int Count, int Without) BodyInputs(JsonElement root, JsonElement schema, string label, List<string> findings, HashSet<string> seen, int depth)
    {
        var reference = schema.TryGetProperty("$ref", out var r) ? r.GetString() : null;
        if (reference is not null && !seen.Add(reference) || depth > 8)
        {
            return (0, 0);
        }
        schema = Deref(root, schema);
        // A choice of shapes (a nullable reference is oneOf [{$ref}, {type: null}]): each shape's
        // inputs count, nested objects' properties too.
        if (Branches(schema) is { Count: > 0 } branches && !schema.TryGetProperty("properties", out _))
        {
            int count = 0, without = 0;
            foreach (var branch in branches)
            {
                var (c, w) = BodyInputs(root, branch, label, findings, new HashSet<string>(seen), depth + 1);
                count += c;
                without += w;
            }
            return (count, without);
        }
        var types = Types(schema);
        if (types.Contains("object") && schema.TryGetProperty("properties", out var properties))
        {
            int count = 0, without = 0;
            foreach (var property in properties.EnumerateObject())
            {
                var (c, w) = BodyInputs(root, property.Value, $"{label}.{property.Name}", findings, new HashSet<string>(seen), depth + 1);
                count += c;
                without += w;
            }
            return (count, without);
        }
        var unlimited = Unlimited(root, schema, label, findings, depth) ? 1 : 0;
        if (types.Contains("array") && schema.TryGetProperty("items", out var items))
        {
            var itemTypes = Types(Deref(root, items));
            if (itemTypes.Contains("object"))
            {
                var (c, w) = BodyInputs(root, items, label + "[]", findings, seen, depth + 1);
                return (1 + c, unlimited + w);
            }
        }
        return (1, unlimited);
    }

    /// <summary>The shapes of a oneOf/anyOf/allOf, without the <c>{type: null}</c> of a nullable one.</summary>
    private static List<JsonElement> Branches(JsonElement schema)
    {
        var branches = new List<JsonElement>();
        foreach (var combinator in new[] { "oneOf", "anyOf", "allOf" })
        {
            if (schema.ValueKind == JsonValueKind.Object && schema.TryGetProperty(combinator, out var list) && list.ValueKind == JsonValueKind.Array)
            {
                branches.AddRange(list.EnumerateArray().Where(b => !(Types(b) is { Count: 1 } only && only.Contains("null"))));
            }
        }
        return branches;
    }

    /// <summary>A leaf input without its limits (reported to <paramref name="findings"/>).</summary>
    private static bool Unlimited(JsonElement root, JsonElement schema, string label, List<string> findings, int depth)
    {
        schema = Deref(root, schema);
        // A choice of shapes is limited when every shape is (each reported on its own).
        if (Branches(schema) is { Count: > 0 } branches && !schema.TryGetProperty("type", out _) && depth < 8)
        {
            var any = false;
            foreach (var branch in branches)
            {
                any |= Unlimited(root, branch, label, findings, depth + 1);
            }
            return any;
        }
        var types = Types(schema);
        var missing = new StringBuilder();
        var bounded = schema.TryGetProperty("enum", out _) || schema.TryGetProperty("const", out _);
        if (types.Contains("integer") || types.Contains("number"))
        {
            if (!bounded && (!schema.TryGetProperty("minimum", out _) || !schema.TryGetProperty("maximum", out _)))
            {
                missing.Append("minimum/maximum ");
            }
        }
        else if (types.Contains("string"))
        {
            var format = schema.TryGetProperty("format", out var f) ? f.GetString() : null;
            if (!bounded && !schema.TryGetProperty("maxLength", out _) && !BoundedFormats.Contains(format))
            {
                missing.Append("maxLength ");
            }
        }
        if (types.Contains("array"))
        {
            if (!schema.TryGetProperty("maxItems", out _))
            {
                missing.Append("maxItems ");
            }
            if (schema.TryGetProperty("items", out var items) && !Types(Deref(root, items)).Contains("object") && depth < 8)
            {
                var inner = new List<string>();
                if (Unlimited(root, items, label + "[]", inner, depth + 1))
                {
                    missing.Append("(items: ").Append(string.Join(", ", inner.Select(i => i[(i.LastIndexOf(':') + 2)..]))).Append(") ");
                }
            }
        }
        if (missing.Length == 0)
        {
            return false;
        }
        findings.Add($"{label}: no {missing.ToString().Trim()}");
        return true;
    }

    private static HashSet<string> Types(JsonElement schema)
    {
        var set = new HashSet<string>();
        if (schema.ValueKind != JsonValueKind.Object)
        {
            return set;
        }
        if (schema.TryGetProperty("type", out var type))
        {
            if (type.ValueKind == JsonValueKind.String)
            {
                set.Add(type.GetString()!);
            }
            else if (type.ValueKind == JsonValueKind.Array)
            {
                set.UnionWith(type.EnumerateArray().Select(t => t.GetString()!));
            }
        }
        else if (schema.TryGetProperty("properties", out _))
        {
            set.Add("object");
        }
        foreach (var combinator in new[] { "oneOf", "anyOf", "allOf" })
        {
            if (schema.TryGetProperty(combinator, out var list))
            {
                foreach (var s in list.EnumerateArray())
                {
                    set.UnionWith(Types(s));
                }
            }
        }
        return set;
    }
}
