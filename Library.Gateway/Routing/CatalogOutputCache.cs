using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Diagnostics.Metrics;
using System.Globalization;
using Library.ServiceDefaults;
using Microsoft.Extensions.Primitives;
using Microsoft.Net.Http.Headers;
using StackExchange.Redis;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace Library.Gateway.Routing;

/// <summary>
/// Anonymous catalog reads (books, a book, search pages, facets, authors, categories, a title's
/// recommendations) answered at the door from this replica's memory (<see cref="CatalogAnswerStore"/>):
/// a hit costs no network round trip. It is kept exact by the catalog's per-entity invalidation
/// (<see cref="CacheKeys"/>): the catalog sends each answer's snapshot and dependencies
/// (<see cref="CacheKeys.AnswerHeader"/>, removed here), and every replica hears every stamp on
/// the Redis channel at once. A stamp later than an entry's snapshot on one of its dependencies
/// drops it; so a borrow of one title leaves other titles cached. A write's answer carries its
/// stamp (<see cref="CacheKeys.InvalidatedHeader"/>): the replica that forwards it waits until it
/// and every other live replica have heard that stamp (<see cref="CatalogPeers"/>), so the next
/// read, through whichever replica, is never older than the write. Without the
/// channel (Redis down), nothing is served from the cache, and what was cached before is dropped:
/// the stamps of the outage are never heard. Signed-in requests, non-200 answers, answers without
/// terms and everything else are never cached.
/// <para>
/// A hit is the gateway's hottest path, so it is served first in the pipeline, before routing,
/// authentication and the middlewares a forwarded request needs (<see cref="UseCatalogOutputCache"/>):
/// the answer is kept as its body and headers, ready to write; the hit still counts against the
/// anonymous rate limit and carries every header a forwarded answer has (the RateLimit headers,
/// the security headers, the request ID, <c>Age</c>). ASP.NET Core's output cache did the same
/// through its key building, entry serialisation and a lookup dispatcher on every hit: with
/// the rest of the pipeline, 0.2x of a bare Kestrel endpoint (bench/README.md, issue 15 goal 3).
/// </para>
/// </summary>
public static class CatalogOutputCache
{
    public const string SectionName = "OutputCache";

    public static IHostApplicationBuilder AddCatalogOutputCache(this IHostApplicationBuilder builder)
    {
        var options = builder.Configuration.GetSection(SectionName).Get<CatalogOutputCacheOptions>() ?? new();
        builder.AddLibraryRedisClient("cache");
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton<CatalogAnswerStore>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<CatalogAnswerStore>());
        builder.Services.AddSingleton<CatalogAnswers>();
        builder.Services.AddSingleton<ITransformProvider, CatalogAnswerTransforms>();
        return builder;
    }

    /// <summary>
    /// First in the pipeline: a hit is answered here; everything else goes on (a catalog read
    /// that may be kept is recorded on its way back).
    /// </summary>
    public static IApplicationBuilder UseCatalogOutputCache(this IApplicationBuilder app)
    {
        var answers = app.ApplicationServices.GetRequiredService<CatalogAnswers>();
        return app.Use(next => context => answers.InvokeAsync(context, next));
    }

    /// <summary>The catalog's terms for an answer, taken off the proxied response.</summary>
    internal sealed record Terms(long Snapshot, string[] Dependencies);

    /// <summary>
    /// Every proxied answer loses the two catalog headers (they are for the gateway only); a
    /// read's terms are kept for <see cref="CatalogAnswers"/>, a write's stamp is waited for.
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
}

/// <summary>
/// One answer kept in memory: its body and the headers the catalog (and the proxy) gave it,
/// without those that belong to one request (date, length, request ID, rate limits, security
/// headers: written again on every hit), and when it was stored (for <c>Age</c>).
/// </summary>
public sealed record CatalogAnswer(byte[] Body, KeyValuePair<string, StringValues>[] Headers, long StoredAt);

