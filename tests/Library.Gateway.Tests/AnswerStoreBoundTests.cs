using Library.Gateway.Routing;
using Library.TestSupport;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace Library.Gateway.Tests;

/// <summary>
/// The gateway's in-memory answer store stays within <c>OutputCache:MaximumCacheBytes</c> however
/// the entries are shaped: big bodies, or (what a client controls) many distinct long query
/// strings with tiny answers. A live store on the test Redis, entries put in as the gateway does.
/// </summary>
public sealed class AnswerStoreBoundTests
{
    [Fact]
    public async Task Many_tiny_answers_under_long_keys_stay_within_the_bound()
    {
        const long limit = 256 * 1024;
        var (store, redis) = await LiveStoreAsync(limit);
        await using var connection = redis;
        try
        {
            var body = new byte[16];
            var padding = new string('x', 4000);
            for (var i = 0; i < 2_000; i++)
            {
                store.Set($"/api/books?q={padding}{i}", Answer(body), 0, ["book:1"], TimeSpan.FromMinutes(1));
            }
            var (entries, bytes) = store.Usage();
            Assert.InRange(bytes, 1, limit);
            // Each key is about 8 KB as a string: a bound on bodies alone would have kept all 2,000 (16 MB).
            Assert.InRange(entries, 1, (int)(limit / (2 * padding.Length)));
            // The newest are the ones kept, and they are served.
            Assert.True(store.TryGet($"/api/books?q={padding}1999", out CatalogAnswer? _));
            Assert.False(store.TryGet($"/api/books?q={padding}0", out CatalogAnswer? _));
        }
        finally
        {
            await store.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task Large_answers_evict_the_oldest_and_one_over_the_bound_is_not_kept()
    {
        const long limit = 256 * 1024;
        var (store, redis) = await LiveStoreAsync(limit);
        await using var connection = redis;
        try
        {
            for (var i = 0; i < 20; i++)
            {
                store.Set($"/api/books/{i}", Answer(new byte[50_000]), 0, [], TimeSpan.FromMinutes(1));
            }
            var (entries, bytes) = store.Usage();
            Assert.InRange(bytes, 1, limit);
            Assert.Equal(5, entries);
            store.Set("/api/books/huge", Answer(new byte[limit]), 0, [], TimeSpan.FromMinutes(1));
            Assert.False(store.TryGet("/api/books/huge", out CatalogAnswer? _));
            Assert.Equal((5, bytes), store.Usage());
        }
        finally
        {
            await store.StopAsync(CancellationToken.None);
        }
    }

    private static CatalogAnswer Answer(byte[] body) =>
        new(body, [new("Content-Type", "application/json; charset=utf-8")], TimeProvider.System.GetTimestamp());

    private static async Task<(CatalogAnswerStore Store, ConnectionMultiplexer Redis)> LiveStoreAsync(long limit)
    {
        var redis = await ConnectionMultiplexer.ConnectAsync(TestServers.Redis);
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Cache:KeyPrefix"] = $"test-{Guid.NewGuid():N}:" })
            .Build();
        var store = new CatalogAnswerStore(redis, new CatalogOutputCacheOptions { MaximumCacheBytes = limit }, configuration, TimeProvider.System, NullLogger<CatalogAnswerStore>.Instance);
        await store.StartAsync(CancellationToken.None);
        await Eventually.WaitUntilAsync(() => Task.FromResult(store.IsLive), "the store joined its invalidation channel");
        return (store, redis);
    }
}
