using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Library.AppHost.Servers;

/// <summary>
/// A service's database with a login of its own that owns it and nothing else (no superuser, no
/// CREATEDB, CONNECT revoked from PUBLIC), on either kind of PostgreSQL server (container or
/// process). The database, the login and its password (a secret parameter) are made or brought
/// up to date each time the server becomes ready, so a kept data folder follows today's
/// parameters. Services get it as <c>ConnectionStrings:{name}</c> with <c>WithReference</c>.
/// </summary>
internal sealed class LibraryDatabaseResource(
    string name, string login, IResourceWithConnectionString server, EndpointReference endpoint, ParameterResource password)
    : Resource(name), IResourceWithParent<IResourceWithConnectionString>, IResourceWithConnectionString
{
    public IResourceWithConnectionString Parent { get; } = server;
    public string DatabaseName => Name;
    public string Login { get; } = login;
    public ParameterResource Password { get; } = password;

    public ReferenceExpression ConnectionStringExpression => ReferenceExpression.Create(
        $"Host={endpoint.Property(EndpointProperty.Host)};Port={endpoint.Property(EndpointProperty.Port)};Database={DatabaseName};Username={Login};Password={Password}");
}

internal static class LibraryDatabaseExtensions
{
    /// <param name="adminConnectionString">How the AppHost reaches the server as its superuser.</param>
    public static IResourceBuilder<LibraryDatabaseResource> AddLibraryDatabase<TServer>(
        this IResourceBuilder<TServer> server, string name, string login, EndpointReference endpoint,
        Func<CancellationToken, Task<string>> adminConnectionString)
        where TServer : IResourceWithConnectionString
    {
        var builder = server.ApplicationBuilder;
        var password = builder.AddParameter($"{name}-password",
            new GenerateParameterDefault { MinLength = 24, Special = false }, secret: true, persist: true);
        var database = new LibraryDatabaseResource(name, login, server.Resource, endpoint, password.Resource);

        builder.Eventing.Subscribe<ResourceReadyEvent>(server.Resource, async (e, ct) =>
        {
            var logger = e.Services.GetRequiredService<ResourceLoggerService>().GetLogger(database);
            var notifications = e.Services.GetRequiredService<ResourceNotificationService>();
            try
            {
                await EnsureAsync(await adminConnectionString(ct), database, logger, ct);
            }
            catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException)
            {
                logger.LogError(ex, "database {Database} could not be made ready", database.DatabaseName);
                await notifications.PublishUpdateAsync(database, s => s with { State = KnownResourceStates.FailedToStart });
                throw;
            }
            // Aspire hands a parent's state down to its children only when the parent is a
            // container; with a process parent the database says itself that it runs (its
            // health check then decides when it is ready).
            await notifications.PublishUpdateAsync(database, s => s with
            {
                State = KnownResourceStates.Running,
                StartTimeStamp = s.StartTimeStamp ?? DateTime.UtcNow,
            });
        });

        var healthKey = $"{name}_check";
        builder.Services.AddHealthChecks().Add(new HealthCheckRegistration(healthKey, _ => new DelegateHealthCheck(async ct =>
        {
            var cs = await database.ConnectionStringExpression.GetValueAsync(ct);
            await using var connection = new NpgsqlConnection(cs + ";Pooling=false;Timeout=5");
            await connection.OpenAsync(ct);
            await using var command = new NpgsqlCommand("SELECT 1", connection);
            await command.ExecuteScalarAsync(ct);
            return HealthCheckResult.Healthy();
        }), failureStatus: null, tags: null));

        return builder.AddResource(database)
            .WithReferenceRelationship(password)
            .WithIconName("Database")
            .WithHealthCheck(healthKey)
            .ExcludeFromManifest();
    }

    private static async Task EnsureAsync(string adminConnectionString, LibraryDatabaseResource database, ILogger logger, CancellationToken ct)
    {
        var password = await database.Password.GetValueAsync(ct) ?? throw new InvalidOperationException($"{database.Password.Name} has no value");
        await using (var admin = new NpgsqlConnection(adminConnectionString))
        {
            await admin.OpenAsync(ct);
            var login = Quote(database.Login);
            var db = Quote(database.DatabaseName);
            await ExecuteAsync(admin, $"""
                DO $$ BEGIN
                  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {Literal(database.Login)}) THEN
                    CREATE ROLE {login} LOGIN;
                  END IF;
                END $$;
                ALTER ROLE {login} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD {Literal(password)};
                """, ct);
            var exists = await ScalarAsync(admin, $"SELECT count(*) FROM pg_database WHERE datname = {Literal(database.DatabaseName)}", ct);
            if (exists == 0)
            {
                logger.LogInformation("creating database {Database} owned by {Login}", database.DatabaseName, database.Login);
                await ExecuteAsync(admin, $"CREATE DATABASE {db} OWNER {login} ENCODING 'UTF8' TEMPLATE template0", ct);
            }
            await ExecuteAsync(admin, $"""
                ALTER DATABASE {db} OWNER TO {login};
                REVOKE CONNECT, TEMPORARY ON DATABASE {db} FROM PUBLIC;
                GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {login};
                """, ct);
        }
        // Extensions the services' migrations use (trusted ones, but made here once as superuser).
        var inDatabase = new NpgsqlConnectionStringBuilder(adminConnectionString) { Database = database.DatabaseName };
        await using (var connection = new NpgsqlConnection(inDatabase.ConnectionString))
        {
            await connection.OpenAsync(ct);
            await ExecuteAsync(connection, "CREATE EXTENSION IF NOT EXISTS pg_trgm; CREATE EXTENSION IF NOT EXISTS unaccent;", ct);
        }
        logger.LogInformation("database {Database} ready (owner {Login})", database.DatabaseName, database.Login);
    }

    private static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
    private static string Literal(string value) => "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken ct)
    {
#pragma warning disable CA2100 // identifiers and literals above are quoted; parameters cannot carry DDL names
        await using var command = new NpgsqlCommand(sql, connection);
#pragma warning restore CA2100
        await command.ExecuteNonQueryAsync(ct);
    }

    private static async Task<long> ScalarAsync(NpgsqlConnection connection, string sql, CancellationToken ct)
    {
#pragma warning disable CA2100
        await using var command = new NpgsqlCommand(sql, connection);
#pragma warning restore CA2100
        return Convert.ToInt64(await command.ExecuteScalarAsync(ct), System.Globalization.CultureInfo.InvariantCulture);
    }
}
