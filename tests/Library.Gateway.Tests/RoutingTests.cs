extern alias UserService;

using System.Net;
using System.Net.Http.Json;
using Library.TestSupport;
using UserServiceProgram = UserService::Program;

namespace Library.Gateway.Tests;

public sealed class RoutingFixture : IAsyncLifetime
{
    public Destination Users { get; private set; } = null!;
    public Destination BooksA { get; private set; } = null!;
    public Destination BooksB { get; private set; } = null!;
    public Destination Lending { get; private set; } = null!;
    public ServiceHost<Program> Gateway { get; private set; } = null!;
    public HttpClient Client { get; private set; } = null!;
    public RealUserService<UserServiceProgram> Issuer { get; private set; } = null!;
    public string Token { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Issuer = await RealUserService<UserServiceProgram>.StartAsync();
        Token = await Issuer.AdminTokenAsync();
        Users = await Destination.StartAsync("userservice");
        BooksA = await Destination.StartAsync("bookservice");
        BooksB = await Destination.StartAsync("bookservice");
        Lending = await Destination.StartAsync("lendingservice");
        // Exactly the keys Aspire's service discovery (and eng/run.sh) set.
        Gateway = new ServiceHost<Program>(new Dictionary<string, string?>
        {
            ["services:userservice:http:0"] = Users.Address,
            ["services:bookservice:http:0"] = BooksA.Address,
            ["services:bookservice:http:1"] = BooksB.Address,
            ["services:lendingservice:http:0"] = Lending.Address,
            // Tokens are checked against the real issuer's keys; requests go to the echoes.
            ["Auth:MetadataAddress"] = Issuer.MetadataAddress,
            // The lending routes wait 2 s for an answer (30 s by default).
            ["Timeouts:lendingservice"] = "2",
        });
        Client = Gateway.CreateClient();
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Gateway.DisposeAsync();
        foreach (var d in new[] { Users, BooksA, BooksB, Lending })
        {
            await d.DisposeAsync();
        }
        await Issuer.DisposeAsync();
    }
}

public sealed class RoutingTests(RoutingFixture fixture) : IClassFixture<RoutingFixture>
{
    // Every path of the API contract (shared/API.md), with the service that owns it.
    public static TheoryData<string, string, string> ContractPaths => new()
    {
        { "POST", "/api/auth/register", "userservice" },
        { "POST", "/api/auth/login", "userservice" },
        { "POST", "/api/auth/refresh", "userservice" },
        { "POST", "/api/auth/logout", "userservice" },
        { "GET", "/api/users/me", "userservice" },
        { "POST", "/api/users", "userservice" },
        { "GET", "/api/users?search=ann&role=member&page=2&pageSize=5", "userservice" },
        { "GET", "/api/users/0193a5b2-7c1e-7000-8000-000000000001", "userservice" },
        { "PUT", "/api/users/0193a5b2-7c1e-7000-8000-000000000001/role", "userservice" },
        { "POST", "/api/users/0193a5b2-7c1e-7000-8000-000000000001/deactivate", "userservice" },
        { "PUT", "/api/users/0193a5b2-7c1e-7000-8000-000000000001/patron-group", "userservice" },
        { "GET", "/api/patron-groups", "userservice" },
        { "POST", "/api/patron-groups", "userservice" },
        { "PUT", "/api/patron-groups/0193a5b2-7c1e-7000-8000-000000000007", "userservice" },
        { "DELETE", "/api/patron-groups/0193a5b2-7c1e-7000-8000-000000000007", "userservice" },
        { "GET", "/api/books?search=darkness&available=true&sort=popular", "bookservice" },
        { "GET", "/api/books/facets?category=fantasy", "bookservice" },
        { "GET", "/api/books/0193a5b2-7c1e-7000-8000-000000000002", "bookservice" },
        { "POST", "/api/books", "bookservice" },
        { "PUT", "/api/books/0193a5b2-7c1e-7000-8000-000000000002", "bookservice" },
        { "DELETE", "/api/books/0193a5b2-7c1e-7000-8000-000000000002", "bookservice" },
        { "PUT", "/api/books/0193a5b2-7c1e-7000-8000-000000000002/stock", "bookservice" },
        { "GET", "/api/books/0193a5b2-7c1e-7000-8000-000000000002/recommendations?limit=10", "bookservice" },
        { "GET", "/api/recommendations?limit=10", "bookservice" },
        { "GET", "/api/authors", "bookservice" },
        { "POST", "/api/authors", "bookservice" },
        { "DELETE", "/api/authors/0193a5b2-7c1e-7000-8000-000000000003", "bookservice" },
        { "GET", "/api/authors/0193a5b2-7c1e-7000-8000-000000000003/books", "bookservice" },
        { "GET", "/api/categories", "bookservice" },
        { "PUT", "/api/categories/0193a5b2-7c1e-7000-8000-000000000004", "bookservice" },
        { "POST", "/api/loans", "lendingservice" },
        { "POST", "/api/loans/0193a5b2-7c1e-7000-8000-000000000005/return", "lendingservice" },
        { "POST", "/api/loans/0193a5b2-7c1e-7000-8000-000000000005/renew", "lendingservice" },
        { "GET", "/api/loans?status=overdue&page=1", "lendingservice" },
        { "GET", "/api/loans/0193a5b2-7c1e-7000-8000-000000000005", "lendingservice" },
        { "GET", "/api/borrowers?page=1&pageSize=20", "lendingservice" },
        { "GET", "/api/unavailable-books", "lendingservice" },
        { "POST", "/api/holds", "lendingservice" },
        { "GET", "/api/holds?page=1", "lendingservice" },
        { "DELETE", "/api/holds/0193a5b2-7c1e-7000-8000-000000000006", "lendingservice" },
        // Circulation like a library runs it: copies, the desk, rules, the calendar.
        { "GET", "/api/books/0193a5b2-7c1e-7000-8000-000000000001/copies", "lendingservice" },
        { "POST", "/api/books/0193a5b2-7c1e-7000-8000-000000000001/copies", "lendingservice" },
        { "GET", "/api/copies/by-barcode/LIB00000042", "lendingservice" },
        { "PATCH", "/api/copies/0193a5b2-7c1e-7000-8000-000000000008", "lendingservice" },
        { "POST", "/api/circulation/check-out", "lendingservice" },
        { "POST", "/api/circulation/check-in", "lendingservice" },
        { "GET", "/api/loan-types", "lendingservice" },
        { "GET", "/api/circulation-rules", "lendingservice" },
        { "PUT", "/api/circulation-rules", "lendingservice" },
        { "GET", "/api/circulation-rules/resolve?userId=0193a5b2-7c1e-7000-8000-000000000003&copyId=0193a5b2-7c1e-7000-8000-000000000008", "lendingservice" },
        { "GET", "/api/calendar", "lendingservice" },
        { "PUT", "/api/calendar", "lendingservice" },
        // Fines and blocks: the reader's account and blocks are lending's although under /api/users.
        { "GET", "/api/fines?userId=0193a5b2-7c1e-7000-8000-000000000001&status=open", "lendingservice" },
        { "POST", "/api/fines/0193a5b2-7c1e-7000-8000-000000000009/payments", "lendingservice" },
        { "POST", "/api/fines/0193a5b2-7c1e-7000-8000-000000000009/waive", "lendingservice" },
        { "GET", "/api/users/0193a5b2-7c1e-7000-8000-000000000001/account", "lendingservice" },
        { "POST", "/api/users/0193a5b2-7c1e-7000-8000-000000000001/blocks", "lendingservice" },
        { "DELETE", "/api/blocks/0193a5b2-7c1e-7000-8000-00000000000a", "lendingservice" },
        // Notices: the reader's own feed.
        { "GET", "/api/notices?page=1", "lendingservice" },
        // Reports (issue 14).
        { "GET", "/api/reports/circulation?from=2026-01-01&to=2026-12-31", "lendingservice" },
        { "GET", "/api/reports/popular?from=2026-01-01&to=2026-12-31&limit=10", "lendingservice" },
    };

