using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Library.BookService.Books;
using Library.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Library.BookService.Tests;

/// <summary>The book service with 2 uncached catalog reads at once and 2 waiting (Catalog:QueryConcurrency, Catalog:QueryQueue).</summary>
public sealed class GatedCatalogFixture : CatalogFixture
{
    public const int Permits = 2;
    public const int Queue = 2;

    protected override void Configure(Dictionary<string, string?> settings)
    {
        settings["Catalog:QueryConcurrency"] = Permits.ToString(System.Globalization.CultureInfo.InvariantCulture);
        settings["Catalog:QueryQueue"] = Queue.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }
}

public sealed class QueryGateTests(GatedCatalogFixture fixture) : IClassFixture<GatedCatalogFixture>
{
    /// <summary>
    /// With the books table locked by a transaction of the test's, every uncached search that
    /// reaches PostgreSQL waits there: only 2 of 4 do (the others wait their turn in the service),
    /// a fifth finds the queue full and is answered 503 at once, and once the lock goes, the four
    /// answer with their titles. Without the gate all four wait in PostgreSQL and the fifth too.
    /// </summary>
    [Fact]
    public async Task Only_the_permitted_searches_reach_PostgreSQL_the_rest_wait_their_turn_and_one_past_the_queue_is_a_503()
    {
        var words = new[] { "Quorvantle", "Brisquenel", "Thandrowe", "Vellumcrast" };
        foreach (var word in words)
        {
            await fixture.BookAsync($"The {word} Almanac", TestIsbn.Next(), [], []);
        }
        var gate = fixture.Host.Services.GetRequiredService<CatalogQueryGate>();
        using var client = fixture.Client();

        await using var held = await HeldTransaction.BeginAsync(fixture.Database, "LOCK TABLE books IN ACCESS EXCLUSIVE MODE");
        // Two searches and two facets, each distinct (nothing of them cached), in arrival order.
        var paths = new[]
        {
            $"/api/books?search={words[0]}", $"/api/books/facets?search={words[1]}",
            $"/api/books?search={words[2]}", $"/api/books/facets?search={words[3]}",
        };
        var pending = paths.Select(path => client.GetAsync(path, TestContext.Current.CancellationToken)).ToList();
        await Eventually.WaitUntilAsync(
            async () => await fixture.Database.SessionsBlockedByAsync(held.ProcessId) == GatedCatalogFixture.Permits
                        && gate.Statistics!.CurrentQueuedCount == GatedCatalogFixture.Queue,
            "two searches waiting on the lock in PostgreSQL and two in the service's queue");

        using (var refused = await client.GetAsync("/api/books?search=almanac", TestContext.Current.CancellationToken))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(2), refused.Headers.RetryAfter?.Delta);
            Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
            var problem = await refused.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
            Assert.Contains("searches running", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
            Assert.False(string.IsNullOrEmpty(problem.GetProperty("traceId").GetString()));
        }
        Assert.Equal(GatedCatalogFixture.Permits, await fixture.Database.SessionsBlockedByAsync(held.ProcessId));
        Assert.Equal(GatedCatalogFixture.Queue, gate.Statistics!.CurrentQueuedCount);

        await held.CommitAsync();
        for (var i = 0; i < paths.Length; i++)
        {
            using var answer = await pending[i];
            Assert.True(answer.StatusCode == HttpStatusCode.OK, $"{paths[i]}: {(int)answer.StatusCode} {await answer.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)}");
            var body = await answer.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
            if (paths[i].StartsWith("/api/books?", StringComparison.Ordinal))
            {
                Assert.Equal($"The {words[i]} Almanac", Assert.Single(body.GetProperty("items").EnumerateArray()).GetProperty("title").GetString());
            }
            else
            {
                Assert.Equal(1, Assert.Single(body.GetProperty("publishers").EnumerateArray()).GetProperty("count").GetInt64());
            }
        }
        Assert.Equal(0, gate.Statistics!.CurrentQueuedCount);
        Assert.Equal(GatedCatalogFixture.Permits, gate.Statistics.CurrentAvailablePermits);
    }

    [Fact]
    public void Unset_the_limit_is_two_per_core_and_zero_is_none()
    {
        using var meters = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var factory = meters.GetRequiredService<IMeterFactory>();
        using var byDefault = new CatalogQueryGate(Options.Create(new SearchOptions()), factory, NullLogger<CatalogQueryGate>.Instance);
        Assert.Equal(2 * Environment.ProcessorCount, byDefault.Permits);
        using var none = new CatalogQueryGate(Options.Create(new SearchOptions { QueryConcurrency = 0 }), factory, NullLogger<CatalogQueryGate>.Instance);
        Assert.Equal(0, none.Permits);
        Assert.Null(none.Statistics);
    }
}
