using System.Diagnostics.Metrics;
using System.Globalization;
using Library.ServiceDefaults;
using Microsoft.AspNetCore.OutputCaching;
using Microsoft.Net.Http.Headers;
using StackExchange.Redis;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace Library.Gateway.Routing;

/// <summary>
/// Anonymous catalog reads (books, a book, search pages, facets, authors, categories, a title's
/// recommendations) answered at the door from ASP.NET Core's output cache, held in this
/// replica's memory (<see cref="CatalogAnswerStore"/>): a hit costs no network round trip. It is
/// kept exact by the catalog's per-entity invalidation (<see cref="CacheKeys"/>): the catalog
/// sends each answer's snapshot and dependencies (<see cref="CacheKeys.AnswerHeader"/>, removed
/// here), and every replica hears every stamp on the Redis channel at once. A stamp later than
/// an entry's snapshot on one of its dependencies drops it; so a borrow of one title leaves
/// other titles cached. A write's answer carries its stamp (<see cref="CacheKeys.InvalidatedHeader"/>):
/// the replica that forwards it waits until it has heard that stamp, so the writer's next read
/// is never older than the write. Without the channel (Redis down), nothing is served from the
/// cache, and what was cached before is dropped: the stamps of the outage are never heard.
/// Signed-in requests, non-200 answers, answers without terms and everything else are never cached.
/// </summary>
public static class CatalogOutputCache
{
    public const string PolicyName = "catalog-reads";
    public const string SectionName = "OutputCache";

    public static IHostApplicationBuilder AddCatalogOutputCache(this IHostApplicationBuilder builder)
    {
        var options = builder.Configuration.GetSection(SectionName).Get<CatalogOutputCacheOptions>() ?? new();
        builder.AddLibraryRedisClient("cache");
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton<CatalogAnswerStore>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<CatalogAnswerStore>());
        // Registered before AddOutputCache, which then keeps it instead of its own memory store.
        builder.Services.AddSingleton<IOutputCacheStore>(sp => sp.GetRequiredService<CatalogAnswerStore>());
        builder.Services.AddOutputCache(o =>
        {
            o.MaximumBodySize = options.MaximumBodyBytes;
            o.AddPolicy(PolicyName, new CatalogReadPolicy(TimeSpan.FromSeconds(options.LifetimeSeconds), options.Enabled));
        });
        builder.Services.AddSingleton<ITransformProvider, CatalogAnswerTransforms>();
        return builder;
    }

    /// <summary>The catalog's terms for an answer, taken off the proxied response for the policy.</summary>
    internal sealed record Terms(long Snapshot, string[] Dependencies);

    /// <summary>
    /// Every proxied answer loses the two catalog headers (they are for the gateway only); a
    /// read's terms are kept for the policy, a write's stamp is waited for.
    /// </summary>
    private sealed class CatalogAnswerTransforms(CatalogAnswerStore store) : ITransformProvider
    {
        public void ValidateRoute(TransformRouteValidationContext context) { }

        public void ValidateCluster(TransformClusterValidationContext context) { }

        public void Apply(TransformBuilderContext context) => context.AddResponseTransform(async transform =>
        {
            var headers = transform.HttpContext.Response.Headers;
            if (headers.Remove(CacheKeys.AnswerHeader, out var answer) && TryParse(answer.ToString(), out var terms))
            {
                transform.HttpContext.Features.Set(terms);
            }
            if (headers.Remove(CacheKeys.InvalidatedHeader, out var stamp) && long.TryParse(stamp.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var sequence))
            {
                await store.WaitUntilHeardAsync(sequence, transform.HttpContext.RequestAborted);
            }
        });

        private static bool TryParse(string header, out Terms terms)
        {
            var parts = header.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            terms = null!;
            if (parts.Length == 0 || !long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var snapshot))
            {
                return false;
            }
            terms = new Terms(snapshot, parts[1..]);
            return true;
        }
    }

    private sealed class CatalogReadPolicy(TimeSpan lifetime, bool enabled) : IOutputCachePolicy
    {
        public ValueTask CacheRequestAsync(OutputCacheContext context, CancellationToken cancellation)
        {
            var request = context.HttpContext.Request;
            if (!enabled
                || !(HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method))
                || request.Headers.ContainsKey(HeaderNames.Authorization)
                || !context.HttpContext.RequestServices.GetRequiredService<CatalogAnswerStore>().IsLive)
            {
                return ValueTask.CompletedTask;
            }
            context.EnableOutputCaching = true;
            context.AllowCacheLookup = true;
            context.AllowCacheStorage = true;
            context.AllowLocking = true;
            context.ResponseExpirationTimeSpan = lifetime;
            context.CacheVaryByRules.QueryKeys = "*";
            return ValueTask.CompletedTask;
        }

        public ValueTask ServeFromCacheAsync(OutputCacheContext context, CancellationToken cancellation) => ValueTask.CompletedTask;

        public ValueTask ServeResponseAsync(OutputCacheContext context, CancellationToken cancellation)
        {
            var response = context.HttpContext.Response;
            if (response.StatusCode != StatusCodes.Status200OK || response.Headers.ContainsKey(HeaderNames.SetCookie)
                || context.HttpContext.Features.Get<Terms>() is not { } terms)
            {
                context.AllowCacheStorage = false;
                return ValueTask.CompletedTask;
            }
            // The store reads the terms back from the tags.
            context.Tags.Add(CatalogAnswerStore.SnapshotTag(terms.Snapshot));
            foreach (var dependency in terms.Dependencies)
            {
                context.Tags.Add(dependency);
            }
            return ValueTask.CompletedTask;
        }
    }
}