/// <summary>
/// The door of the catalog cache (<see cref="CatalogOutputCache"/>): serves hits, records misses.
/// </summary>
public sealed class CatalogAnswers(
    CatalogAnswerStore store,
    CatalogOutputCacheOptions options,
    RateLimitPolicies limits,
    GracefulShutdown.ShutdownState shutdown,
    IHostApplicationLifetime lifetime,
    TimeProvider time)
{
    /// <summary>Headers of one request or one connection, never kept with an answer.</summary>
    private static readonly HashSet<string> PerRequest = new(StringComparer.OrdinalIgnoreCase)
    {
        HeaderNames.Date, HeaderNames.Server, HeaderNames.ContentLength, HeaderNames.TransferEncoding,
        HeaderNames.Connection, HeaderNames.KeepAlive, HeaderNames.Age, HeaderNames.SetCookie, HeaderNames.Trailer,
        HeaderNames.XContentTypeOptions, HeaderNames.XFrameOptions, HeaderNames.ContentSecurityPolicy, "Referrer-Policy",
        PageHeaders.RequestIdHeader, RateLimitHeaders.PolicyHeader, RateLimitHeaders.Header,
        CacheKeys.AnswerHeader, CacheKeys.InvalidatedHeader,
    };

    /// <summary>Age values of the first minutes, so a hit allocates no string for it.</summary>
    private static readonly string[] Ages = [.. Enumerable.Range(0, 600).Select(i => i.ToString(CultureInfo.InvariantCulture))];

    /// <summary>Misses being forwarded, by key: a second request for the same answer waits for the first (as the output cache's locking did).</summary>
    private readonly ConcurrentDictionary<string, Task> filling = new(StringComparer.Ordinal);

    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var request = context.Request;
        if (!options.Enabled || !HttpMethods.IsGet(request.Method) || !store.IsLive || !IsCatalogRead(request))
        {
            await next(context);
            return;
        }
        var waited = false;
        while (true)
        {
            if (store.TryGet(request.Path, request.QueryString, out var answer))
            {
                if (await TryServeAsync(context, answer))
                {
                    return;
                }
                // Over the budget: the limiter's own 429 (with Retry-After), from the pipeline.
                await next(context);
                return;
            }
            var key = CatalogAnswerStore.Key(request.Path, request.QueryString);
            if (waited)
            {
                await ForwardAndKeepAsync(context, next, key);
                return;
            }
            var mine = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var running = filling.GetOrAdd(key, mine.Task);
            if (running == mine.Task)
            {
                try
                {
                    await ForwardAndKeepAsync(context, next, key);
                }
                finally
                {
                    filling.TryRemove(new KeyValuePair<string, Task>(key, mine.Task));
                    mine.TrySetResult();
                }
                return;
            }
            await running.WaitAsync(context.RequestAborted).ContinueWith(_ => { }, TaskScheduler.Default);
            context.RequestAborted.ThrowIfCancellationRequested();
            waited = true;
        }
    }

    /// <summary>
    /// Anonymous GETs of the book service's paths only (the routes of <see cref="ApiRoutes.Table"/>
    /// that go to it; a title's copies are the lending service's), without a token, a body or a
    /// condition (If-None-Match and the like are the service's to answer).
    /// </summary>
    private static bool IsCatalogRead(HttpRequest request)
    {
        var headers = request.Headers;
        if (headers.ContainsKey(HeaderNames.Authorization) || request.ContentLength > 0 || headers.ContainsKey(HeaderNames.TransferEncoding)
            || headers.ContainsKey(HeaderNames.IfNoneMatch) || headers.ContainsKey(HeaderNames.IfModifiedSince))
        {
            return false;
        }
        var path = request.Path.Value.AsSpan();
        if (Under(path, "/api/books", out var rest))
        {
            // /api/books/{bookId}/copies[/...] is the lending service's.
            if (rest.Length > 1)
            {
                var slash = rest[1..].IndexOf('/');
                if (slash >= 0 && Under(rest[(slash + 1)..], "/copies", out _))
                {
                    return false;
                }
            }
            return true;
        }
        return Under(path, "/api/authors", out _) || Under(path, "/api/categories", out _) || Under(path, "/api/recommendations", out _);

        static bool Under(ReadOnlySpan<char> path, string prefix, out ReadOnlySpan<char> rest)
        {
            rest = default;
            if (!path.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) || (path.Length > prefix.Length && path[prefix.Length] != '/'))
            {
                return false;
            }
            rest = path[prefix.Length..];
            return true;
        }
    }

    /// <summary>
    /// A hit: counted against the client's anonymous budget like any request (false when over
    /// it), then written whole with the headers every answer of the gateway has.
    /// </summary>
    private async ValueTask<bool> TryServeAsync(HttpContext context, CatalogAnswer answer)
    {
        using (var lease = limits.Identity.AttemptAcquire(context))
        {
            if (!lease.IsAcquired)
            {
                return false;
            }
        }
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        var headers = response.Headers;
        foreach (var (name, value) in answer.Headers)
        {
            headers[name] = value;
        }
        headers.ContentLength = answer.Body.Length;
        var age = (time.GetTimestamp() - answer.StoredAt) / time.TimestampFrequency;
        headers.Age = age < Ages.Length ? Ages[age] : age.ToString(CultureInfo.InvariantCulture);
        RateLimitHeaders.Write(context, limits);
        PageHeaders.Write(context, PageHeaders.RequestId(context));
        if (context.Request.Protocol is "HTTP/1.1" or "HTTP/1.0" && (shutdown.Stopping || lifetime.ApplicationStopping.IsCancellationRequested))
        {
            headers.Connection = "close";
        }
        await response.BodyWriter.WriteAsync(answer.Body, context.RequestAborted);
        return true;
    }

    /// <summary>
    /// A miss goes the whole way (limits, token check, proxy); its body is copied as it is
    /// written, and kept if the catalog gave it terms, it is a 200 without cookies and it is
    /// within <see cref="CatalogOutputCacheOptions.MaximumBodyBytes"/>.
    /// </summary>
    private async Task ForwardAndKeepAsync(HttpContext context, RequestDelegate next, string key)
    {
        var response = context.Response;
        var original = response.Body;
        using var copy = new CopyingStream(original, options.MaximumBodyBytes);
        response.Body = copy;
        try
        {
            await next(context);
        }
        finally
        {
            response.Body = original;
        }
        if (response.StatusCode != StatusCodes.Status200OK || copy.Overflowed || context.RequestAborted.IsCancellationRequested
            || response.Headers.ContainsKey(HeaderNames.SetCookie) || context.Features.Get<CatalogOutputCache.Terms>() is not { } terms
            || (response.ContentLength is { } length && length != copy.Length))
        {
            return;
        }
        var kept = new List<KeyValuePair<string, StringValues>>();
        foreach (var header in response.Headers)
        {
            if (!PerRequest.Contains(header.Key))
            {
                kept.Add(header);
            }
        }
        store.Set(key, new CatalogAnswer(copy.ToArray(), [.. kept], time.GetTimestamp()), terms.Snapshot, terms.Dependencies,
            TimeSpan.FromSeconds(options.LifetimeSeconds));
    }

    /// <summary>Writes through to the response, keeping a copy of what was written up to a limit.</summary>
    private sealed class CopyingStream(Stream inner, long limit) : Stream
    {
        private readonly MemoryStream copy = new();

        public bool Overflowed { get; private set; }

        public override long Length => copy.Length;

        public byte[] ToArray() => copy.ToArray();

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush() => inner.Flush();
        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count)
        {
            inner.Write(buffer, offset, count);
            Keep(buffer.AsSpan(offset, count));
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await inner.WriteAsync(buffer, cancellationToken);
            Keep(buffer.Span);
        }

        private void Keep(ReadOnlySpan<byte> bytes)
        {
            if (Overflowed)
            {
                return;
            }
            if (copy.Length + bytes.Length > limit)
            {
                Overflowed = true;
                copy.SetLength(0);
                return;
            }
            copy.Write(bytes);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                copy.Dispose();
            }
            base.Dispose(disposing);
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
/// The gateway's catalog cache: answers in this process's memory, each with the catalog's
/// snapshot and dependencies, and the stamps heard on the invalidation channel.
/// An entry is served while it is live and none of its dependencies has a stamp later than its
/// snapshot; one is not stored if that is already so, or if its snapshot predates the moment the
/// channel was (re)joined (a stamp before it may have been missed). Stamps are forgotten once no
/// entry stored before them can still be alive.
/// </summary>
public sealed class CatalogAnswerStore : BackgroundService
{
    private static readonly Meter Meter = new("Library.Gateway.CatalogCache");
    private static readonly Counter<long> Hits = Meter.CreateCounter<long>("library.gateway.catalog_cache.hits", description: "Catalog reads answered from the gateway's memory");
    private static readonly Counter<long> Misses = Meter.CreateCounter<long>("library.gateway.catalog_cache.misses", description: "Catalog reads looked up and not found (or no longer valid)");

