using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

[assembly: AssemblyFixture(typeof(Library.AppHost.Tests.LibraryAppHost))]

namespace Library.AppHost.Tests;

/// <summary>
/// The real AppHost, started once for this test project with Aspire.Hosting.Testing: PostgreSQL,
/// Redis and RabbitMQ as processes from the distribution's packages (process mode: no container
/// runtime in CI), every service with 2 replicas, the gateway, and the dashboard. Its own data
/// folder under /tmp and its own ports; removed afterwards.
/// </summary>
public sealed class LibraryAppHost : IAsyncLifetime
{
    // Aspire's waits can hang without a word when a check never passes (microsoft/aspire#13714):
    // every wait has its own deadline.
    public static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(8);

    public static readonly string[] Resources =
        ["postgres", "userdb", "bookdb", "lendingdb", "cache", "messaging", "mail", "userservice", "bookservice", "lendingservice", "gateway"];

    public const string AdminEmail = "admin@library.test";
    public const string AdminPassword = "Test-only-admin-password-1";

    private readonly string _data = Directory.CreateTempSubdirectory("library-apphost-").FullName;

    public DistributedApplication App { get; private set; } = null!;

    /// <summary>
    /// Where the dashboard answers and the browser token it takes, as the AppHost gave them to it
    /// (the testing builder puts the dashboard behind a random port and makes its own token).
    /// </summary>
    public Uri DashboardUrl => App.GetEndpoint("aspire-dashboard", "http");
    public string DashboardToken => App.Services.GetRequiredService<IConfiguration>()["AppHost:BrowserToken"]
        ?? throw new InvalidOperationException("the AppHost has no dashboard browser token");
    public TimeSpan StartDuration { get; private set; }

    public async ValueTask InitializeAsync()
    {
        using var cts = new CancellationTokenSource(StartTimeout);
        var ct = cts.Token;
        var started = System.Diagnostics.Stopwatch.StartNew();
        // Settings go in as arguments: values set on appHost.Configuration after CreateAsync never
        // reach the AppHost's own code (it reads them while CreateAsync runs it).
        string[] args =
        [
            "--Library:Servers=process",
            $"--Library:DataDir={_data}",
            "--Library:GatewayPort=0",
            "--Parameters:admin-email=" + AdminEmail,
            "--Parameters:admin-password=" + AdminPassword,
            "--Parameters:lending-client-secret=test-only-lending-client-secret",
            "--Parameters:postgres-password=Test-only-postgres-1",
            "--Parameters:cache-password=testonlycache1",
            "--Parameters:messaging-password=testonlymessaging1",
            "--Parameters:userdb-password=testonlyuserdb1",
            "--Parameters:bookdb-password=testonlybookdb1",
            "--Parameters:lendingdb-password=testonlylendingdb1",
            // The http launch profile (an https one hangs health checks without a developer
            // certificate); the testing builder gives the dashboard random ports of its own.
            "--DOTNET_LAUNCH_PROFILE=http",
        ];
        var appHost = await DistributedApplicationTestingBuilder.CreateAsync<Projects.Library_AppHost>(
            args, (options, _) => options.DisableDashboard = false, ct);
        appHost.Services.AddLogging(logging => logging.SetMinimumLevel(LogLevel.Warning));

        App = await appHost.BuildAsync(ct);
        await App.StartAsync(ct);
        foreach (var resource in Resources)
        {
            await App.ResourceNotifications.WaitForResourceHealthyAsync(resource, ct);
        }
        StartDuration = started.Elapsed;
    }

    /// <summary>A client for the gateway (the one public entry point).</summary>
    public HttpClient Gateway()
    {
        var client = App.CreateHttpClient("gateway", "http");
        client.Timeout = TimeSpan.FromSeconds(30);
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        if (App is not null)
        {
            // Dispose can hang (microsoft/aspire#7139): bounded.
            await App.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromMinutes(1));
        }
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
            // a server may still be writing its last bytes; /tmp is cleaned anyway
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
