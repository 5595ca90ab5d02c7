using System.Net;
using System.Net.Http.Json;
using Library.TestSupport;

namespace Library.Gateway.Tests;

/// <summary>
/// Two replicas of every service behind the gateway: one killed in the middle of every write it
/// receives (it has read the request; its connection is gone without an answer), one alive.
/// </summary>
public sealed class RetryFixture : IAsyncLifetime
{
    public Destination Dying { get; private set; } = null!;
    public Destination Live { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Dying = await Destination.StartAsync("dying", dieOnWrites: true);
        Live = await Destination.StartAsync("live");
    }

    /// <summary>
    /// A gateway of its own per test (on Kestrel, as in production): YARP's passive health checks
    /// take a replica that keeps failing out of the rotation, which must not carry from one test
    /// to the next.
    /// </summary>
    /// <param name="oneAddress">Every service behind this one address (a proxy in front of its replicas, as under the AppHost).</param>
    public ServiceHost<Program> StartGateway(string? oneAddress = null)
    {
        var settings = new Dictionary<string, string?>
        {
            // No request of these tests carries a token: the issuer's keys are never fetched.
            ["Auth:MetadataAddress"] = Live.Address + "/.well-known/openid-configuration",
            ["RateLimiting:AnonymousPerMinute"] = "10000000",
        };
        foreach (var service in new[] { "userservice", "bookservice", "lendingservice" })
        {
            if (oneAddress is not null)
            {
                settings[$"services:{service}:http:0"] = oneAddress;
                continue;
            }
            settings[$"services:{service}:http:0"] = Dying.Address;
            settings[$"services:{service}:http:1"] = Live.Address;
        }
        var gateway = new ServiceHost<Program>(settings).OnPort(Ports.FreePort());
        gateway.StartServer();
        return gateway;
    }

    public async ValueTask DisposeAsync()
    {
        await Dying.DisposeAsync();
        await Live.DisposeAsync();
    }
}