    [Theory]
    [MemberData(nameof(ContractPaths))]
    public async Task Every_contract_path_reaches_the_service_that_owns_it_unchanged(string method, string target, string service)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), target);
        request.Headers.Authorization = new("Bearer", fixture.Token);

        using var response = await fixture.Client.SendAsync(request, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var echo = await response.Content.ReadFromJsonAsync<EchoAnswer>(TestContext.Current.CancellationToken);
        Assert.Equal(service, echo!.Service);
        Assert.Equal(method, echo.Method);
        Assert.Equal(target, echo.Target);
        Assert.Equal($"Bearer {fixture.Token}", echo.Authorization);
    }

    [Theory]
    [InlineData("/api/nothing-here")]
    [InlineData("/api/bookshelf")]
    [InlineData("/health/../api/unknown")]
    [InlineData("/catalog.Catalog/GetBook")]
    [InlineData("/connect/token")]
    [InlineData("/openapi/v1.json")]
    public async Task Paths_outside_the_contract_are_a_404_problem_at_the_gateway(string target)
    {
        using var response = await fixture.Client.GetAsync(target, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Requests_are_balanced_over_every_replica_of_a_service()
    {
        var before = (fixture.BooksA.Received.Count, fixture.BooksB.Received.Count);

        for (var i = 0; i < 40; i++)
        {
            using var response = await fixture.Client.GetAsync($"/api/books?page={i + 1}", TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.True(fixture.BooksA.Received.Count - before.Item1 >= 5, "replica 0 received too few requests");
        Assert.True(fixture.BooksB.Received.Count - before.Item2 >= 5, "replica 1 received too few requests");
    }

    [Fact]
    public async Task A_service_slower_than_its_routes_timeout_is_a_504_problem_and_others_are_unaffected()
    {
        var ct = TestContext.Current.CancellationToken;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var slow = new HttpRequestMessage(HttpMethod.Get, "/api/loans?delayMs=20000");
        slow.Headers.Authorization = new("Bearer", fixture.Token);
        using var timedOut = await fixture.Client.SendAsync(slow, ct);
        Assert.Equal(HttpStatusCode.GatewayTimeout, timedOut.StatusCode);
        Assert.Equal("application/problem+json", timedOut.Content.Headers.ContentType?.MediaType);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"answered after {clock.Elapsed}");

        // The catalog's routes keep the default (30 s): a 3 s answer is waited for.
        using var patient = new HttpRequestMessage(HttpMethod.Get, "/api/books/mine?delayMs=3000");
        patient.Headers.Authorization = new("Bearer", fixture.Token);
        using var answered = await fixture.Client.SendAsync(patient, ct);
        Assert.Equal(HttpStatusCode.OK, answered.StatusCode);
    }

    [Fact]
    public async Task The_gateway_answers_its_own_health()
    {
        using var response = await fixture.Client.GetAsync("/health", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}