public sealed class CatalogOutputCacheOptions
{
    /// <summary>Off: every read is forwarded (to measure the cache, or to rule it out).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>An entry's lifetime: the bound on staleness if a stamp is ever lost while Redis stays up.</summary>
    public int LifetimeSeconds { get; set; } = 60;

    public long MaximumBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>
    /// The memory all entries of one replica may take, each counted with its key and terms as well
    /// as its body (<see cref="CatalogAnswerStore.Footprint"/>); the oldest go first beyond it.
    /// </summary>
    public long MaximumCacheBytes { get; set; } = 32 * 1024 * 1024;
}

/// <summary>
/// The gateway's output cache store: entries in this process's memory, each with the catalog's
/// snapshot and dependencies (from its tags), and the stamps heard on the invalidation channel.
/// An entry is served while it is live and none of its dependencies has a stamp later than its
/// snapshot; one is not stored if that is already so, or if its snapshot predates the moment the
/// channel was (re)joined (a stamp before it may have been missed). Stamps are forgotten once no
/// entry stored before them can still be alive.
/// </summary>
public sealed class CatalogAnswerStore : BackgroundService, IOutputCacheStore
{
    private const string SnapshotPrefix = "s:";
    private static readonly Meter Meter = new("Library.Gateway.CatalogCache");
    private static readonly Counter<long> Hits = Meter.CreateCounter<long>("library.gateway.catalog_cache.hits", description: "Catalog reads answered from the gateway's memory");
    private static readonly Counter<long> Misses = Meter.CreateCounter<long>("library.gateway.catalog_cache.misses", description: "Catalog reads looked up and not found (or no longer valid)");

    private readonly object gate = new();
    private readonly Dictionary<string, Entry> entries = new(StringComparer.Ordinal);
    private readonly LinkedList<string> byAge = new();
    private readonly Dictionary<string, (long Sequence, long HeardAt)> stamps = new(StringComparer.Ordinal);
    private readonly IConnectionMultiplexer redis;
    private readonly CatalogOutputCacheOptions options;
    private readonly TimeProvider time;
    private readonly ILogger<CatalogAnswerStore> logger;
    private readonly RedisChannel channel;
    private readonly string sequenceKey;
    private long bytes;
    private long heard;
    private long floor = long.MaxValue;
    private volatile bool live;
    private TaskCompletionSource news = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim joining = new(1, 1);

