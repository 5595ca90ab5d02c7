extern alias Gateway;

using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Library.Gateway.OpenApi;
using Library.Tests.InProcess;
using GatewayProgram = Gateway::Program;

namespace Library.Gateway.Tests;

/// <summary>
/// The whole library behind a gateway whose budgets are one request a minute, its answers checked
/// against the merged public document: every operation's promised 429 (and, with a body, 413) is
/// produced here, where only the gateway can produce them.
/// </summary>
public sealed class OneRequestBudgetLibrary : InProcessLibrary
{
    public const int MaxImportBytes = 128 * 1024;

    protected override IReadOnlyDictionary<string, string?> GatewaySettings { get; } = new Dictionary<string, string?>
    {
        // Three: the contract check's and the test's reads of the document, then one more.
        ["RateLimiting:AnonymousPerMinute"] = "3",
        ["RateLimiting:UserPerMinute"] = "1",
        ["RateLimiting:LoginPerMinute"] = "1",
        ["RateLimiting:LoginPerIpPerMinute"] = "1",
        ["RateLimiting:RegisterPerMinute"] = "1",
        ["RateLimiting:MaxImportBytes"] = MaxImportBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    public override async ValueTask InitializeAsync()
    {
        await base.InitializeAsync();
        Gateway.ContractDocumentPath = PublicApiDocument.Path;
    }
}

public sealed class GatewayRefusalsTests(OneRequestBudgetLibrary library, ITestOutputHelper output) : IClassFixture<OneRequestBudgetLibrary>
{
    private Task<List<PublicOperations.Operation>> OperationsAsync() => PublicOperations.ListAsync(library.Gateway);
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Every_operation_answers_429_with_Retry_After_once_its_budget_is_spent()
    {
        var operations = await OperationsAsync();
        var (_, token) = await library.Users.NewUserAsync("librarian");
        using var client = library.Gateway.CreateClient();

        // Spend both budgets (anonymous per address, signed in per user), then every operation is refused.
        var spent = System.Diagnostics.Stopwatch.StartNew();
        async Task SpendAsync()
        {
            foreach (var spend in new[] { null, token })
            {
                for (var i = 0; i < 5; i++)
                {
                    using var read = PublicOperations.Request(new PublicOperations.Operation("GET", "/api/books", "/api/books", true, false, null), spend);
                    using var answer = await client.SendAsync(read, Ct);
                    if (answer.StatusCode == HttpStatusCode.TooManyRequests)
                    {
                        break;
                    }
                }
            }
            spent.Restart();
        }
        await SpendAsync();

        var refused = 0;
        foreach (var op in operations)
        {
            var request = PublicOperations.Request(op, op.Anonymous ? null : token);
            var response = await client.SendAsync(request, Ct);
            if (response.StatusCode != HttpStatusCode.TooManyRequests && spent.Elapsed > Gateway::Library.Gateway.Routing.RateLimitPolicies.Window * 0.75)
            {
                // The budgets are per minute: on a loaded machine the loop can outlast the window,
                // and a budget that time has given back is not spent. Spend it again and ask once more.
                output.WriteLine($"{op.Method} {op.Template}: {(int)response.StatusCode} {spent.Elapsed.TotalSeconds:F0} s after the budgets were spent; spending them again");
                request.Dispose();
                response.Dispose();
                await SpendAsync();
                request = PublicOperations.Request(op, op.Anonymous ? null : token);
                response = await client.SendAsync(request, Ct);
            }
            using (request)
            using (response)
            {
                output.WriteLine($"{op.Method} {op.Template}: {(int)response.StatusCode}");
                Assert.True(response.StatusCode == HttpStatusCode.TooManyRequests, $"{op.Method} {op.Template} answered {(int)response.StatusCode}, not 429");
                Assert.True(response.Headers.RetryAfter?.Delta > TimeSpan.Zero, $"{op.Method} {op.Template}: no Retry-After");
            }
            refused++;
        }
        Assert.Equal(operations.Count, refused);
        Assert.True(refused > 60, $"only {refused} operations in the merged document");
    }
}

/// <summary>The operations of the gateway's merged document, and a request for each.</summary>
internal static class PublicOperations
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    internal sealed record Operation(string Method, string Path, string Template, bool Anonymous, bool HasBody, string? BodyType);

