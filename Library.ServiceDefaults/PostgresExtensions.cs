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
    /// Names are snake_case. The connection string gets <see cref="WithPoolSettings"/>.
    /// </summary>
    public static IHostApplicationBuilder AddLibraryNpgsqlDbContext<TContext>(
        this IHostApplicationBuilder builder,
        string connectionName,
        Action<NpgsqlDbContextOptionsBuilder>? configureNpgsql = null,
        bool autoPrepare = true,
        string? sessionSettings = null)
        where TContext : DbContext
    {
        var connectionString = WithPoolSettings(builder.Configuration.GetRequiredConnectionString(connectionName), autoPrepare, sessionSettings);

        builder.Services.AddDbContextPool<TContext>((services, options) => options
            .UseNpgsql(WithBoundedPool(connectionString), npgsql =>
            {
                npgsql.ExecutionStrategy(dependencies => new FailoverAwareExecutionStrategy(dependencies));
                configureNpgsql?.Invoke(npgsql);
            })
            .UseSnakeCaseNamingConvention()
            .AddInterceptors(services.GetServices<Microsoft.EntityFrameworkCore.Diagnostics.IInterceptor>()),
            poolSize: PoolSize);

        builder.EnrichNpgsqlDbContext<TContext>(settings =>
        {
            settings.DisableRetry = true;
            // A span per SQL command, with its text: only where spans are exported (Telemetry.IsExported).
            settings.DisableTracing = !Telemetry.IsExported(builder.Configuration);
        });
        return builder;
    }

    /// <summary>
    /// The services' Npgsql pool settings, unless the connection string names them itself (then
    /// it wins: a deployment can turn either off, a benchmark can compare):
    /// <list type="bullet">
    /// <item><c>No Reset On Close=true</c>: no <c>DISCARD ALL</c> round trip each time a pooled
    /// connection goes back to the pool (about three per borrow). Safe because no code of the
    /// services leaves session state on a pooled connection: their advisory locks are
    /// transaction-scoped (<c>pg_advisory_xact_lock</c>), their one <c>SET</c> is <c>SET LOCAL</c>
    /// (the reports), nothing uses <c>LISTEN</c>, temporary tables or SQL <c>PREPARE</c> (Npgsql's
    /// prepared statements, automatic or explicit, are meant to outlive the return: see below); session
    /// settings come as startup Options (<c>sessionSettings</c>), the same for every connection; the
    /// migration's session lock has a connection of its own outside the pool
    /// (<see cref="MigrationExtensions"/>); Npgsql still rolls back an open transaction on close.
    /// Code that adds session state must reset it itself.</item>
    /// <item><c>Max Auto Prepare=64</c>, <c>Auto Prepare Min Usages=2</c>: the statements EF sends
    /// again and again (every borrow sends the same dozen) are prepared on each physical connection
    /// after their second use, so PostgreSQL stops parsing and planning them, and prepared
    /// statements survive the connection's return to the pool (nothing discards them now). A
    /// migration that adds a column changes the result of a prepared <c>SELECT *</c> /
    /// <c>RETURNING *</c> (raw SQL here uses both): PostgreSQL answers "cached plan must not change
    /// result type" once, Npgsql then drops that prepared statement, and
    /// <see cref="FailoverAwareExecutionStrategy"/> retries the unit of work, which prepares it afresh.</item>
    /// </list>
    /// </summary>
    /// <param name="connectionString">The service's connection string.</param>
    /// <param name="autoPrepare">
    /// False: no automatic preparation (<c>Max Auto Prepare=0</c>). The catalog's searches are
    /// statements whose best plan depends on their parameters (a category of 11,000 books or of
    /// 40): prepared, PostgreSQL moves to one generic plan after five runs, and
    /// <c>/api/books/facets?category=fantasy</c> took 97 ms instead of 46 at 100,000 titles.
    /// </param>
    /// <param name="sessionSettings">
    /// PostgreSQL settings for every session of the pool (Npgsql's <c>Options</c>, e.g.
    /// <c>-c synchronize_seqscans=off</c>), before the connection string's own Options, which win.
    /// </param>
    public static string WithPoolSettings(string connectionString, bool autoPrepare = true, string? sessionSettings = null)
    {
        var named = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString };
        bool Names(string keyword) => named.ContainsKey(keyword) || named.ContainsKey(keyword.Replace(" ", "", StringComparison.Ordinal));
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        if (!Names("No Reset On Close"))
        {
            builder.NoResetOnClose = true;
        }
        if (!Names("Max Auto Prepare"))
        {
            builder.MaxAutoPrepare = autoPrepare ? 64 : 0;
        }
        if (!Names("Auto Prepare Min Usages"))
        {
            builder.AutoPrepareMinUsages = 2;
        }
        if (!string.IsNullOrEmpty(sessionSettings))
        {
            builder.Options = string.IsNullOrEmpty(builder.Options) ? sessionSettings : $"{sessionSettings} {builder.Options}";
        }
        return builder.ConnectionString;
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
    /// PostgreSQL's answer to a prepared statement whose result columns changed under it (a
    /// migration added a column a <c>SELECT *</c> returns): 0A000 "cached plan must not change
    /// result type". Npgsql marks the statement invalid when it sees this, so the same unit of work
    /// run again prepares it anew and succeeds.
    /// </summary>
    public static bool IsStalePreparedStatement(Exception exception) =>
        exception is PostgresException { SqlState: PostgresErrorCodes.FeatureNotSupported } postgres
        && postgres.MessageText.Contains("cached plan must not change result type", StringComparison.Ordinal);

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

    /// <summary>
    /// Commits a request's transaction once its work is done, whatever the request's token says
    /// by then: a client that leaves now (a closed connection, wrk ending a run) neither undoes
    /// work already done nor leaves its retry to guess whether the commit happened; and EF logs a
    /// cancelled commit as an error (<c>TransactionError</c>, 20205), which a client leaving is not.
    /// The work before it still runs under the request's token.
    /// </summary>
    public static Task CommitFinishedAsync(this IDbContextTransaction transaction) =>
        transaction.CommitAsync(CancellationToken.None);

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
/// EF Core's Npgsql retrying strategy, also retrying what <see cref="PostgresExtensions.IsTransientForFailover"/>
/// accepts. Npgsql itself clears the pool of a host whose connection broke and marks it offline,
/// so a retry opens a connection to whichever node is primary now. Also retries a prepared
/// statement gone stale after a migration (<see cref="PostgresExtensions.IsStalePreparedStatement"/>).
/// Work that holds a <see cref="GateTurn"/> steps aside for a retry's delay and takes a turn again
/// before the next attempt, so the requests behind it are not kept waiting by its sleep.
/// </summary>
/// <remarks>
/// <see cref="MaxRetries"/> retries: at once, after 0.25 s and 0.5 s, then a second apart (each
/// delay up to 10 % longer, so requests do not retry in step): about 20 s in all, longer than a
/// failover takes. EF's own schedule (0, 1, 3, 5, 5, 5 s) left a request that missed the new
/// primary at its 1 s retry waiting until 4 s: the fault suite's failover recovered in 1.0 s or
/// in 4.5-5.6 s, as the promotion fell before or after that retry.
/// </remarks>
public sealed class FailoverAwareExecutionStrategy(ExecutionStrategyDependencies dependencies)
    : NpgsqlRetryingExecutionStrategy(dependencies, maxRetryCount: MaxRetries, maxRetryDelay: LongestDelay, errorCodesToAdd: null)
{
    /// <summary>Retries before a request gives up (a 503): about 20 s of them.</summary>
    public const int MaxRetries = 21;

    /// <summary>The second retry's delay; each after it twice the one before, up to <see cref="LongestDelay"/>.</summary>
    private static readonly TimeSpan FirstDelay = TimeSpan.FromMilliseconds(250);

    private static readonly TimeSpan LongestDelay = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Shorter delays keep the turn: EF retries the first failure at once, and giving the turn up
    /// for that would only send the request to the back of the queue.
    /// </summary>
    private static readonly TimeSpan StepAsideFrom = TimeSpan.FromMilliseconds(50);

    private TimeSpan? nextDelay;

    protected override bool ShouldRetryOn(Exception? exception) =>
        base.ShouldRetryOn(exception)
        || (exception is not null && (PostgresExtensions.IsTransientForFailover(exception) || PostgresExtensions.IsStalePreparedStatement(exception)));

    public override Task<TResult> ExecuteAsync<TState, TResult>(
        TState state,
        Func<DbContext, TState, CancellationToken, Task<TResult>> operation,
        Func<DbContext, TState, CancellationToken, Task<ExecutionResult<TResult>>>? verifySucceeded,
        CancellationToken cancellationToken = default) =>
        // Only the outermost execution retries (a nested one runs its operation as it is), so only
        // its attempts need to take the turn again.
        GateTurn.Current is { } turn && Current is null
            ? base.ExecuteAsync(state, async (context, s, ct) =>
            {
                await turn.ResumeAsync(ct);
                return await operation(context, s, ct);
            }, verifySucceeded, cancellationToken)
            : base.ExecuteAsync(state, operation, verifySucceeded, cancellationToken);

    public override TResult Execute<TState, TResult>(
        TState state,
        Func<DbContext, TState, TResult> operation,
        Func<DbContext, TState, ExecutionResult<TResult>>? verifySucceeded) =>
        GateTurn.Current is { } turn && Current is null
            ? base.Execute(state, (context, s) =>
            {
                turn.Resume();
                return operation(context, s);
            }, verifySucceeded)
            : base.Execute(state, operation, verifySucceeded);

    protected override TimeSpan? GetNextDelay(Exception lastException) =>
        nextDelay = DelayBefore(ExceptionsEncountered.Count, Random.NextDouble());

    /// <summary>
    /// The delay before retry <paramref name="retry"/> (1 for the first), or null past
    /// <see cref="MaxRetries"/>: 0, 0.25 s, 0.5 s, then 1 s, each up to 10 % longer by
    /// <paramref name="jitter"/> (0 to 1).
    /// </summary>
    public static TimeSpan? DelayBefore(int retry, double jitter) => retry switch
    {
        < 1 => throw new ArgumentOutOfRangeException(nameof(retry), retry, "Retries count from 1."),
        > MaxRetries => null,
        1 => TimeSpan.Zero,
        _ => TimeSpan.FromMilliseconds(Math.Min(FirstDelay.TotalMilliseconds * Math.Pow(2, retry - 2), LongestDelay.TotalMilliseconds) * (1 + (jitter * 0.1))),
    };

    /// <summary>Called after a failed attempt, before the delay that <see cref="GetNextDelay"/> chose.</summary>
    protected override void OnRetry()
    {
        if (nextDelay >= StepAsideFrom)
        {
            GateTurn.Current?.StepAside();
        }
        base.OnRetry();
    }
}
