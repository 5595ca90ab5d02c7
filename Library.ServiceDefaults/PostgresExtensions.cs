using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;
using Npgsql.EntityFrameworkCore.PostgreSQL;
using Npgsql.EntityFrameworkCore.PostgreSQL.Infrastructure;

namespace Library.ServiceDefaults;

public static class PostgresExtensions
{
    /// <summary>
    /// A pooled DbContext on <c>ConnectionStrings:{connectionName}</c> (an Npgsql keyword string,
    /// possibly multi-host), registered with EF Core's <c>AddDbContextPool</c> and enriched by
    /// Aspire's <c>EnrichNpgsqlDbContext</c> (Aspire.Npgsql.EntityFrameworkCore.PostgreSQL): its
    /// readiness check named after the context, Unhealthy while the database cannot be reached,
    /// Npgsql tracing and metrics, and its <c>Aspire:Npgsql:EntityFrameworkCore:PostgreSQL</c>
    /// settings. Not Aspire's <c>AddNpgsqlDbContext</c>: its options callback gets no service
    /// provider, and the interceptors registered as services (the event bus's outbox signal) must
    /// join every context. Aspire's retry is off (<c>DisableRetry</c>) in favour of
    /// <see cref="FailoverAwareExecutionStrategy"/>, which also retries what a failover looks like.
    /// Names are snake_case.
    /// </summary>
    public static IHostApplicationBuilder AddLibraryNpgsqlDbContext<TContext>(
        this IHostApplicationBuilder builder,
        string connectionName,
        Action<NpgsqlDbContextOptionsBuilder>? configureNpgsql = null)
        where TContext : DbContext
    {
        var connectionString = builder.Configuration.GetRequiredConnectionString(connectionName);

        builder.Services.AddDbContextPool<TContext>((services, options) => options
            .UseNpgsql(WithBoundedPool(connectionString), npgsql =>
            {
                npgsql.ExecutionStrategy(dependencies => new FailoverAwareExecutionStrategy(dependencies));
                configureNpgsql?.Invoke(npgsql);
            })
            .UseSnakeCaseNamingConvention()
            .AddInterceptors(services.GetServices<Microsoft.EntityFrameworkCore.Diagnostics.IInterceptor>()),
            poolSize: PoolSize);

        builder.EnrichNpgsqlDbContext<TContext>(settings => settings.DisableRetry = true);
        return builder;
    }

    /// <summary>
    /// Connections per replica (Npgsql's <c>Maximum Pool Size</c>) and DbContexts kept for reuse
    /// (EF Core's pool). The defaults (100 connections, 1,024 contexts) are high-water marks a
    /// replica keeps: after the bench's burst of 500 borrowers each lending replica held 100 open
    /// connections (100 PostgreSQL backends) for Npgsql's 5-minute idle lifetime and ~250 pooled
    /// contexts for good. Bounded: 7 MB less live heap per lending replica, 64 backends instead
    /// of 200, and the burst drained no slower (0.72x) on this 2-core machine. Past 32 a request
    /// waits for a connection (FIFO, within the pool's 15 s <c>Timeout</c>) instead of opening
    /// one; a context past 32 is disposed on return instead of kept (bench/README.md, "Memory,
    /// third pass").
    /// </summary>
    public const int PoolSize = 32;

    /// <summary>
    /// <paramref name="connectionString"/> with <c>Maximum Pool Size</c> = <see cref="PoolSize"/>,
    /// unless it names a size itself (a deployment with more cores can raise it).
    /// </summary>
    public static string WithBoundedPool(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        var named = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString };
        string[] keywords = ["Maximum Pool Size", "Max Pool Size", "MaxPoolSize", "MaximumPoolSize"];
        if (!keywords.Any(named.ContainsKey))
        {
            builder.MaxPoolSize = PoolSize;
        }
        return builder.ConnectionString;
    }

    /// <summary>
    /// True for the failures a retry can cure: Npgsql's transient ones (I/O, timeouts, admin
    /// shutdown, cannot-connect-now, serialization failures...) and, with a multi-host connection
    /// string, "no suitable host": during a failover the old primary is down and the standby not
    /// promoted yet (or not re-checked yet, <c>Host Recheck Seconds</c>); a moment later the new
    /// primary is found. Also a read-only transaction error (25006): a node that was primary when
    /// the connection was opened and is a standby now.
    /// </summary>
    public static bool IsTransientForFailover(Exception exception) => exception switch
    {
        PostgresException { SqlState: PostgresErrorCodes.ReadOnlySqlTransaction } => true,
        NpgsqlException { IsTransient: true } => true,
        NpgsqlException { InnerException: AggregateException inner } => inner.InnerExceptions.All(IsTransientForFailover),
        NpgsqlException ex when ex.InnerException is null && ex.Message.StartsWith("No suitable host", StringComparison.Ordinal) => true,
        _ => false,
    };

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

/// <summary>
/// EF Core's Npgsql retrying strategy (6 retries, at most 5 s apart: about 20 s in all, longer
/// than a failover takes), also retrying what <see cref="PostgresExtensions.IsTransientForFailover"/>
/// accepts. Npgsql itself clears the pool of a host whose connection broke and marks it offline,
/// so a retry opens a connection to whichever node is primary now.
/// </summary>
public sealed class FailoverAwareExecutionStrategy(ExecutionStrategyDependencies dependencies)
    : NpgsqlRetryingExecutionStrategy(dependencies, maxRetryCount: 6, maxRetryDelay: TimeSpan.FromSeconds(5), errorCodesToAdd: null)
{
    protected override bool ShouldRetryOn(Exception? exception) =>
        base.ShouldRetryOn(exception) || (exception is not null && PostgresExtensions.IsTransientForFailover(exception));
}
