extern alias BookService;
extern alias UserService;

using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Library.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using BookServiceProgram = BookService::Program;
using UserServiceProgram = UserService::Program;

namespace Library.Gateway.Tests;

/// <summary>The gateway in front of the real user service and two real catalog replicas.</summary>
public sealed class DoorFixture : IAsyncLifetime
{
    public RealUserService<UserServiceProgram> Users { get; private set; } = null!;
    public TestDatabase BookDb { get; private set; } = null!;
    public ServiceHost<BookServiceProgram> ReplicaA { get; private set; } = null!;
    public ServiceHost<BookServiceProgram> ReplicaB { get; private set; } = null!;
    public ServiceHost<Program> Gateway { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Users = await RealUserService<UserServiceProgram>.StartAsync();
        BookDb = await TestDatabase.CreateAsync("bookdb");
        var cachePrefix = $"test-{Guid.NewGuid():N}:";
        var settings = new Dictionary<string, string?>
        {
            ["Cache:KeyPrefix"] = cachePrefix,
            ["ConnectionStrings:bookdb"] = BookDb.ConnectionString,
            ["Auth:MetadataAddress"] = Users.MetadataAddress,
        };
        ReplicaA = new ServiceHost<BookServiceProgram>(settings).OnPort(Ports.FreePort());
        ReplicaA.StartServer();
        ReplicaB = new ServiceHost<BookServiceProgram>(settings).OnPort(Ports.FreePort());
        ReplicaB.StartServer();
        Gateway = new ServiceHost<Program>(new Dictionary<string, string?>
        {
            ["services:userservice:http:0"] = Users.Host.Address.ToString().TrimEnd('/'),
            ["services:bookservice:http:0"] = ReplicaA.Address.ToString().TrimEnd('/'),
            ["services:bookservice:http:1"] = ReplicaB.Address.ToString().TrimEnd('/'),
            ["Auth:MetadataAddress"] = Users.MetadataAddress,
            ["Cache:KeyPrefix"] = cachePrefix,
            ["RateLimiting:LoginPerMinute"] = "3",
            // The failover test reads as fast as it can: the anonymous limit is not its subject.
            ["RateLimiting:AnonymousPerMinute"] = "10000000",
            ["RateLimiting:RegisterPerMinute"] = "1000",
            ["RateLimiting:MaxImportBytes"] = "524288", // 512 KiB: the import's own limit, within a test's reach
        }).OnPort(Ports.FreePort());
        // On Kestrel, as in production: its request limits (body size) apply.
        Gateway.StartServer();
    }

    public HttpClient Client() => new() { BaseAddress = Gateway.Address };

    public async ValueTask DisposeAsync()
    {
        await Gateway.DisposeAsync();
        await ReplicaB.DisposeAsync();
        await ReplicaA.DisposeAsync();
        await BookDb.DisposeAsync();
        await Users.DisposeAsync();
    }
}

