using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Npgsql.EntityFrameworkCore.PostgreSQL.Infrastructure;

namespace Library.ServiceDefaults;

public static class PostgresExtensions
{
    /// <summary>
    /// What Aspire's <c>AddNpgsqlDbContext</c> gives, on the plain libraries: a pooled DbContext on
    /// <c>ConnectionStrings:{connectionName}</c> (an Npgsql keyword string, possibly multi-host),
    /// retries on transient failures, snake_case names, a readiness health check and Npgsql tracing
    /// (wired in <see cref="Microsoft.Extensions.Hosting.Extensions.ConfigureOpenTelemetry{TBuilder}"/>).
    /// </summary>
    public static IHostApplicationBuilder AddNpgsqlDbContext<TContext>(
        this IHostApplicationBuilder builder,
        string connectionName,
        Action<NpgsqlDbContextOptionsBuilder>? configureNpgsql = null)
        where TContext : DbContext
    {
        var connectionString = builder.Configuration.GetRequiredConnectionString(connectionName);

        // Interceptors registered as services (e.g. the event bus's outbox signal) join every context.
        builder.Services.AddDbContextPool<TContext>((services, options) => options
            .UseNpgsql(connectionString, npgsql =>
            {
                npgsql.EnableRetryOnFailure(maxRetryCount: 6, maxRetryDelay: TimeSpan.FromSeconds(5), errorCodesToAdd: null);
                configureNpgsql?.Invoke(npgsql);
            })
            .UseSnakeCaseNamingConvention()
            .AddInterceptors(services.GetServices<Microsoft.EntityFrameworkCore.Diagnostics.IInterceptor>()));

        builder.Services.AddHealthChecks().AddDbContextCheck<TContext>(
            name: connectionName,
            failureStatus: HealthStatus.Unhealthy,
            customTestQuery: static (db, ct) => db.Database.CanConnectAsync(ct));
        return builder;
    }

    /// <summary>The connection string, or a start-up error that names the key that is missing.</summary>
    public static string GetRequiredConnectionString(this IConfiguration configuration, string name) =>
        configuration.GetConnectionString(name) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException(
                $"Connection string '{name}' is missing: set ConnectionStrings:{name} (environment variable ConnectionStrings__{name}).");
}

/// <summary>
/// Lets <c>dotnet ef migrations add</c> build a context without starting the service (which would
/// need every connection string). Nothing connects at design time.
/// </summary>
public abstract class NpgsqlDesignTimeFactory<TContext> : Microsoft.EntityFrameworkCore.Design.IDesignTimeDbContextFactory<TContext>
    where TContext : DbContext
{
    public TContext CreateDbContext(string[] args) => Create(
        new DbContextOptionsBuilder<TContext>()
            .UseNpgsql("Host=design-time;Database=design-time")
            .UseSnakeCaseNamingConvention()
            .Options);

    protected abstract TContext Create(DbContextOptions<TContext> options);
}
