using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Library.ServiceDefaults;
using StackExchange.Redis;

namespace Library.BookService.Books;

/// <summary>
/// Read-through cache of catalog answers (a book, a search page, facets, recommendations) in
/// Redis, shared by every replica, invalidated per entity (<see cref="CacheKeys"/>). An entry
/// records the sequence read before its answer was computed and the dependencies the answer
/// used (its titles, and the lists, availability or loan history it was filtered or ordered by);
/// it is served while none of those carries a later stamp. So a borrow of one title drops the
/// pages that show it and the lists filtered by availability, and leaves the rest cached.
/// A reader that raced a write either sees the write's stamp (and does not store) or stores an
/// entry the stamp invalidates a moment later: nothing stale is served. The same snapshot and
/// dependencies go to the gateway in <see cref="CacheKeys.AnswerHeader"/>, so its in-process
/// cache is kept exact by the same stamps. Redis down: every read goes to PostgreSQL, nothing
/// is marked cacheable, and the service stays up.
/// (HybridCache was the first choice, but its per-replica memory layer would serve one replica's
/// stale copy after another replica's write.)
/// </summary>
public sealed class CatalogCache
{
    private readonly string sequenceKey;
    private readonly string dependencyPrefix;
    private readonly RedisChannel channel;
    private readonly string keyPrefix;
    private readonly IConnectionMultiplexer redis;
    private readonly IHttpContextAccessor http;
    private readonly ILogger<CatalogCache> logger;

    /// <summary>
    /// Stamps every dependency with the next sequence and announces it, atomically: the
    /// announcements leave Redis in sequence order. KEYS[1] the sequence, ARGV[1] the
    /// dependency prefix, ARGV[2] the channel, ARGV[3..] the dependencies.
    /// </summary>
    private const string StampScript = """
        local seq = redis.call('INCR', KEYS[1])
        local msg = tostring(seq)
        for i = 3, #ARGV do
            redis.call('SET', ARGV[1] .. ARGV[i], seq)
            msg = msg .. ' ' .. ARGV[i]
        end
        redis.call('PUBLISH', ARGV[2], msg)
        return seq
        """;

    public CatalogCache(IConnectionMultiplexer redis, IConfiguration configuration, IHttpContextAccessor http, ILogger<CatalogCache> logger)
    {
        this.redis = redis;
        this.http = http;
        this.logger = logger;
        sequenceKey = CacheKeys.CatalogSequence(configuration);
        dependencyPrefix = CacheKeys.CatalogDependencyPrefix(configuration);
        channel = RedisChannel.Literal(CacheKeys.CatalogInvalidations(configuration));
        keyPrefix = CacheKeys.Prefix(configuration) + "catalog:e:";
        // Writes made while Redis was unreachable could not stamp anything: stamp everything when
        // Redis is back, so nothing cached before the outage is served after it.
        redis.ConnectionRestored += (_, _) => _ = InvalidateAsync();
    }
    private static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(10);
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>
    /// The cached answer, or <paramref name="create"/>'s. <paramref name="dependsOn"/> names what
    /// the answer depends on besides the titles it shows (those are found in the answer itself).
    /// </summary>
    public async Task<T> GetOrCreateAsync<T>(string kind, object key, Func<CancellationToken, Task<T>> create, CancellationToken ct, params string[] dependsOn)
    {
        if (!redis.IsConnected)
        {
            return await create(ct);
        }

        string cacheKey;
        long snapshot;
        try
        {
            var db = redis.GetDatabase();
            cacheKey = $"{keyPrefix}{kind}:{Hash(key)}";
            var cachedTask = db.StringGetAsync(cacheKey);
            var sequenceTask = db.StringGetAsync(sequenceKey);
            var cached = await cachedTask;
            snapshot = (long?)await sequenceTask ?? 0;
            if (cached.HasValue && Entry.TryRead(cached!, out var entry) && await IsCurrentAsync(db, entry.Snapshot, entry.Dependencies))
            {
                Declare(entry.Snapshot, entry.Dependencies);
                return JsonSerializer.Deserialize<T>(entry.Body.Span, Json)!;
            }
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            logger.LogWarning("Catalog cache unavailable, reading PostgreSQL: {Reason}", ex.Message);
            return await create(ct);
        }

        var value = await create(ct);
        var dependencies = dependsOn.Concat(Shown(key, value)).Distinct().ToArray();
        try
        {
            var db = redis.GetDatabase();
            // A write stamped after the snapshot may not be in the answer: answer it, keep it out of the cache.
            if (await IsCurrentAsync(db, snapshot, dependencies))
            {
                await db.StringSetAsync(cacheKey, Entry.Write(snapshot, dependencies, JsonSerializer.SerializeToUtf8Bytes(value, Json)), Lifetime, flags: CommandFlags.FireAndForget);
            }
            Declare(snapshot, dependencies);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            logger.LogWarning("Could not cache a catalog answer: {Reason}", ex.Message);
        }
        return value;
    }