    /// <summary>Every operation of the merged document, with its path parameters filled in.</summary>
    internal static async Task<List<Operation>> ListAsync(Library.TestSupport.ServiceHost<GatewayProgram> gateway)
    {
        using var client = gateway.CreateClient();
        var document = await client.GetFromJsonAsync<JsonElement>(PublicApiDocument.Path, Ct);
        var operations = new List<Operation>();
        foreach (var path in document.GetProperty("paths").EnumerateObject())
        {
            foreach (var op in path.Value.EnumerateObject().Where(o => o.Name is "get" or "post" or "put" or "patch" or "delete"))
            {
                var concrete = path.Name;
                if (op.Value.TryGetProperty("parameters", out var parameters))
                {
                    foreach (var p in parameters.EnumerateArray().Where(p => p.GetProperty("in").GetString() == "path"))
                    {
                        var isUuid = p.TryGetProperty("schema", out var schema) && schema.TryGetProperty("format", out var format) && format.GetString() == "uuid";
                        concrete = concrete.Replace("{" + p.GetProperty("name").GetString() + "}", isUuid ? Guid.NewGuid().ToString() : "LIB00000001", StringComparison.Ordinal);
                    }
                }
                var anonymous = op.Value.TryGetProperty("x-anonymous", out var a) && a.ValueKind == JsonValueKind.True;
                string? bodyType = null;
                if (op.Value.TryGetProperty("requestBody", out var body))
                {
                    bodyType = body.GetProperty("content").EnumerateObject().First().Name;
                }
                operations.Add(new Operation(op.Name.ToUpperInvariant(), concrete, path.Name, anonymous, bodyType is not null, bodyType));
            }
        }
        return operations;
    }

    internal static HttpRequestMessage Request(Operation op, string? token, int bodyBytes = 2)
    {
        var request = new HttpRequestMessage(new HttpMethod(op.Method), op.Path);
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        if (op.HasBody)
        {
            var content = new ByteArrayContent(bodyBytes <= 2 ? "{}"u8.ToArray() : Encoding.ASCII.GetBytes(new string(' ', bodyBytes - 2) + "{}"));
            content.Headers.ContentType = new MediaTypeHeaderValue(op.BodyType!.Contains("json", StringComparison.Ordinal) ? "application/json" : op.BodyType);
            request.Content = content;
            // A body over the limit is refused from its Content-Length: wait for that answer
            // rather than write megabytes into a connection the server closes after it.
            request.Headers.ExpectContinue = bodyBytes > 2;
        }
        return request;
    }
}

/// <summary>Bodies over the gateway's limits, on the ordinary budgets: every operation with a body promises 413.</summary>
public sealed class GatewayBodyLimitTests(PublicLibrary library, ITestOutputHelper output) : IClassFixture<PublicLibrary>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Every_operation_with_a_body_answers_413_to_a_body_over_the_limit()
    {
        var operations = (await PublicOperations.ListAsync(library.Gateway)).Where(o => o.HasBody).ToList();
        using var client = library.Gateway.CreateClient();

        foreach (var op in operations)
        {
            var limit = op.Template == "/api/books/import" ? 16 * 1024 * 1024 : 64 * 1024;
            using var request = PublicOperations.Request(op, null, limit + 1);
            using var response = await client.SendAsync(request, Ct);
            output.WriteLine($"{op.Method} {op.Template}: {(int)response.StatusCode}");
            Assert.True(response.StatusCode == HttpStatusCode.RequestEntityTooLarge, $"{op.Method} {op.Template} answered {(int)response.StatusCode}, not 413");
        }
        Assert.NotEmpty(operations);
    }
}
