using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Library.TestSupport.Contract;

namespace Library.UserService.Tests;

/// <summary>
/// The user service's published document, as a running service serves it: it follows the
/// document rules (<see cref="OpenApiLint"/>), keeps the internal endpoints out, and the
/// contract check reading it catches an answer the document does not promise.
/// </summary>
public class OpenApiDocumentTests(UserServiceFixture fixture, ITestOutputHelper output) : IClassFixture<UserServiceFixture>
{
    private async Task<string> DocumentAsync()
    {
        using var client = fixture.Client();
        return await client.GetStringAsync("/openapi/v1.json", TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task The_document_follows_the_rules_every_public_document_follows()
    {
        var report = OpenApiLint.Check("userservice", await DocumentAsync());
        output.WriteLine(report.ToString());
        Assert.True(report.Operations >= 16, report.Counts);
        Assert.Empty(report.Findings);
        Assert.Equal(0, report.InputsWithoutLimits);
    }

    [Fact]
    public async Task Token_keys_and_discovery_are_not_in_the_document_and_logins_are_marked_anonymous()
    {
        using var document = JsonDocument.Parse(await DocumentAsync());
        var paths = document.RootElement.GetProperty("paths").EnumerateObject().Select(p => p.Name).ToList();
        Assert.DoesNotContain(paths, p => p.Contains("connect", StringComparison.Ordinal) || p.Contains("well-known", StringComparison.Ordinal) || p.Contains("library.", StringComparison.Ordinal));
        var login = document.RootElement.GetProperty("paths").GetProperty("/api/auth/login").GetProperty("post");
        Assert.True(login.GetProperty("x-anonymous").GetBoolean());
        var role = document.RootElement.GetProperty("paths").GetProperty("/api/users/{id}/role").GetProperty("put");
        Assert.Equal("admin", role.GetProperty("security")[0].GetProperty("Bearer")[0].GetString());
        Assert.True(role.GetProperty("responses").TryGetProperty("403", out _));
        Assert.Equal("bearer", document.RootElement.GetProperty("components").GetProperty("securitySchemes").GetProperty("Bearer").GetProperty("scheme").GetString());
    }

    /// <summary>The check itself, fed deliberately wrong answers for the real document: each one is caught.</summary>
    [Theory]
    [InlineData(418, """{"title":"I'm a teapot","status":418,"traceId":"x"}""", "answered 418, which it does not document")]
    [InlineData(200, """{"id":"0197a000-0000-7000-8000-000000000000","firstName":"Ann"}""", "not valid against its schema")]
    [InlineData(404, """{"title":"Not Found","status":404}""", "not valid against its schema")]
    [InlineData(200, """{"id":"not-a-guid","email":"a@b.test","firstName":"A","lastName":"B","role":"member","active":true,"createdAt":"2026-01-01T00:00:00Z","patronGroupId":"0197a000-0000-7000-8000-000000000000","keepLoanHistory":true}""", "not valid against its schema")]
    public async Task A_wrong_answer_is_caught_naming_the_operation_and_the_status(int status, string body, string expected)
    {
        var json = await DocumentAsync();
        var check = ContractCheck.Handler("userservice (deliberately wrong answers)", _ => Task.FromResult(json), ContractMode.Enforce, record: false);
        check.InnerHandler = new Answer((HttpStatusCode)status, body, status >= 400 ? "application/problem+json" : "application/json");
        using var client = new HttpClient(check) { BaseAddress = new Uri("http://userservice.test") };

        var failure = await Assert.ThrowsAsync<ContractViolationException>(() => client.GetAsync("/api/users/me", TestContext.Current.CancellationToken));

        output.WriteLine(failure.Message);
        Assert.Contains("GetMyProfile", failure.Message, StringComparison.Ordinal);
        Assert.Contains(status.ToString(System.Globalization.CultureInfo.InvariantCulture), failure.Message, StringComparison.Ordinal);
        Assert.Contains(expected, failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_right_answer_passes_and_an_api_path_the_document_lacks_is_caught()
    {
        var json = await DocumentAsync();
        var check = ContractCheck.Handler("userservice (deliberately wrong answers)", _ => Task.FromResult(json), ContractMode.Enforce, record: false);
        check.InnerHandler = new Answer(HttpStatusCode.OK, """{"id":"0197a000-0000-7000-8000-000000000000","email":"a@b.test","firstName":"A","lastName":"B","role":"member","active":true,"createdAt":"2026-01-01T00:00:00Z","patronGroupId":"0197a000-0000-7000-8000-000000000000","keepLoanHistory":true}""", "application/json");
        using var client = new HttpClient(check) { BaseAddress = new Uri("http://userservice.test") };
        var ct = TestContext.Current.CancellationToken;

        using var fine = await client.GetAsync("/api/users/me", ct);
        Assert.Equal("a@b.test", (await fine.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("email").GetString());

        var failure = await Assert.ThrowsAsync<ContractViolationException>(() => client.GetAsync("/api/users/me/secrets", ct));
        Assert.Contains("the document has no such operation", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_body_may_be_refused_for_its_media_type_and_a_bad_token_on_an_anonymous_operation_is_documented()
    {
        using var document = JsonDocument.Parse(await DocumentAsync());
        var paths = document.RootElement.GetProperty("paths");
        var operations = paths.EnumerateObject().SelectMany(p => p.Value.EnumerateObject().Select(o => (Name: $"{o.Name} {p.Name}", Operation: o.Value))).ToList();
        Assert.Contains(operations, o => o.Operation.TryGetProperty("requestBody", out _));
        foreach (var (name, operation) in operations)
        {
            var responses = operation.GetProperty("responses");
            Assert.True(responses.TryGetProperty("415", out _) == operation.TryGetProperty("requestBody", out _), $"{name}: 415 exactly when it takes a body");
            Assert.True(responses.TryGetProperty("401", out _), $"{name}: 401 (a bad token is refused even where none is needed)");
        }
        // Log-in and refresh have a 401 of their own (wrong password, spent token): it names the gateway's reason too.
        foreach (var path in new[] { "/api/auth/login", "/api/auth/refresh" })
        {
            var unauthorized = paths.GetProperty(path).GetProperty("post").GetProperty("responses").GetProperty("401").GetProperty("description").GetString();
            Assert.Contains(". Also: an Authorization header", unauthorized, StringComparison.Ordinal);
            Assert.Contains("refused by the gateway", unauthorized, StringComparison.Ordinal);
        }
        var register = paths.GetProperty("/api/auth/register").GetProperty("post").GetProperty("responses");
        Assert.Contains("application/json", register.GetProperty("415").GetProperty("description").GetString(), StringComparison.Ordinal);
    }

    /// <summary>
    /// Kestrel's own refusal (empty body, <c>Connection: close</c>, none of the gateway's headers) is
    /// not the application's answer and is not judged; the same status from the application is.
    /// </summary>
    [Fact]
    public async Task A_refusal_of_the_http_server_itself_is_not_judged_but_the_same_status_from_the_app_is()
    {
        var json = await DocumentAsync();
        var ct = TestContext.Current.CancellationToken;
        var kestrel = ContractCheck.Handler("userservice (protocol-level)", _ => Task.FromResult(json), ContractMode.Enforce, record: false);
        kestrel.InnerHandler = new ProtocolLevelRefusal(HttpStatusCode.RequestUriTooLong);
        using (var client = new HttpClient(kestrel) { BaseAddress = new Uri("http://userservice.test") })
        using (var refused = await client.GetAsync("/api/users?search=x", ct))
        {
            Assert.Equal(HttpStatusCode.RequestUriTooLong, refused.StatusCode);
        }

        var app = ContractCheck.Handler("userservice (protocol-level)", _ => Task.FromResult(json), ContractMode.Enforce, record: false);
        app.InnerHandler = new Answer(HttpStatusCode.RequestUriTooLong, """{"title":"URI Too Long","status":414,"traceId":"x"}""", "application/problem+json");
        using var appClient = new HttpClient(app) { BaseAddress = new Uri("http://userservice.test") };
        var failure = await Assert.ThrowsAsync<ContractViolationException>(() => appClient.GetAsync("/api/users?search=x", ct));
        Assert.Contains("answered 414, which it does not document", failure.Message, StringComparison.Ordinal);
    }

    private sealed class ProtocolLevelRefusal(HttpStatusCode status) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = new HttpResponseMessage(status) { Content = new ByteArrayContent([]), RequestMessage = request };
            response.Content.Headers.ContentLength = 0;
            response.Headers.ConnectionClose = true;
            return Task.FromResult(response);
        }
    }

    private sealed class Answer(HttpStatusCode status, string body, string mediaType) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(new HttpResponseMessage(status) { Content = new StringContent(body, Encoding.UTF8, mediaType), RequestMessage = request });
    }
}
