using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Library.ServiceDefaults;

public static class MigrationExtensions
{
    /// <summary>
    /// Applies the context's EF Core migrations (then the optional seeder) while the host starts,
    /// before it serves a request. Replicas starting together against an empty database take turns
    /// through a PostgreSQL advisory lock keyed by the context, so exactly one of them migrates and
    /// the others find the work done.
    /// </summary>
    public static IServiceCollection AddMigration<TContext>(
        this IServiceCollection services,
        Func<TContext, IServiceProvider, CancellationToken, Task>? seed = null)
        where TContext : DbContext =>
        services.AddHostedService(sp => new MigrationHostedService<TContext>(sp, seed));

    /// <summary>A stable 64-bit lock key per context (the same in every replica and every release).</summary>
    internal static long AdvisoryLockKey(string name) =>
        BitConverter.ToInt64(SHA256.HashData(Encoding.UTF8.GetBytes("library-migrate:" + name)), 0);

    private sealed class MigrationHostedService<TContext>(
        IServiceProvider services,
        Func<TContext, IServiceProvider, CancellationToken, Task>? seed) : IHostedService
        where TContext : DbContext
    {
        private static readonly TimeSpan StartDeadline = TimeSpan.FromMinutes(2);

        public async Task StartAsync(CancellationToken cancellationToken)
        {
            var logger = services.GetRequiredService<ILogger<TContext>>();
            using var activity = Telemetry.Startup.StartActivity($"Migrate {typeof(TContext).Name}");
            var stopwatch = Stopwatch.StartNew();

            // The database may still be starting (all processes start together): retry the
            // connection until the deadline rather than crash-looping.
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    await MigrateOnceAsync(logger, cancellationToken);
                    logger.LogInformation("Database of {Context} is up to date after {ElapsedMs} ms", typeof(TContext).Name, stopwatch.ElapsedMilliseconds);
                    return;
                }
                catch (NpgsqlException ex) when (PostgresExtensions.IsTransientForFailover(ex) && stopwatch.Elapsed < StartDeadline)
                {
                    logger.LogWarning("Database not reachable for {Context} (attempt {Attempt}): {Reason}", typeof(TContext).Name, attempt, ex.Message);
                    await Task.Delay(TimeSpan.FromSeconds(Math.Min(attempt, 5)), cancellationToken);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    // Stopped while starting (Ctrl-C, a redeploy): the lock dies with the
                    // connection, the next start picks up where this one left off.
                    logger.LogWarning("Migration of {Context} cancelled: the host is stopping", typeof(TContext).Name);
                    throw;
                }
                catch (Exception ex)
                {
                    activity?.AddException(ex);
                    logger.LogCritical(ex, "Migrating the database of {Context} failed", typeof(TContext).Name);
                    throw;
                }
            }
        }

        private async Task MigrateOnceAsync(ILogger logger, CancellationToken cancellationToken)
        {
            await using var scope = services.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<TContext>();
            var lockKey = AdvisoryLockKey(typeof(TContext).FullName!);

            // A dedicated session holds the advisory lock for the whole migration; it is released
            // when the connection closes, even if this process dies half way. Outside the pool
            // (Pooling=false): the pools keep no reset on close (PostgresExtensions.WithPoolSettings),
            // so a pooled connection returned after a failure between lock and unlock would keep
            // holding the lock; this one is closed for real.
            var lockConnectionString = new NpgsqlConnectionStringBuilder(db.Database.GetConnectionString()) { Pooling = false };
            await using var lockConnection = new NpgsqlConnection(lockConnectionString.ConnectionString);
            await lockConnection.OpenAsync(cancellationToken);
            await using (var take = new NpgsqlCommand("SELECT pg_advisory_lock(@key)", lockConnection))
            {
                take.Parameters.AddWithValue("key", lockKey);
                await take.ExecuteNonQueryAsync(cancellationToken);
            }

            // The history table first (CREATE ... IF NOT EXISTS): on an empty database, EF's own
            // probe of it (ExistsAsync, and again inside MigrateAsync) queries the missing table and
            // logs a harmless, alarming "Failed executing DbCommand" error (dotnet/efcore#37328).
            await db.GetService<IHistoryRepository>().CreateIfNotExistsAsync(cancellationToken);
            var pending = (await db.Database.GetPendingMigrationsAsync(cancellationToken)).ToList();
            if (pending.Count > 0)
            {
                logger.LogInformation("Applying {Count} migration(s) to {Context}: {Migrations}", pending.Count, typeof(TContext).Name, pending);
                await db.Database.MigrateAsync(cancellationToken);
            }

            if (seed is not null)
            {
                await seed(db, scope.ServiceProvider, cancellationToken);
            }

            await using var release = new NpgsqlCommand("SELECT pg_advisory_unlock(@key)", lockConnection);
            release.Parameters.AddWithValue("key", lockKey);
            await release.ExecuteNonQueryAsync(cancellationToken);
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
