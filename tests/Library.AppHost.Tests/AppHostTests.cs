using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;

namespace Library.AppHost.Tests;

public sealed class AppHostTests
{
    // Aspire's waits can hang without a word when a check never passes (microsoft/aspire#13714):
    // every wait has its own deadline.
    private static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(5);

    private static readonly string[] Resources =
        ["postgres", "userdb", "bookdb", "lendingdb", "cache", "messaging", "userservice", "bookservice", "lendingservice", "gateway"];

    [Fact]
    public async Task The_whole_topology_starts_healthy_and_the_gateway_serves_the_catalog()
    {
        var ct = TestContext.Current.CancellationToken;
        var appHost = await DistributedApplicationTestingBuilder.CreateAsync<Projects.Library_AppHost>(ct);
        // No dashboard prompts a value in a test run.
        appHost.Configuration["Parameters:admin-password"] = "Test-only-admin-password-1";
        appHost.Configuration["Parameters:lending-client-secret"] = "test-only-lending-client-secret";
        // A fresh database every run, never the developer's volume.
        appHost.Configuration["Postgres:DataVolume"] = "false";

        await using var app = await appHost.BuildAsync(ct).WaitAsync(StartTimeout, ct);
        await app.StartAsync(ct).WaitAsync(StartTimeout, ct);

        foreach (var resource in Resources)
        {
            await app.ResourceNotifications.WaitForResourceHealthyAsync(resource, ct).WaitAsync(StartTimeout, ct);
        }

        using var http = app.CreateHttpClient("gateway");

        using var health = await http.GetAsync("/health", ct);
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);

        var books = await http.GetFromJsonAsync<JsonElement>("/api/books", ct);
        Assert.True(books.TryGetProperty("totalCount", out _));
        Assert.Equal(JsonValueKind.Array, books.GetProperty("items").ValueKind);
    }
}