public sealed class DoorTests(DoorFixture fixture) : IClassFixture<DoorFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Log_in_attempts_at_one_account_are_429_with_Retry_After_past_the_limit()
    {
        using var client = fixture.Client();
        var email = $"target-{Guid.NewGuid():N}@library.test";
        for (var i = 0; i < 3; i++)
        {
            using var attempt = await client.PostAsJsonAsync("/api/auth/login", new { email, password = "guess-" + i }, Ct);
            Assert.Equal(HttpStatusCode.Unauthorized, attempt.StatusCode);
        }

        using var limited = await client.PostAsJsonAsync("/api/auth/login", new { email = email.ToUpperInvariant(), password = "guess" }, Ct);

        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
        Assert.True(limited.Headers.RetryAfter?.Delta > TimeSpan.Zero);
        Assert.Equal("application/problem+json", limited.Content.Headers.ContentType?.MediaType);
        // Another account from the same address is not held back by this one.
        using var other = await client.PostAsJsonAsync("/api/auth/login", new { email = $"other-{Guid.NewGuid():N}@library.test", password = "guess" }, Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, other.StatusCode);
    }

    [Fact]
    public async Task A_catalog_import_has_its_own_larger_body_limit_and_nothing_else_does()
    {
        var (_, token) = await fixture.Users.NewUserAsync("librarian");
        using var client = fixture.Client();
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        static StringContent Csv(string text) => new(text, System.Text.Encoding.UTF8, "text/csv");
        var header = "isbn,title,subtitle,authors,categories,publisher,publishedYear,language,copies\n";

        // About 200 KiB: over the 64 KiB of every other request, under the import's 512 KiB.
        var tag = Guid.NewGuid().ToString("N")[..8];
        var rows = Enumerable.Range(0, 600).Select(i => $"{TestIsbn.Next()},Gateway Import {tag} {i} {new string('x', 300)},,,,Ace,2000,en,1\n");
        var file = header + string.Concat(rows);
        Assert.InRange(System.Text.Encoding.UTF8.GetByteCount(file), 150 * 1024, 400 * 1024);
        using var imported = await client.PostAsync("/api/books/import", Csv(file), Ct);
        Assert.Equal(HttpStatusCode.OK, imported.StatusCode);
        Assert.Equal(600, (await imported.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("created").GetInt32());

        // Over the import's limit: declared, or chunked (Kestrel stops it as it grows).
        var big = header + new string('#', 600 * 1024);
        using var declared = await client.PostAsync("/api/books/import", Csv(big), Ct);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, declared.StatusCode);
        Assert.Equal("application/problem+json", declared.Content.Headers.ContentType?.MediaType);
        var chunked = new StreamContent(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(big)));
        chunked.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("text/csv");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/books/import") { Content = chunked };
        request.Headers.TransferEncodingChunked = true;
        try
        {
            using var streamed = await client.SendAsync(request, Ct);
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, streamed.StatusCode);
        }
        catch (HttpRequestException)
        {
            // Kestrel answered 413 and closed the connection while the client was still sending
            // the rest: the client may see the reset before the answer. Refused either way.
        }

        // The larger limit is the import's alone: the same body to another catalog write is refused.
        using var elsewhere = await client.PostAsync("/api/books", Csv(file), Ct);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, elsewhere.StatusCode);
    }

    [Fact]
    public async Task A_body_over_64_KiB_is_a_413()
    {
        using var client = fixture.Client();
        var huge = new string('x', 70 * 1024);
        using var response = await client.PostAsJsonAsync("/api/auth/register", new { email = "big@library.test", firstName = huge, lastName = "B", password = "Big-password-1" }, Ct);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
    }

    [Fact]
    public async Task Answers_carry_a_request_id_and_the_security_headers()
    {
        using var client = fixture.Client();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/books");
        request.Headers.Add("X-Request-Id", "test-request-42");
        using var response = await client.SendAsync(request, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("test-request-42", response.Headers.GetValues("X-Request-Id").Single());
        Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Equal("DENY", response.Headers.GetValues("X-Frame-Options").Single());
        Assert.Contains("frame-ancestors 'none'", response.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);

        using var generated = await client.GetAsync("/api/books", Ct);
        Assert.False(string.IsNullOrEmpty(generated.Headers.GetValues("X-Request-Id").Single()));
    }

    [Fact]
    public async Task The_docs_page_shows_every_services_OpenAPI_document_fetched_through_the_gateway()
    {
        using var client = fixture.Client();
        using var docs = await client.GetAsync("/docs", Ct);
        Assert.Equal(HttpStatusCode.OK, docs.StatusCode);
        var html = await docs.Content.ReadAsStringAsync(Ct);
        Assert.Contains("bookservice", html, StringComparison.Ordinal);
        Assert.Contains("lendingservice", html, StringComparison.Ordinal);

        var catalog = await client.GetFromJsonAsync<JsonElement>("/openapi/bookservice.json", Ct);
        Assert.True(catalog.GetProperty("paths").TryGetProperty("/api/books", out _));
        var users = await client.GetFromJsonAsync<JsonElement>("/openapi/userservice.json", Ct);
        Assert.True(users.GetProperty("paths").TryGetProperty("/api/auth/login", out _));
    }

    [Fact]
    public async Task Stopping_a_catalog_replica_under_steady_reads_loses_no_GET_and_it_leaves_the_rotation()
    {
        var retries = new System.Collections.Concurrent.ConcurrentQueue<TimeSpan>();
        var clock = Stopwatch.StartNew();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        // This test's gateway's only: the other test classes' gateways in this process retry too.
        var meters = fixture.Gateway.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "library.gateway.retries" && ReferenceEquals(instrument.Meter.Scope, meters))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, _, _, _) => retries.Enqueue(clock.Elapsed));
        listener.Start();
        using var client = fixture.Client();
        var failures = 0;
        var served = 0;
        var stopAt = Stopwatch.StartNew();
        var stopped = false;
        var page = 0;
        var readers = Enumerable.Range(0, 4).Select(async _ =>
        {
            while (stopAt.Elapsed < TimeSpan.FromSeconds(12))
            {
                // A page never asked for before: not in the gateway's output cache, so forwarded.
                using var response = await client.GetAsync($"/api/books?pageSize=5&page={Interlocked.Increment(ref page)}", Ct);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    Interlocked.Increment(ref served);
                }
                else
                {
                    Interlocked.Increment(ref failures);
                }
            }
        }).ToList();

        await Task.Delay(TimeSpan.FromSeconds(2), Ct);
        // The replica stops mid-load: it drains first (its /health turns 503 while it still
        // serves), then closes.
        var deadAddress = fixture.ReplicaA.Address.ToString().TrimEnd('/');
        await fixture.ReplicaA.DisposeAsync();
        stopped = true;
        await Task.WhenAll(readers);

        Assert.True(stopped);
        Assert.Equal(0, failures);
        Assert.True(served > 50, $"only {served} reads were served");
        // Requests that hit the dead replica were retried...
        Assert.NotEmpty(retries);
        // ...and it leaves the rotation: the health checks mark it down (polled with a deadline,
        // not timed: on a loaded machine a probe comes late), after which no read goes there.
        var proxy = fixture.Gateway.Services.GetRequiredService<Yarp.ReverseProxy.IProxyStateLookup>();
        bool MarkedDown() => proxy.TryGetCluster("bookservice", out var cluster) && cluster.Destinations.Values
            .Where(d => d.Model.Config.Address.TrimEnd('/') == deadAddress)
            .Any(d => d.Health.Active == Yarp.ReverseProxy.Model.DestinationHealth.Unhealthy || d.Health.Passive == Yarp.ReverseProxy.Model.DestinationHealth.Unhealthy);
        await Eventually.WaitUntilAsync(() => Task.FromResult(MarkedDown()), "the stopped replica is marked unhealthy");
        var retriedBefore = retries.Count;
        for (var i = 0; i < 40; i++)
        {
            using var response = await client.GetAsync($"/api/books?pageSize=5&page={Interlocked.Increment(ref page)}", Ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        Assert.Equal(retriedBefore, retries.Count);
    }
}