    /// <summary>The current sequence: taken before computing an answer that is not cached here but may be at the gateway.</summary>
    public async Task<long?> SnapshotAsync()
    {
        if (!redis.IsConnected)
        {
            return null;
        }
        try
        {
            return (long?)await redis.GetDatabase().StringGetAsync(sequenceKey) ?? 0;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            logger.LogWarning("Catalog cache unavailable: {Reason}", ex.Message);
            return null;
        }
    }

    /// <summary>Everything: after a change too wide to describe (an import) or an outage.</summary>
    public Task InvalidateAsync() => InvalidateAsync([CatalogDependency.All]);

    /// <summary>
    /// Call after a change has committed (<see cref="CatalogInvalidation"/> does, for every
    /// transaction of the catalog's database). The stamp goes to the gateway on the write's
    /// answer too, so it waits for the announcement before answering the next read.
    /// </summary>
    public async Task InvalidateAsync(IReadOnlyCollection<string> dependencies)
    {
        if (dependencies.Count == 0)
        {
            return;
        }
        try
        {
            var args = new RedisValue[dependencies.Count + 2];
            args[0] = dependencyPrefix;
            args[1] = channel.ToString();
            var i = 2;
            foreach (var dependency in dependencies)
            {
                args[i++] = dependency;
            }
            var sequence = (long)await redis.GetDatabase().ScriptEvaluateAsync(StampScript, [sequenceKey], args);
            if (http.HttpContext is { Response.HasStarted: false } context)
            {
                context.Response.Headers[CacheKeys.InvalidatedHeader] = sequence.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // Cached answers stay until they expire (at most 10 minutes here, 1 at the gateway) if
            // this is lost while Redis answers; a lost connection stamps everything when it is back.
            logger.LogError("Could not invalidate {Dependencies} in the catalog cache: {Reason}", string.Join(' ', dependencies), ex.Message);
        }
    }

    /// <summary>Dependencies of a list of titles filtered and ordered so (the titles it shows come from the answer).</summary>
    public static string[] ListDependencies(CatalogFilter filter, string? sort) =>
        [
            CatalogDependency.Lists, CatalogDependency.Names,
            .. filter.Available is null ? Array.Empty<string>() : [CatalogDependency.Availability],
            .. sort == "popular" ? [CatalogDependency.Loans] : Array.Empty<string>(),
        ];

    private async Task<bool> IsCurrentAsync(IDatabase db, long snapshot, string[] dependencies)
    {
        var keys = new RedisKey[dependencies.Length + 1];
        keys[0] = dependencyPrefix + CatalogDependency.All;
        for (var i = 0; i < dependencies.Length; i++)
        {
            keys[i + 1] = dependencyPrefix + dependencies[i];
        }
        foreach (var stamp in await db.StringGetAsync(keys))
        {
            if ((long?)stamp > snapshot)
            {
                return false;
            }
        }
        return true;
    }

    private void Declare(long snapshot, string[] dependencies)
    {
        if (http.HttpContext is { } context)
        {
            context.Features.Set(new CatalogAnswer(snapshot, dependencies));
        }
    }

    /// <summary>The titles an answer shows (a missing title: the one it was asked for), and their names.</summary>
    private static IEnumerable<string> Shown<T>(object key, T value)
    {
        IEnumerable<BookResponse> books = value switch
        {
            BookResponse book => [book],
            PagedList<BookResponse> page => page.Items,
            BookPage page => page.Items,
            IEnumerable<BookResponse> list => list,
            _ => [],
        };
        var any = false;
        foreach (var book in books)
        {
            any = true;
            yield return CatalogDependency.Book(book.Id);
        }
        if (value is null && key is Guid id)
        {
            yield return CatalogDependency.Book(id);
        }
        if (any || value is null)
        {
            yield return CatalogDependency.Names;
        }
    }

    private static string Hash(object key) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(key, Json))))[..32];

    /// <summary>An entry: "{snapshot} {dependency}...\n" then the answer's JSON.</summary>
    private readonly record struct Entry(long Snapshot, string[] Dependencies, ReadOnlyMemory<byte> Body)
    {
        public static byte[] Write(long snapshot, string[] dependencies, byte[] body)
        {
            var head = Encoding.ASCII.GetBytes(snapshot.ToString(System.Globalization.CultureInfo.InvariantCulture) + " " + string.Join(' ', dependencies) + "\n");
            return [.. head, .. body];
        }

        public static bool TryRead(byte[] bytes, out Entry entry)
        {
            entry = default;
            var end = Array.IndexOf(bytes, (byte)'\n');
            if (end < 0)
            {
                return false;
            }
            var head = Encoding.ASCII.GetString(bytes, 0, end).Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (head.Length == 0 || !long.TryParse(head[0], out var snapshot))
            {
                return false;
            }
            entry = new Entry(snapshot, head[1..], bytes.AsMemory(end + 1));
            return true;
        }
    }
}

/// <summary>What a catalog answer was computed from: the gateway may cache it on these terms.</summary>
public sealed record CatalogAnswer(long Snapshot, IReadOnlyCollection<string> Dependencies);
