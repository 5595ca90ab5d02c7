using Npgsql;

namespace Library.TestSupport;

/// <summary>
/// A brand-new, empty database owned by its own non-superuser login, as eng/run.sh gives each
/// service: the service under test migrates it itself. Dropped (with its login) on dispose.
/// </summary>
public sealed class TestDatabase : IAsyncDisposable
{
    private TestDatabase(string name, string connectionString)
    {
        Name = name;
        ConnectionString = connectionString;
    }

    public string Name { get; }

    /// <summary>Connection string of the database's own login.</summary>
    public string ConnectionString { get; }

    public static async Task<TestDatabase> CreateAsync(string prefix)
    {
        var name = $"{prefix}_{Guid.NewGuid():N}"[..Math.Min(prefix.Length + 33, 63)].ToLowerInvariant();
        var password = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));

        await using (var admin = new NpgsqlConnection(TestServers.PostgresAdmin))
        {
            await admin.OpenAsync();
            await Execute(admin, $"CREATE ROLE \"{name}\" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '{password}'");
            await Execute(admin, $"CREATE DATABASE \"{name}\" OWNER \"{name}\"");
            await Execute(admin, $"REVOKE CONNECT ON DATABASE \"{name}\" FROM PUBLIC");
        }

        // Extensions need a superuser; eng/run.sh creates them the same way.
        var adminOnDb = new NpgsqlConnectionStringBuilder(TestServers.PostgresAdmin) { Database = name };
        await using (var admin = new NpgsqlConnection(adminOnDb.ConnectionString))
        {
            await admin.OpenAsync();
            await Execute(admin, "CREATE EXTENSION IF NOT EXISTS pg_trgm; CREATE EXTENSION IF NOT EXISTS unaccent;");
        }

        var own = new NpgsqlConnectionStringBuilder(TestServers.PostgresAdmin)
        {
            Database = name,
            Username = name,
            Password = password,
        };
        return new TestDatabase(name, own.ConnectionString);
    }

    public async Task<T?> ScalarAsync<T>(string sql)
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        var value = await command.ExecuteScalarAsync();
        return value is null or DBNull ? default : (T)Convert.ChangeType(value, typeof(T), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Sessions of this database waiting for a lock that session <paramref name="pid"/> holds (a test's open transaction).</summary>
    public Task<long> SessionsBlockedByAsync(int pid) => ScalarAsync<long>($"""
        SELECT count(*) FROM pg_stat_activity
        WHERE datname = '{Name}' AND wait_event_type = 'Lock' AND {pid} = ANY (pg_blocking_pids(pid))
        """);

    /// <summary>
    /// Ends the sessions of this database waiting for a lock that session <paramref name="pid"/>
    /// holds, as a failover ends every session (their clients see 57P01, admin shutdown: transient).
    /// How many it ended.
    /// </summary>
    public Task<long> EndSessionsBlockedByAsync(int pid) => ScalarAsync<long>($"""
        SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
        WHERE datname = '{Name}' AND wait_event_type = 'Lock' AND {pid} = ANY (pg_blocking_pids(pid))
        """);

    /// <remarks>
    /// No <c>NpgsqlConnection.ClearAllPools()</c> first: it closed the idle connections of every
    /// pool in the process, so a test's dispose changed the physical connection under a test
    /// running beside it (PoolSettingsTests' stale prepared statement then never came: a fresh
    /// connection had nothing prepared; a CI run failed so). <c>WITH (FORCE)</c> ends this
    /// database's sessions itself, and its name is never used again.
    /// </remarks>
    public async ValueTask DisposeAsync()
    {
        await using var admin = new NpgsqlConnection(TestServers.PostgresAdmin);
        await admin.OpenAsync();
        await Execute(admin, $"DROP DATABASE IF EXISTS \"{Name}\" WITH (FORCE)");
        await Execute(admin, $"DROP ROLE IF EXISTS \"{Name}\"");
    }

    private static async Task Execute(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}