    public CatalogAnswerStore(IConnectionMultiplexer redis, CatalogOutputCacheOptions options, IConfiguration configuration, TimeProvider time, ILogger<CatalogAnswerStore> logger)
    {
        this.redis = redis;
        this.options = options;
        this.time = time;
        this.logger = logger;
        channel = RedisChannel.Literal(CacheKeys.CatalogInvalidations(configuration));
        sequenceKey = CacheKeys.CatalogSequence(configuration);
        redis.ConnectionFailed += (_, _) => Leave("connection to Redis lost");
        redis.ConnectionRestored += (_, _) => _ = JoinAsync();
    }

    /// <summary>True while the channel is heard: only then is anything served or stored.</summary>
    public bool IsLive => live;

    internal static string SnapshotTag(long snapshot) => SnapshotPrefix + snapshot.ToString(CultureInfo.InvariantCulture);

    public ValueTask<byte[]?> GetAsync(string key, CancellationToken cancellationToken)
    {
        lock (gate)
        {
            if (live && entries.TryGetValue(key, out var entry))
            {
                if (entry.ExpiresAt > time.GetTimestamp() && IsCurrent(entry.Snapshot, entry.Dependencies))
                {
                    Hits.Add(1);
                    return ValueTask.FromResult<byte[]?>(entry.Value);
                }
                Remove(key, entry);
            }
        }
        Misses.Add(1);
        return ValueTask.FromResult<byte[]?>(null);
    }

    public ValueTask SetAsync(string key, byte[] value, string[]? tags, TimeSpan validFor, CancellationToken cancellationToken)
    {
        long? snapshot = null;
        var dependencies = new List<string>();
        foreach (var tag in tags ?? [])
        {
            if (tag.StartsWith(SnapshotPrefix, StringComparison.Ordinal) && long.TryParse(tag.AsSpan(SnapshotPrefix.Length), CultureInfo.InvariantCulture, out var s))
            {
                snapshot = s;
            }
            else
            {
                dependencies.Add(tag);
            }
        }
        var deps = dependencies.ToArray();
        var size = Footprint(key, value, deps);
        if (snapshot is null || size > options.MaximumCacheBytes)
        {
            return ValueTask.CompletedTask;
        }
        lock (gate)
        {
            if (!live || snapshot < floor || !IsCurrent(snapshot.Value, deps))
            {
                return ValueTask.CompletedTask;
            }
            if (entries.TryGetValue(key, out var old))
            {
                Remove(key, old);
            }
            var node = byAge.AddLast(key);
            entries[key] = new Entry(value, snapshot.Value, deps, time.GetTimestamp() + (long)(validFor.TotalSeconds * time.TimestampFrequency), node, size);
            bytes += size;
            while (bytes > options.MaximumCacheBytes && byAge.First is { } oldest)
            {
                Remove(oldest.Value, entries[oldest.Value]);
            }
        }
        return ValueTask.CompletedTask;
    }

    /// <summary>Entries held now and the bytes they are counted for (for the tests and the bound's check).</summary>
    public (int Entries, long Bytes) Usage()
    {
        lock (gate)
        {
            return (entries.Count, bytes);
        }
    }

    /// <summary>
    /// What an entry costs this process: its body, its key (the path and query, as long as a client
    /// makes it) and its terms as UTF-16 strings, and the objects that hold them (entry, list node,
    /// dictionary slot, arrays: about 200 bytes on x64). Counting bodies alone let a flood of
    /// distinct searches with long query strings and tiny answers grow the store without bound.
    /// </summary>
    public static long Footprint(string key, byte[] value, string[] dependencies)
    {
        const int PerObject = 200, PerString = 24;
        long size = PerObject + value.Length + PerString + 2L * key.Length;
        foreach (var dependency in dependencies)
        {
            size += PerString + 2L * dependency.Length + 8;
        }
        return size;
    }