public sealed class RetryTests(RetryFixture fixture) : IClassFixture<RetryFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // The lending service's writes: each answers a repeated Idempotency-Key with the first answer.
    public static TheoryData<string, string, bool> KeyedWrites => new()
    {
        { "POST", "/api/loans", true },
        { "POST", $"/api/loans/{Guid.NewGuid()}/return", false },
        { "POST", $"/api/loans/{Guid.NewGuid()}/renew", false },
        { "POST", "/api/holds", true },
        { "DELETE", $"/api/holds/{Guid.NewGuid()}", false },
        { "POST", "/api/circulation/check-out", true },
        { "POST", "/api/circulation/check-in", true },
        { "POST", $"/api/fines/{Guid.NewGuid()}/payments", true },
        { "POST", $"/api/fines/{Guid.NewGuid()}/waive", true },
    };

    [Theory]
    [MemberData(nameof(KeyedWrites))]
    public async Task A_keyed_lending_write_that_reached_a_dying_replica_is_sent_once_to_another_and_answered_once(string method, string path, bool withBody)
    {
        await using var gateway = fixture.StartGateway();
        using var client = new HttpClient { BaseAddress = gateway.Address };

        // Balanced over both replicas: write until one has reached the dying replica.
        var hit = await UntilOneReachesTheDyingReplicaAsync(client, method, path, withBody, keyed: true);

        Assert.Equal(HttpStatusCode.OK, hit.Status);
        Assert.Equal("live", hit.Answer!.Service);
        // The live replica received it exactly once, with the same key and the same body; the
        // dying one received it once too (and died before answering).
        var live = Assert.Single(fixture.Live.Writes, w => w.IdempotencyKey == hit.Key);
        var dead = Assert.Single(fixture.Dying.Writes, w => w.IdempotencyKey == hit.Key);
        Assert.Equal(method, live.Method);
        Assert.Equal(path, live.Target);
        Assert.Equal(dead.Body, live.Body);
        Assert.Equal(withBody, live.Body.Contains(hit.Key, StringComparison.Ordinal));
    }

    /// <summary>
    /// Under the AppHost the gateway sees one destination per service: Aspire's proxy in front of
    /// its replicas. A replica leaves the proxy's rotation (a rolling restart) while the gateway's
    /// kept-alive connection to it still stands, and it dies in the middle of the next write; the
    /// retry's new connection goes to the replica still in the rotation.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Behind_one_address_a_write_that_reached_a_replica_leaving_the_rotation_is_sent_again_through_it_only_with_a_key(bool keyed)
    {
        await using var proxy = RoundRobinProxy.Start(fixture.Dying.Address);
        await using var gateway = fixture.StartGateway(oneAddress: proxy.Address);
        using var client = new HttpClient { BaseAddress = gateway.Address };
        // Two reads of the lending service at once: the gateway now holds two connections to the
        // dying replica (as when a health probe ran beside a request), so a retry that took a
        // pooled connection would reach it again.
        var reads = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => client.GetAsync($"/api/books/{Guid.NewGuid()}/copies?delayMs=300", Ct)));
        foreach (var read in reads)
        {
            using (read)
            {
                Assert.Equal("dying", (await read.Content.ReadFromJsonAsync<EchoAnswer>(Ct))!.Service);
            }
        }
        proxy.SendNewConnectionsTo(fixture.Live.Address);

        var key = Guid.NewGuid().ToString();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/loans") { Content = JsonContent.Create(new { bookId = Guid.NewGuid(), days = 14, marker = key }) };
        if (keyed)
        {
            request.Headers.Add("Idempotency-Key", key);
        }
        using var response = await client.SendAsync(request, Ct);

        Assert.Single(fixture.Dying.Writes, w => w.Body.Contains(key, StringComparison.Ordinal));
        if (keyed)
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("live", (await response.Content.ReadFromJsonAsync<EchoAnswer>(Ct))!.Service);
            Assert.Single(fixture.Live.Writes, w => w.IdempotencyKey == key);
        }
        else
        {
            // Without a key it is not sent again: it may have been done.
            Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
            Assert.DoesNotContain(fixture.Live.Writes, w => w.Body.Contains(key, StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task A_write_without_a_key_is_not_sent_again_it_is_a_502()
    {
        await using var gateway = fixture.StartGateway();
        using var client = new HttpClient { BaseAddress = gateway.Address };

        var hit = await UntilOneReachesTheDyingReplicaAsync(client, "POST", "/api/loans", withBody: true, keyed: false);

        Assert.Equal(HttpStatusCode.BadGateway, hit.Status);
        Assert.DoesNotContain(fixture.Live.Writes, w => w.Body.Contains(hit.Key, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_keyed_write_to_a_service_that_does_not_honour_keys_is_not_sent_again()
    {
        await using var gateway = fixture.StartGateway();
        using var client = new HttpClient { BaseAddress = gateway.Address };

        // The catalog ignores Idempotency-Key: sending it twice could create a title twice.
        var hit = await UntilOneReachesTheDyingReplicaAsync(client, "POST", "/api/books", withBody: true, keyed: true);

        Assert.Equal(HttpStatusCode.BadGateway, hit.Status);
        Assert.DoesNotContain(fixture.Live.Writes, w => w.IdempotencyKey == hit.Key);
    }

    [Fact]
    public async Task A_keyed_write_over_the_body_limit_is_a_413_and_reaches_no_replica()
    {
        await using var gateway = fixture.StartGateway();
        using var client = new HttpClient { BaseAddress = gateway.Address };
        var key = Guid.NewGuid().ToString();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/loans")
        {
            // JsonContent has no declared length: sent chunked, refused while it is read.
            Content = JsonContent.Create(new { bookId = Guid.NewGuid(), days = 14, note = new string('x', 70 * 1024) }),
        };
        request.Headers.Add("Idempotency-Key", key);

        using var response = await client.SendAsync(request, Ct);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.DoesNotContain(fixture.Live.Writes.Concat(fixture.Dying.Writes), w => w.IdempotencyKey == key);
    }

    private sealed record Hit(string Key, HttpStatusCode Status, EchoAnswer? Answer);

    /// <summary>
    /// Sends fresh writes (a new key, or a new marker in the body without one) until one has
    /// reached the dying replica; that one's answer. Either replica is chosen about half the time.
    /// </summary>
    private async Task<Hit> UntilOneReachesTheDyingReplicaAsync(HttpClient client, string method, string path, bool withBody, bool keyed)
    {
        for (var attempt = 0; attempt < 40; attempt++)
        {
            var key = Guid.NewGuid().ToString();
            using var request = new HttpRequestMessage(new HttpMethod(method), path);
            if (withBody)
            {
                request.Content = JsonContent.Create(new { bookId = Guid.NewGuid(), days = 14, marker = key });
            }
            if (keyed)
            {
                request.Headers.Add("Idempotency-Key", key);
            }
            using var response = await client.SendAsync(request, Ct);
            var reached = keyed
                ? fixture.Dying.Writes.Any(w => w.IdempotencyKey == key)
                : fixture.Dying.Writes.Any(w => w.Body.Contains(key, StringComparison.Ordinal));
            if (reached)
            {
                var answer = response.StatusCode == HttpStatusCode.OK ? await response.Content.ReadFromJsonAsync<EchoAnswer>(Ct) : null;
                return new Hit(key, response.StatusCode, answer);
            }
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        throw new InvalidOperationException("40 writes and none reached the dying replica: the gateway does not balance over both.");
    }
}
