using Library.ServiceDefaults;
using Microsoft.AspNetCore.OutputCaching;
using Microsoft.AspNetCore.OutputCaching.StackExchangeRedis;
using Microsoft.Net.Http.Headers;
using StackExchange.Redis;

namespace Library.Gateway.Routing;

/// <summary>
/// Anonymous catalog reads (books, a book, search pages, facets, authors, categories, a title's
/// recommendations) answered at the door from ASP.NET Core's output cache, stored in Redis so
/// every gateway replica shares it. An entry is keyed by method, path, query and the catalog's
/// version (<see cref="CacheKeys.CatalogVersion"/>), which the catalog service bumps after every
/// committed change, including the availability changes it applies from lending's events: once
/// the catalog has applied an event, the next read misses and is forwarded, on every replica.
/// (Evicting by tag from the gateway's own event consumer was the alternative; it races the
/// catalog's consumer — the gateway could evict, then re-cache the catalog's not-yet-updated
/// answer.) Signed-in requests, non-200 answers and everything else are never cached. Redis down:
/// every read is forwarded, nothing fails.
/// </summary>
public static class CatalogOutputCache
{
    public const string PolicyName = "catalog-reads";
    public const string SectionName = "OutputCache";

    public static IHostApplicationBuilder AddCatalogOutputCache(this IHostApplicationBuilder builder)
    {
        var options = builder.Configuration.GetSection(SectionName).Get<CatalogOutputCacheOptions>() ?? new();
        builder.AddLibraryRedisClient("cache");
        var versionKey = CacheKeys.CatalogVersion(builder.Configuration);
        builder.Services.AddOutputCache(o =>
        {
            o.MaximumBodySize = options.MaximumBodyBytes;
            o.AddPolicy(PolicyName, new CatalogReadPolicy(versionKey, TimeSpan.FromSeconds(options.LifetimeSeconds), options.Enabled));
        });
        // The store of Microsoft.Extensions.Caching.StackExchangeRedis, on the gateway's own
        // multiplexer, behind a guard that turns a Redis failure into a miss.
        builder.Services.AddStackExchangeRedisOutputCache(o => o.InstanceName = CacheKeys.Prefix(builder.Configuration) + "gateway:");
        builder.Services.AddOptions<RedisOutputCacheOptions>().Configure<IServiceProvider>((o, sp) =>
            o.ConnectionMultiplexerFactory = () => Task.FromResult(sp.GetRequiredService<IConnectionMultiplexer>()));
        var redisStore = builder.Services.Last(d => d.ServiceType == typeof(IOutputCacheStore));
        builder.Services.Remove(redisStore);
        builder.Services.AddSingleton<IOutputCacheStore>(sp => new FailSoftOutputCacheStore(
            (IOutputCacheStore)(redisStore.ImplementationFactory?.Invoke(sp)
                ?? redisStore.ImplementationInstance
                ?? ActivatorUtilities.CreateInstance(sp, redisStore.ImplementationType!)),
            sp.GetRequiredService<IConnectionMultiplexer>(),
            sp.GetRequiredService<ILogger<FailSoftOutputCacheStore>>()));
        return builder;
    }

    private sealed class CatalogReadPolicy(string versionKey, TimeSpan lifetime, bool enabled) : IOutputCachePolicy
    {
        public async ValueTask CacheRequestAsync(OutputCacheContext context, CancellationToken cancellation)
        {
            var request = context.HttpContext.Request;
            if (!enabled
                || !(HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method))
                || request.Headers.ContainsKey(HeaderNames.Authorization))
            {
                return;
            }

            var redis = context.HttpContext.RequestServices.GetRequiredService<IConnectionMultiplexer>();
            if (!redis.IsConnected)
            {
                return;
            }
            RedisValue version;
            try
            {
                version = await redis.GetDatabase().StringGetAsync(versionKey);
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                return;
            }

            context.EnableOutputCaching = true;
            context.AllowCacheLookup = true;
            context.AllowCacheStorage = true;
            context.AllowLocking = true;
            context.ResponseExpirationTimeSpan = lifetime;
            context.CacheVaryByRules.QueryKeys = "*";
            context.CacheVaryByRules.VaryByValues["catalog-version"] = version.IsNull ? "0" : version.ToString();
        }

        public ValueTask ServeFromCacheAsync(OutputCacheContext context, CancellationToken cancellation) => ValueTask.CompletedTask;

        public ValueTask ServeResponseAsync(OutputCacheContext context, CancellationToken cancellation)
        {
            var response = context.HttpContext.Response;
            if (response.StatusCode != StatusCodes.Status200OK || response.Headers.ContainsKey(HeaderNames.SetCookie))
            {
                context.AllowCacheStorage = false;
            }
            return ValueTask.CompletedTask;
        }
    }
}

public sealed class CatalogOutputCacheOptions
{
    /// <summary>Off: every read is forwarded (to measure the cache, or to rule it out).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>An entry's lifetime: the bound on staleness if a version bump is ever lost.</summary>
    public int LifetimeSeconds { get; set; } = 60;

    public long MaximumBodyBytes { get; set; } = 1024 * 1024;
}

/// <summary>
/// The output cache without Redis: a read that cannot reach the store is a miss, a write is
/// dropped. (The middleware does not catch a store's exceptions: unguarded, a Redis outage would
/// turn every anonymous catalog read into a 500.)
/// </summary>
public sealed class FailSoftOutputCacheStore(IOutputCacheStore inner, IConnectionMultiplexer redis, ILogger<FailSoftOutputCacheStore> logger) : IOutputCacheStore
{
    public async ValueTask<byte[]?> GetAsync(string key, CancellationToken cancellationToken)
    {
        if (!redis.IsConnected)
        {
            return null;
        }
        try
        {
            return await inner.GetAsync(key, cancellationToken);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            logger.LogWarning("Output cache unavailable, forwarding: {Reason}", ex.Message);
            return null;
        }
    }

    public async ValueTask SetAsync(string key, byte[] value, string[]? tags, TimeSpan validFor, CancellationToken cancellationToken)
    {
        if (!redis.IsConnected)
        {
            return;
        }
        try
        {
            await inner.SetAsync(key, value, tags, validFor, cancellationToken);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            logger.LogWarning("Could not store an answer in the output cache: {Reason}", ex.Message);
        }
    }

    public async ValueTask EvictByTagAsync(string tag, CancellationToken cancellationToken)
    {
        try
        {
            await inner.EvictByTagAsync(tag, cancellationToken);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            logger.LogWarning("Could not evict {Tag} from the output cache: {Reason}", tag, ex.Message);
        }
    }
}