    /// <summary>Tags are terms here, not groups to evict: nothing evicts by tag.</summary>
    public ValueTask EvictByTagAsync(string tag, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <summary>
    /// Until this replica has heard the stamp a write's answer names (the channel delivers in
    /// order), or a second; then, if it has not, it drops everything rather than serve older data.
    /// </summary>
    public async Task WaitUntilHeardAsync(long sequence, CancellationToken cancellationToken)
    {
        var deadline = time.GetTimestamp() + time.TimestampFrequency;
        while (true)
        {
            Task next;
            lock (gate)
            {
                if (heard >= sequence || !live)
                {
                    return;
                }
                next = news.Task;
            }
            var left = deadline - time.GetTimestamp();
            if (left <= 0)
            {
                logger.LogWarning("Stamp {Sequence} not heard within a second (last heard {Heard}); dropping the catalog cache", sequence, Interlocked.Read(ref heard));
                lock (gate)
                {
                    Clear();
                }
                return;
            }
            await next.WaitAsync(TimeSpan.FromSeconds((double)left / time.TimestampFrequency), time, cancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await JoinAsync();
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(5), time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            if (!live && redis.IsConnected)
            {
                await JoinAsync();
            }
            Sweep();
        }
    }

    /// <summary>(Re)subscribes, then reads the sequence: every stamp after it will be heard; entries older than it are not stored.</summary>
    private async Task JoinAsync()
    {
        if (!await joining.WaitAsync(0))
        {
            return;
        }
        try
        {
            var subscriber = redis.GetSubscriber();
            await subscriber.UnsubscribeAsync(channel);
            await subscriber.SubscribeAsync(channel, (_, message) => Hear(message.ToString()));
            var sequence = (long?)await redis.GetDatabase().StringGetAsync(sequenceKey) ?? 0;
            lock (gate)
            {
                // From here on every stamp is heard; those before it only matter to entries older
                // than the floor, which are refused. (A Redis that restarted empty counts from 0 again.)
                Clear();
                stamps.Clear();
                floor = sequence;
                heard = sequence;
                live = true;
                news.TrySetResult();
                news = new(TaskCreationOptions.RunContinuationsAsynchronously);
            }
            logger.LogInformation("Catalog cache live from sequence {Sequence}", sequence);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or ObjectDisposedException)
        {
            Leave(ex.Message);
        }
        finally
        {
            joining.Release();
        }
    }

    private void Leave(string reason)
    {
        lock (gate)
        {
            if (!live)
            {
                return;
            }
            live = false;
            Clear();
            news.TrySetResult();
            news = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        logger.LogWarning("Catalog cache off until the invalidation channel is back: {Reason}", reason);
    }

    /// <summary>"{sequence} {dependency}...": stamps every dependency ("all": drops every entry).</summary>
    private void Hear(string message)
    {
        var parts = message.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0 || !long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var sequence))
        {
            return;
        }
        var now = time.GetTimestamp();
        lock (gate)
        {
            for (var i = 1; i < parts.Length; i++)
            {
                if (parts[i] == CatalogDependency.All)
                {
                    Clear();
                }
                if (!stamps.TryGetValue(parts[i], out var known) || known.Sequence < sequence)
                {
                    stamps[parts[i]] = (sequence, now);
                }
            }
            heard = Math.Max(heard, sequence);
            news.TrySetResult();
            news = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    private bool IsCurrent(long snapshot, string[] dependencies)
    {
        if (stamps.TryGetValue(CatalogDependency.All, out var all) && all.Sequence > snapshot)
        {
            return false;
        }
        foreach (var dependency in dependencies)
        {
            if (stamps.TryGetValue(dependency, out var stamp) && stamp.Sequence > snapshot)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Expired entries go; so do stamps heard longer ago than any entry (stored before them) lives, plus a route's timeout.</summary>
    private void Sweep()
    {
        var now = time.GetTimestamp();
        var forget = now - (long)((options.LifetimeSeconds + 120) * (double)time.TimestampFrequency);
        lock (gate)
        {
            foreach (var (key, entry) in entries.Where(e => e.Value.ExpiresAt <= now).ToList())
            {
                Remove(key, entry);
            }
            foreach (var dependency in stamps.Where(s => s.Value.HeardAt < forget).Select(s => s.Key).ToList())
            {
                stamps.Remove(dependency);
            }
        }
    }

    private void Remove(string key, Entry entry)
    {
        entries.Remove(key);
        byAge.Remove(entry.Node);
        bytes -= entry.Size;
    }

    private void Clear()
    {
        entries.Clear();
        byAge.Clear();
        bytes = 0;
    }

    private sealed record Entry(byte[] Value, long Snapshot, string[] Dependencies, long ExpiresAt, LinkedListNode<string> Node, long Size);
}
