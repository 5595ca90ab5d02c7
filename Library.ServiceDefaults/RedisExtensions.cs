using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Library.ServiceDefaults;

public static class RedisExtensions
{
    /// <summary>
    /// Aspire's Redis client (Aspire.StackExchange.Redis: one <see cref="IConnectionMultiplexer"/>
    /// from <c>ConnectionStrings:{connectionName}</c>, created on first use, with its tracing and
    /// its <c>Aspire:StackExchange:Redis</c> settings) plus what a cache needs here: the string is
    /// parsed as it is, so the <c>ssl=true</c> Aspire adds since 13.1 is kept; short timeouts; the
    /// service starts and keeps serving while Redis is down: the multiplexer reconnects by itself
    /// (<c>AbortOnConnectFail=false</c>), failures and recoveries are logged, and the health check
    /// reports Degraded, not Unhealthy, so the gateway keeps routing to this replica. (Aspire's
    /// own check is Unhealthy-only, so it is switched off and replaced.)
    /// </summary>
    public static TBuilder AddLibraryRedisClient<TBuilder>(this TBuilder builder, string connectionName)
        where TBuilder : IHostApplicationBuilder
    {
        // A missing key fails the start and names the key (Aspire would fail on first use).
        builder.Configuration.GetRequiredConnectionString(connectionName);
        var clientName = builder.Environment.ApplicationName;
        builder.AddRedisClient(
            connectionName,
            settings =>
            {
                settings.DisableHealthChecks = true;
                // Aspire's Redis tracing keeps every traced request's Activity and Redis profiling
                // session in memory until its flush, every 10 s (not configurable from here): at
                // 10,000 reads/s a book-service replica held 190 MiB of them (bench/README.md, issue
                // 15, memory). Kept where the spans go somewhere (an OTLP endpoint: the AppHost's
                // dashboard, a collector), off where nothing would ever read them.
                settings.DisableTracing = !Telemetry.IsExported(builder.Configuration);
            },
            options =>
            {
                options.AbortOnConnectFail = false;
                options.ConnectTimeout = 2_000;
                options.SyncTimeout = 2_000;
                options.AsyncTimeout = 2_000;
                options.ClientName ??= clientName;
            });

        // Aspire's factory, wrapped so the connection's failures and recoveries are logged from
        // the moment it exists (it stays lazy: created on first use).
        var aspire = builder.Services.Last(d => d.ServiceType == typeof(IConnectionMultiplexer) && !d.IsKeyedService);
        var create = aspire.ImplementationFactory
            ?? throw new InvalidOperationException("Aspire's AddRedisClient no longer registers IConnectionMultiplexer with a factory.");
        builder.Services.Remove(aspire);
        builder.Services.AddSingleton<IConnectionMultiplexer>(sp =>
        {
            var multiplexer = (IConnectionMultiplexer)create(sp);
            var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("Library.Redis");
            multiplexer.ConnectionFailed += (_, e) =>
                logger.LogWarning("Redis connection failed ({FailureType}): {Reason}", e.FailureType, e.Exception?.Message);
            multiplexer.ConnectionRestored += (_, e) => logger.LogInformation("Redis connection restored");
            return multiplexer;
        });

        builder.Services.AddHealthChecks().AddRedis(
            sp => sp.GetRequiredService<IConnectionMultiplexer>(),
            name: connectionName,
            failureStatus: HealthStatus.Degraded,
            timeout: TimeSpan.FromSeconds(2));
        return builder;
    }
}
