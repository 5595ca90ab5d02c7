using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Library.ServiceDefaults;

public static class RedisExtensions
{
    /// <summary>
    /// What Aspire's <c>AddRedisClient</c> gives: one <see cref="IConnectionMultiplexer"/> from
    /// <c>ConnectionStrings:{connectionName}</c>. The string is parsed as it is, so the
    /// <c>ssl=true</c> Aspire adds since 13.1 is kept. The service starts and keeps serving while
    /// Redis is down (it is a cache): the multiplexer reconnects by itself, and the health check
    /// reports Degraded, not Unhealthy, so the gateway keeps routing to this replica.
    /// </summary>
    public static TBuilder AddRedisClient<TBuilder>(this TBuilder builder, string connectionName)
        where TBuilder : IHostApplicationBuilder
    {
        var options = ConfigurationOptions.Parse(builder.Configuration.GetRequiredConnectionString(connectionName));
        options.AbortOnConnectFail = false;
        options.ConnectTimeout = 2_000;
        options.SyncTimeout = 2_000;
        options.AsyncTimeout = 2_000;
        options.ClientName ??= builder.Environment.ApplicationName;

        builder.Services.AddSingleton<IConnectionMultiplexer>(sp =>
        {
            var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("Library.Redis");
            var multiplexer = ConnectionMultiplexer.Connect(options);
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
