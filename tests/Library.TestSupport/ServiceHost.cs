using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace Library.TestSupport;

/// <summary>
/// A service under test, in process, configured exactly as eng/run.sh and the AppHost configure
/// it: Aspire's configuration keys pointing at the real test servers.
/// </summary>
public class ServiceHost<TProgram> : WebApplicationFactory<TProgram> where TProgram : class
{
    private readonly Dictionary<string, string?> _settings;
    private readonly Action<IServiceCollection>? _services;

    public ServiceHost(IDictionary<string, string?> settings, Action<IServiceCollection>? services = null)
    {
        _services = services;
        _settings = new Dictionary<string, string?>(settings)
        {
            ["ConnectionStrings:cache"] = settings.TryGetValue("ConnectionStrings:cache", out var cache) ? cache : TestServers.Redis,
            ["ConnectionStrings:messaging"] = settings.TryGetValue("ConnectionStrings:messaging", out var messaging) ? messaging : TestServers.RabbitMQ,
            ["Logging:PlainText"] = "true",
        };
        // Every host gets its own exchange and queues on the shared test broker.
        var isolation = Guid.NewGuid().ToString("N")[..12];
        _settings.TryAdd("EventBus:Exchange", $"test-{isolation}.library.events");
        _settings.TryAdd("EventBus:QueuePrefix", $"test-{isolation}.");
        // ...and its own Redis keys (the catalog's version and cache, the gateway's output cache).
        // Hosts that must see each other's cache (a gateway and its catalog) share one prefix.
        _settings.TryAdd("Cache:KeyPrefix", $"test-{isolation}:");
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        foreach (var (key, value) in _settings)
        {
            builder.UseSetting(key, value);
        }
        if (_services is not null)
        {
            builder.ConfigureTestServices(_services);
        }
    }

    /// <summary>
    /// Serves on a real loopback port (Kestrel), at <see cref="Address"/>: for calls from other
    /// processes' clients, or through service discovery, rather than the in-memory test server.
    /// </summary>
    public ServiceHost<TProgram> OnPort(int port)
    {
        UseKestrel(port);
        return this;
    }

    public string Exchange => _settings["EventBus:Exchange"]!;
    public string QueuePrefix => _settings["EventBus:QueuePrefix"]!;

    /// <summary>Stops the host, then removes its exchange and queues from the shared test broker (see <see cref="BrokerCleanup"/>).</summary>
    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        if (_settings["ConnectionStrings:messaging"] is { Length: > 0 } messaging)
        {
            await BrokerCleanup.DeleteTopologyAsync(messaging, Exchange, QueuePrefix);
        }
        GC.SuppressFinalize(this);
    }

    public Uri Address => new(Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First());

}

public static class Ports
{
    /// <summary>A port nothing listens on right now.</summary>
    public static int FreePort()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