    private readonly object gate = new();
    // Read without the lock (every hit looks up both: a lock taken on every hit was contended on
    // two oversubscribed cores, a preempted holder stalling every other reader); written under it.
    private readonly ConcurrentDictionary<string, Entry> entries;
    private readonly ConcurrentDictionary<string, Entry>.AlternateLookup<ReadOnlySpan<char>> lookup;
    private readonly LinkedList<string> byAge = new();
    private readonly ConcurrentDictionary<string, (long Sequence, long HeardAt)> stamps = new(StringComparer.Ordinal);
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
    private readonly CatalogPeers peers;
    private ISubscriber? subscriber;

    public CatalogAnswerStore(IConnectionMultiplexer redis, CatalogOutputCacheOptions options, IConfiguration configuration, TimeProvider time, ILogger<CatalogAnswerStore> logger)
    {
        entries = new(StringComparer.Ordinal);
        lookup = entries.GetAlternateLookup<ReadOnlySpan<char>>();
        this.redis = redis;
        this.options = options;
        this.time = time;
        this.logger = logger;
        channel = RedisChannel.Literal(CacheKeys.CatalogInvalidations(configuration));
        sequenceKey = CacheKeys.CatalogSequence(configuration);
        peers = new CatalogPeers(RedisChannel.Literal(CacheKeys.CatalogHeard(configuration)), time);
        redis.ConnectionFailed += (_, _) => Leave("connection to Redis lost");
        redis.ConnectionRestored += (_, _) => _ = JoinAsync();
    }

