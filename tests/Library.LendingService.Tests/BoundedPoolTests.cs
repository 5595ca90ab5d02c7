using Library.ServiceDefaults;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Library.LendingService.Tests;

/// <summary>
/// The replicas' connection and context pools are bounded (<see cref="PostgresExtensions.PoolSize"/>):
/// a burst of requests waits for a connection instead of opening (and then keeping) one each.
/// </summary>
public sealed class BoundedPoolTests(LendingFixture fixture) : IClassFixture<LendingFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void The_bound_applies_unless_the_connection_string_names_a_size()
    {
        Assert.Equal(PostgresExtensions.PoolSize, new NpgsqlConnectionStringBuilder(PostgresExtensions.WithBoundedPool("Host=db;Database=lendingdb")).MaxPoolSize);
        Assert.Equal(200, new NpgsqlConnectionStringBuilder(PostgresExtensions.WithBoundedPool("Host=db;Database=lendingdb;Maximum Pool Size=200")).MaxPoolSize);
        Assert.Equal(7, new NpgsqlConnectionStringBuilder(PostgresExtensions.WithBoundedPool("Host=db;Database=lendingdb;MaxPoolSize=7")).MaxPoolSize);
    }

    [Fact]
    public async Task Twice_as_many_units_of_work_as_the_bound_share_its_connections()
    {
        var units = PostgresExtensions.PoolSize * 2;
        var burst = Enumerable.Range(0, units).Select(_ => fixture.InLendingAsync(db =>
            db.Database.SqlQuery<int>($"SELECT 1 AS \"Value\" FROM pg_sleep(0.2)").ToListAsync(Ct)));
        var peak = 0;
        using var stop = new CancellationTokenSource();
        var watch = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var open = await fixture.LendingDb.ScalarAsync<long>(
                    $"SELECT count(*) FROM pg_stat_activity WHERE datname = '{fixture.LendingDb.Name}' AND backend_type = 'client backend' AND pid <> pg_backend_pid()");
                peak = Math.Max(peak, (int)open);
            }
        }, Ct);

        var answers = await Task.WhenAll(burst);
        await stop.CancelAsync();
        await watch;

        Assert.All(answers, rows => Assert.Equal([1], rows));
        Assert.InRange(peak, 2, PostgresExtensions.PoolSize);
    }
}
