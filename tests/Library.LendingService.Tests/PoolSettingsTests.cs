using Library.ServiceDefaults;
using Library.TestSupport;
using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Npgsql;

namespace Library.LendingService.Tests;

/// <summary>
/// The services' Npgsql pool settings (<see cref="PostgresExtensions.WithPoolSettings"/>): prepared
/// statements kept across the pool (no <c>DISCARD ALL</c>), and what happens to a prepared
/// <c>SELECT *</c> when a migration adds a column under a running replica.
/// </summary>
public sealed class PoolSettingsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void The_settings_apply_unless_the_connection_string_names_them()
    {
        var applied = new NpgsqlConnectionStringBuilder(PostgresExtensions.WithPoolSettings("Host=db;Database=lendingdb"));
        Assert.True(applied.NoResetOnClose);
        Assert.Equal(64, applied.MaxAutoPrepare);
        Assert.Equal(2, applied.AutoPrepareMinUsages);

        // The catalog's searches, whose plans depend on their parameters, are not prepared.
        var catalog = new NpgsqlConnectionStringBuilder(PostgresExtensions.WithPoolSettings("Host=db;Database=bookdb", autoPrepare: false));
        Assert.True(catalog.NoResetOnClose);
        Assert.Equal(0, catalog.MaxAutoPrepare);

        var named = new NpgsqlConnectionStringBuilder(PostgresExtensions.WithPoolSettings(
            "Host=db;Database=lendingdb;No Reset On Close=false;MaxAutoPrepare=0;Auto Prepare Min Usages=5"));
        Assert.False(named.NoResetOnClose);
        Assert.Equal(0, named.MaxAutoPrepare);
        Assert.Equal(5, named.AutoPrepareMinUsages);
    }

    [Fact]
    public async Task A_prepared_select_star_fails_once_after_a_column_is_added_and_is_prepared_anew()
    {
        await using var database = await TestDatabase.CreateAsync("poolsettings");
        await ExecuteAsync(database.ConnectionString, "CREATE TABLE things (id int PRIMARY KEY, name text NOT NULL); INSERT INTO things VALUES (1, 'one')");
        await using var source = NpgsqlDataSource.Create(PostgresExtensions.WithPoolSettings(database.ConnectionString));

        // Three uses, each on a connection taken from the pool and given back: prepared after the
        // second, and still prepared on the third since nothing discards it on the way back.
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("one", await NameAsync(source));
        }
        await ExecuteAsync(database.ConnectionString, "ALTER TABLE things ADD COLUMN added int");

        var stale = await Assert.ThrowsAsync<PostgresException>(() => NameAsync(source));
        Assert.True(PostgresExtensions.IsStalePreparedStatement(stale), stale.Message);
        Assert.Equal("one", await NameAsync(source));
    }

    [Fact]
    public async Task Through_the_services_execution_strategy_the_added_column_costs_a_retry_not_a_failure()
    {
        await using var database = await TestDatabase.CreateAsync("poolsettings");
        await ExecuteAsync(database.ConnectionString, "CREATE TABLE things (id int PRIMARY KEY, name text NOT NULL); INSERT INTO things VALUES (1, 'one')");
        var failures = new FailedCommands();
        var options = new DbContextOptionsBuilder<ThingsContext>()
            .UseNpgsql(PostgresExtensions.WithPoolSettings(database.ConnectionString),
                npgsql => npgsql.ExecutionStrategy(dependencies => new FailoverAwareExecutionStrategy(dependencies)))
            .UseSnakeCaseNamingConvention()
            .AddInterceptors(failures)
            .Options;

        async Task<string> ReadAsync()
        {
            await using var db = new ThingsContext(options);
            // As the relay claims rows and a return closes its loan: raw SQL with SELECT * that EF
            // sends as it is (ToList composes nothing around it; Single would wrap it in a SELECT
            // of named columns), in a transaction run by the strategy.
            return await db.Database.CreateExecutionStrategy().ExecuteAsync(async token =>
            {
                await using var transaction = await db.Database.BeginTransactionAsync(token);
                var things = await db.Things.FromSql($"SELECT * FROM things WHERE id = {1} FOR UPDATE").AsNoTracking().ToListAsync(token);
                await transaction.CommitAsync(token);
                return things.Single().Name;
            }, Ct);
        }

        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("one", await ReadAsync());
        }
        Assert.Empty(failures.Seen);
        await ExecuteAsync(database.ConnectionString, "ALTER TABLE things ADD COLUMN added int");
        Assert.Equal("one", await ReadAsync());
        // It did fail once, stale, and the strategy ran the unit of work again.
        Assert.True(PostgresExtensions.IsStalePreparedStatement(Assert.Single(failures.Seen)));
    }

    private sealed class FailedCommands : DbCommandInterceptor
    {
        public List<Exception> Seen { get; } = [];

        public override Task CommandFailedAsync(DbCommand command, CommandErrorEventData eventData, CancellationToken cancellationToken = default)
        {
            Seen.Add(eventData.Exception);
            return Task.CompletedTask;
        }
    }

    private static async Task<string> NameAsync(NpgsqlDataSource source)
    {
        await using var connection = await source.OpenConnectionAsync(Ct);
        await using var command = new NpgsqlCommand("SELECT * FROM things WHERE id = $1", connection) { Parameters = { new() { Value = 1 } } };
        await using var reader = await command.ExecuteReaderAsync(Ct);
        Assert.True(await reader.ReadAsync(Ct));
        return reader.GetString(reader.GetOrdinal("name"));
    }

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString + ";Pooling=false");
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(Ct);
    }

    private sealed class Thing
    {
        public int Id { get; set; }
        public required string Name { get; set; }
    }

    private sealed class ThingsContext(DbContextOptions<ThingsContext> options) : DbContext(options)
    {
        public DbSet<Thing> Things => Set<Thing>();
    }
}
