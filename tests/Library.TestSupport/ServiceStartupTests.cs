using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Xunit;

namespace Library.TestSupport;

/// <summary>
/// What every service must do on start, against the real servers: migrate its own empty
/// database (once, even when replicas start together), report health, serve its OpenAPI document.
/// Each service's test project runs these through a subclass.
/// </summary>
public abstract class ServiceStartupTests<TProgram, TContext>(string databaseName)
    where TProgram : class
    where TContext : DbContext
{
    protected virtual IDictionary<string, string?> Settings(TestDatabase database) =>
        new Dictionary<string, string?> { [$"ConnectionStrings:{databaseName}"] = database.ConnectionString };

    /// <summary>With <paramref name="settings"/> the service refuses to start, saying <paramref name="expected"/>.</summary>
    protected static async Task AssertStartFailsAsync(IDictionary<string, string?> settings, string expected)
    {
        for (var attempt = 1; ; attempt++)
        {
            await using var host = new ServiceHost<TProgram>(settings);
            var failure = Assert.ThrowsAny<Exception>(() => host.CreateClient());
            // WebApplicationFactory's race (its DeferredHost asks the host's services for the lifetime
            // after the program's own Run, having failed, may already have disposed them): the start
            // failed, but the reason is lost. Seen twice in whole-project runs, never alone; try again.
            if (failure is ObjectDisposedException && attempt < 3)
            {
                continue;
            }
            Assert.True(failure.ToString().Contains(expected, StringComparison.Ordinal), failure.ToString());
            return;
        }
    }

    [Fact]
    public async Task Starts_on_an_empty_database_migrates_it_and_reports_healthy()
    {
        await using var database = await TestDatabase.CreateAsync(databaseName);
        await using var host = new ServiceHost<TProgram>(Settings(database), CollectingLogs);
        using var client = host.CreateClient();

        var health = await client.GetFromJsonAsync<JsonElement>("/health", TestContext.Current.CancellationToken);

        // The database's readiness check is Aspire's (EnrichNpgsqlDbContext), named after the context.
        Assert.Equal("Healthy", health.GetProperty("status").GetString());
        Assert.Equal("Healthy", health.GetProperty("checks").GetProperty(typeof(TContext).Name).GetProperty("status").GetString());
        await AssertFullyMigrated(host, database);
        AssertNoErrorLogged(host);
    }

    /// <summary>Collects a host's logs (FakeLogCollector) for <see cref="AssertNoErrorLogged"/>.</summary>
    private static readonly Action<IServiceCollection> CollectingLogs = services => services.AddLogging(logging => logging.AddFakeLogging());

    /// <summary>
    /// A first start is not an incident: nothing logged as an error (EF's probe of the missing
    /// migrations history table once was, twice per start).
    /// </summary>
    private static void AssertNoErrorLogged(ServiceHost<TProgram> host)
    {
        var errors = host.Services.GetFakeLogCollector().GetSnapshot().Where(r => r.Level >= LogLevel.Error).ToList();
        Assert.True(errors.Count == 0, string.Join("\n", errors.Select(r => $"{r.Category}[{r.Id}]: {r.Message}")));
    }

    [Fact]
    public async Task Two_replicas_starting_at_once_on_an_empty_database_migrate_it_once()
    {
        await using var database = await TestDatabase.CreateAsync(databaseName);
        await using var first = new ServiceHost<TProgram>(Settings(database), CollectingLogs);
        await using var second = new ServiceHost<TProgram>(Settings(database), CollectingLogs);

        // Creating the client starts the host, and the host migrates while it starts.
        var clients = await Task.WhenAll(Task.Run(first.CreateClient), Task.Run(second.CreateClient));

        foreach (var client in clients)
        {
            using var response = await client.GetAsync("/health", TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            client.Dispose();
        }
        await AssertFullyMigrated(first, database);
        // The one that waited for the other's migration logs no error either.
        AssertNoErrorLogged(first);
        AssertNoErrorLogged(second);
    }

    [Fact]
    public async Task Alive_and_OpenAPI_document_are_served()
    {
        await using var database = await TestDatabase.CreateAsync(databaseName);
        await using var host = new ServiceHost<TProgram>(Settings(database));
        using var client = host.CreateClient();
        var ct = TestContext.Current.CancellationToken;

        using var alive = await client.GetAsync("/alive", ct);
        Assert.Equal(HttpStatusCode.OK, alive.StatusCode);

        var openApi = await client.GetFromJsonAsync<JsonElement>("/openapi/v1.json", ct);
        Assert.StartsWith("3.", openApi.GetProperty("openapi").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unreachable_cache_and_broker_degrade_health_but_do_not_stop_the_service()
    {
        await using var database = await TestDatabase.CreateAsync(databaseName);
        var settings = Settings(database);
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        settings["ConnectionStrings:cache"] = "127.0.0.1:1,password=x";
        settings["ConnectionStrings:messaging"] = "amqp://nobody:nothing@127.0.0.1:1/library";
        await using var host = new ServiceHost<TProgram>(settings);
        using var client = host.CreateClient();

        using var response = await client.GetAsync("/health", TestContext.Current.CancellationToken);
        var health = await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);

        // Degraded still answers 200: a cache or broker outage must not take every replica out
        // of the gateway's rotation (events wait in the outbox; reads go to PostgreSQL).
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("Degraded", health.GetProperty("status").GetString());
        Assert.Equal("Healthy", health.GetProperty("checks").GetProperty(typeof(TContext).Name).GetProperty("status").GetString());
        Assert.Equal("Degraded", health.GetProperty("checks").GetProperty("messaging").GetProperty("status").GetString());
    }

    [Fact]
    public async Task On_stop_health_turns_unhealthy_at_once_and_the_service_serves_on_for_the_drain()
    {
        await using var database = await TestDatabase.CreateAsync(databaseName);
        var settings = Settings(database);
        settings["Shutdown:DrainSeconds"] = "2";
        await using var host = new ServiceHost<TProgram>(settings);
        using var client = host.CreateClient();
        var ct = TestContext.Current.CancellationToken;
        using (var before = await client.GetAsync("/health", ct))
        {
            Assert.Equal(HttpStatusCode.OK, before.StatusCode);
        }

        // What SIGTERM does (ConsoleLifetime -> IHost.StopAsync).
        var clock = Stopwatch.StartNew();
        var stopping = host.Services.GetRequiredService<IHost>().StopAsync(ct);
        HttpStatusCode status;
        JsonElement health;
        do
        {
            using var during = await client.GetAsync("/health", ct);
            status = during.StatusCode;
            health = await during.Content.ReadFromJsonAsync<JsonElement>(ct);
        }
        while (status == HttpStatusCode.OK && clock.Elapsed < TimeSpan.FromSeconds(1));

        // Readiness is false (the gateway takes it out of rotation), liveness true, and the
        // process still answers until the drain is over.
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Equal("Unhealthy", health.GetProperty("checks").GetProperty("shutdown").GetProperty("status").GetString());
        using (var alive = await client.GetAsync("/alive", ct))
        {
            Assert.Equal(HttpStatusCode.OK, alive.StatusCode);
        }
        Assert.False(stopping.IsCompleted, "the host stopped before the drain was over");
        await stopping;
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(1.9), $"stopped after {clock.Elapsed}, before the 2 s drain");
    }

    private static async Task AssertFullyMigrated(ServiceHost<TProgram> host, TestDatabase database)
    {
        await using var scope = host.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<TContext>();
        var expected = db.Database.GetMigrations().ToList();
        Assert.NotEmpty(expected);
        Assert.Empty(await db.Database.GetPendingMigrationsAsync(TestContext.Current.CancellationToken));
        Assert.Equal(expected.Count, await database.ScalarAsync<long>("SELECT count(*) FROM \"__EFMigrationsHistory\""));
    }
}