    /// <summary>True while the channel is heard: only then is anything served or stored.</summary>
    public bool IsLive => live;

    /// <summary>The other live gateway replicas and the last stamp each said it heard (<see cref="CatalogPeers"/>).</summary>
    public IReadOnlyDictionary<string, long> OtherReplicas() => peers.Live();

    /// <summary>The key of an answer: its path and query, as the proxy forwards them (the host is not forwarded, so it is not part of it).</summary>
    public static string Key(PathString path, QueryString query) => string.Concat(path.Value, query.Value);

    /// <summary>The answer kept for a path and query, if it is still current (no string is made for the key).</summary>
    public bool TryGet(PathString path, QueryString query, [NotNullWhen(true)] out CatalogAnswer? answer)
    {
        var p = path.Value.AsSpan();
        var q = query.Value.AsSpan();
        var length = p.Length + q.Length;
        var rented = length > 512 ? ArrayPool<char>.Shared.Rent(length) : null;
        var buffer = rented is null ? stackalloc char[512] : rented;
        p.CopyTo(buffer);
        q.CopyTo(buffer[p.Length..]);
        try
        {
            return TryGet(buffer[..length], out answer);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<char>.Shared.Return(rented);
            }
        }
    }

    /// <summary>
    /// Without the lock: a stamp heard while this runs may or may not be seen, as if the read had
    /// come just before it; a writer's next read comes after its stamp was heard
    /// (<see cref="WaitUntilHeardAsync"/>), and stamps are recorded before they count as heard.
    /// </summary>
    public bool TryGet(ReadOnlySpan<char> key, [NotNullWhen(true)] out CatalogAnswer? answer)
    {
        if (live && lookup.TryGetValue(key, out var stored, out var entry))
        {
            if (entry.ExpiresAt > time.GetTimestamp() && IsCurrent(entry.Snapshot, entry.Dependencies) && live)
            {
                Hits.Add(1);
                answer = entry.Answer;
                return true;
            }
            lock (gate)
            {
                if (entries.TryGetValue(stored, out var current) && ReferenceEquals(current, entry))
                {
                    Remove(stored, entry);
                }
            }
        }
        Misses.Add(1);
        answer = null;
        return false;
    }

    /// <summary>
    /// Keeps an answer the catalog computed from the given snapshot with the given dependencies,
    /// unless a stamp later than the snapshot has been heard on one of them already, or the
    /// snapshot predates the moment the channel was joined.
    /// </summary>
    public void Set(string key, CatalogAnswer answer, long snapshot, string[] dependencies, TimeSpan validFor)
    {
        var size = Footprint(key, answer, dependencies);
        if (size > options.MaximumCacheBytes)
        {
            return;
        }
        lock (gate)
        {
            if (!live || snapshot < floor || !IsCurrent(snapshot, dependencies))
            {
                return;
            }
            if (entries.TryGetValue(key, out var old))
            {
                Remove(key, old);
            }
            var node = byAge.AddLast(key);
            entries[key] = new Entry(answer, snapshot, dependencies, time.GetTimestamp() + (long)(validFor.TotalSeconds * time.TimestampFrequency), node, size);
            bytes += size;
            while (bytes > options.MaximumCacheBytes && byAge.First is { } oldest)
            {
                Remove(oldest.Value, entries[oldest.Value]);
            }
        }
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
    /// makes it), its headers and its terms as UTF-16 strings, and the objects that hold them
    /// (entry, answer, list node, dictionary slot, arrays: about 200 bytes on x64). Counting bodies
    /// alone let a flood of distinct searches with long query strings and tiny answers grow the
    /// store without bound.
    /// </summary>
    public static long Footprint(string key, CatalogAnswer answer, string[] dependencies)
    {
        const int PerObject = 200, PerString = 24;
        long size = PerObject + answer.Body.Length + PerString + 2L * key.Length;
        foreach (var (name, values) in answer.Headers)
        {
            size += PerString + 2L * name.Length + 16;
            foreach (var value in values)
            {
                size += PerString + 2L * (value?.Length ?? 0);
            }
        }
        foreach (var dependency in dependencies)
        {
            size += PerString + 2L * dependency.Length + 8;
        }
        return size;
    }

    /// <summary>Tags are terms here, not groups to evict: nothing evicts by tag.</summary>
    /// <summary>
    /// Until this replica has heard the stamp a write's answer names (the channel delivers in
    /// order), or a second; then, if it has not, it drops everything rather than serve older data.
    /// Then, within the same second, until every other live replica has said it heard it too
    /// (<see cref="CatalogPeers"/>); one that has not by then is named in a warning.
    /// </summary>
    public async Task WaitUntilHeardAsync(long sequence, CancellationToken cancellationToken)
    {
        var deadline = time.GetTimestamp() + time.TimestampFrequency;
        while (true)
        {
            Task next;
            lock (gate)
            {
                if (!live)
                {
                    return;
                }
                if (heard >= sequence)
                {
                    break;
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
        var behind = await peers.WaitAsync(sequence, deadline, cancellationToken);
        if (behind.Count > 0)
        {
            logger.LogWarning("Stamp {Sequence}: gateway replicas {Replicas} had not said they heard it within a second", sequence, behind);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await JoinAsync();
        using var timer = new PeriodicTimer(CatalogPeers.Heartbeat, time);
        var ticks = 0;
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            if (!live && redis.IsConnected)
            {
                await JoinAsync();
            }
            if (live && subscriber is { } heartbeat)
            {
                peers.Say(heartbeat, Interlocked.Read(ref heard));
            }
            if (++ticks % 5 == 0)
            {
                Sweep();
                peers.Sweep();
            }
        }
    }

    /// <summary>The other replicas stop waiting for this one as it stops.</summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        if (live && subscriber is { } goodbye)
        {
            try
            {
                await peers.SayGoneAsync(goodbye);
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException or ObjectDisposedException)
            {
                logger.LogDebug(ex, "Could not tell the other gateway replicas this one stops");
            }
        }
        await base.StopAsync(cancellationToken);
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
            await peers.JoinAsync(subscriber);
            this.subscriber = subscriber;
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
            peers.Say(subscriber, sequence);
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
        if (subscriber is { } announce)
        {
            peers.Say(announce, Interlocked.Read(ref heard));
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
                stamps.TryRemove(dependency, out _);
            }
        }
    }

    private void Remove(string key, Entry entry)
    {
        entries.TryRemove(key, out _);
        byAge.Remove(entry.Node);
        bytes -= entry.Size;
    }

    private void Clear()
    {
        entries.Clear();
        byAge.Clear();
        bytes = 0;
    }

    private sealed record Entry(CatalogAnswer Answer, long Snapshot, string[] Dependencies, long ExpiresAt, LinkedListNode<string> Node, long Size);
}
