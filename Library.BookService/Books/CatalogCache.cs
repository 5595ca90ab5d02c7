using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Library.ServiceDefaults;
using StackExchange.Redis;

namespace Library.BookService.Books;

/// <summary>
/// Read-through cache of catalog answers (a book, a search page, facets, recommendations) in
/// Redis, shared by every replica. Every key carries the catalog's version (<see cref="CacheKeys.CatalogVersion"/>), and
/// every write and availability change bumps that version after it commits: the next read, on
/// any replica, misses and goes to PostgreSQL, so nothing stale is served (the old keys simply
/// expire). A reader that raced a write stores its answer under the old version, which nobody
/// reads any more. Redis down: every read goes to PostgreSQL and the service stays up.
/// (HybridCache was the first choice, but its per-replica memory layer would serve one replica's
/// stale copy after another replica's write.)
/// </summary>
public sealed class CatalogCache
{
    private readonly string versionKey;
    private readonly string keyPrefix;
    private readonly IConnectionMultiplexer redis;
    private readonly ILogger<CatalogCache> logger;

    public CatalogCache(IConnectionMultiplexer redis, IConfiguration configuration, ILogger<CatalogCache> logger)
    {
        this.redis = redis;
        this.logger = logger;
        versionKey = CacheKeys.CatalogVersion(configuration);
        keyPrefix = CacheKeys.Prefix(configuration) + "catalog:";
        // Writes made while Redis was unreachable could not bump the version: bump it when Redis
        // is back, so nothing cached before the outage is served after it.
        redis.ConnectionRestored += (_, _) => _ = InvalidateAsync();
    }
    private static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(10);
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public async Task<T> GetOrCreateAsync<T>(string kind, object key, Func<CancellationToken, Task<T>> create, CancellationToken ct)
    {
        if (!redis.IsConnected)
        {
            return await create(ct);
        }

        string cacheKey;
        try
        {
            var db = redis.GetDatabase();
            var version = (long?)await db.StringGetAsync(versionKey) ?? 0;
            cacheKey = $"{keyPrefix}{version}:{kind}:{Hash(key)}";
            var cached = await db.StringGetAsync(cacheKey);
            if (cached.HasValue)
            {
                return JsonSerializer.Deserialize<T>((byte[])cached!, Json)!;
            }
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            logger.LogWarning("Catalog cache unavailable, reading PostgreSQL: {Reason}", ex.Message);
            return await create(ct);
        }

        var value = await create(ct);
        try
        {
            await redis.GetDatabase().StringSetAsync(cacheKey, JsonSerializer.SerializeToUtf8Bytes(value, Json), Lifetime, flags: CommandFlags.FireAndForget);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            logger.LogWarning("Could not cache a catalog answer: {Reason}", ex.Message);
        }
        return value;
    }

    /// <summary>Call after a change to the catalog (or a title's availability) has committed.</summary>
    public async Task InvalidateAsync()
    {
        try
        {
            await redis.GetDatabase().StringIncrementAsync(versionKey);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // Cached answers stay valid until they expire (at most 10 minutes) if this is lost.
            logger.LogError("Could not invalidate the catalog cache: {Reason}", ex.Message);
        }
    }

    private static string Hash(object key) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(key, Json))))[..32];
}
