using System.Diagnostics;
using Library.Gateway.Routing;
using Library.ServiceDefaults;
using Library.TestSupport;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace Library.Gateway.Tests;

/// <summary>
/// A write's answer leaves the gateway only once every live gateway replica has heard its stamp
/// (<see cref="CatalogPeers"/>): the next anonymous read may go through another replica. A live
/// store on the test Redis; the other replica is played on the channel, so when it hears is the
/// test's to choose.
/// </summary>
public sealed class ReplicaAgreementTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_writes_answer_waits_for_every_live_replica_to_hear_its_stamp_and_not_for_one_that_stopped()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { [CacheKeys.PrefixSetting] = $"test-{Guid.NewGuid():N}:" })
            .Build();
        await using var redis = await ConnectionMultiplexer.ConnectAsync(TestServers.Redis);
        var store = new CatalogAnswerStore(redis, new CatalogOutputCacheOptions(), configuration, TimeProvider.System, NullLogger<CatalogAnswerStore>.Instance);
        await store.StartAsync(Ct);
        try
        {
            await Eventually.WaitUntilAsync(() => Task.FromResult(store.IsLive), "the store joined its invalidation channel");
            var other = redis.GetSubscriber();
            var heardChannel = RedisChannel.Literal(CacheKeys.CatalogHeard(configuration));
            var stamps = RedisChannel.Literal(CacheKeys.CatalogInvalidations(configuration));
            await other.PublishAsync(heardChannel, "replica-b 0");
            await Eventually.WaitUntilAsync(() => Task.FromResult(store.OtherReplicas().ContainsKey("replica-b")), "the store knows the other replica");

            // Replica B says it heard stamp 1 a moment after this one did: the write waits for it.
            await other.PublishAsync(stamps, "1 book:x");
            var waiting = Stopwatch.StartNew();
            var wait = store.WaitUntilHeardAsync(1, Ct);
            await Task.Delay(300, Ct); // B is slow on purpose: the write must not be answered before it says so
            var saidAt = waiting.Elapsed;
            await other.PublishAsync(heardChannel, "replica-b 1");
            await wait;
            Assert.True(waiting.Elapsed >= saidAt, $"answered at {waiting.Elapsed}, before the other replica heard the stamp ({saidAt})");

            // A replica that never says it heard is waited for up to a second, no longer.
            await other.PublishAsync(stamps, "2 book:x");
            waiting.Restart();
            await store.WaitUntilHeardAsync(2, Ct);
            Assert.InRange(waiting.Elapsed, TimeSpan.FromMilliseconds(900), TimeSpan.FromSeconds(30));

            // One that stops says so, and is not waited for.
            await other.PublishAsync(heardChannel, "replica-b -");
            await Eventually.WaitUntilAsync(() => Task.FromResult(!store.OtherReplicas().ContainsKey("replica-b")), "the store forgot the stopped replica");
            await other.PublishAsync(heardChannel, "replica-c 2");
            await Eventually.WaitUntilAsync(() => Task.FromResult(store.OtherReplicas().ContainsKey("replica-c")), "the store knows replica C");
            // And one that falls silent (killed) is not waited for after three heartbeats' time.
            await Eventually.WaitUntilAsync(() => Task.FromResult(store.OtherReplicas().Count == 0), "the silent replica is no longer waited for");
            await other.PublishAsync(stamps, "3 book:x");
            waiting.Restart();
            await store.WaitUntilHeardAsync(3, Ct);
            Assert.True(waiting.Elapsed < TimeSpan.FromMilliseconds(900), $"waited {waiting.Elapsed} for replicas that are gone");
        }
        finally
        {
            await store.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task Two_live_stores_hear_each_other_and_a_stopping_one_says_goodbye()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { [CacheKeys.PrefixSetting] = $"test-{Guid.NewGuid():N}:" })
            .Build();
        await using var redisA = await ConnectionMultiplexer.ConnectAsync(TestServers.Redis);
        await using var redisB = await ConnectionMultiplexer.ConnectAsync(TestServers.Redis);
        var a = new CatalogAnswerStore(redisA, new CatalogOutputCacheOptions(), configuration, TimeProvider.System, NullLogger<CatalogAnswerStore>.Instance);
        var b = new CatalogAnswerStore(redisB, new CatalogOutputCacheOptions(), configuration, TimeProvider.System, NullLogger<CatalogAnswerStore>.Instance);
        await a.StartAsync(Ct);
        await b.StartAsync(Ct);
        try
        {
            await Eventually.WaitUntilAsync(() => Task.FromResult(a.OtherReplicas().Count == 1 && b.OtherReplicas().Count == 1), "each store knows the other");
            // A stamp heard by both: each says so, and a write through either waits well under the deadline.
            await redisA.GetSubscriber().PublishAsync(RedisChannel.Literal(CacheKeys.CatalogInvalidations(configuration)), "5 author:y");
            await Eventually.WaitUntilAsync(() => Task.FromResult(a.OtherReplicas().Values.Single() >= 5 && b.OtherReplicas().Values.Single() >= 5), "each heard the other hear stamp 5");
            await b.StopAsync(Ct);
            await Eventually.WaitUntilAsync(() => Task.FromResult(a.OtherReplicas().Count == 0), "A stopped waiting for B as B stopped");
        }
        finally
        {
            await a.StopAsync(CancellationToken.None);
            await b.StopAsync(CancellationToken.None);
        }
    }
}
