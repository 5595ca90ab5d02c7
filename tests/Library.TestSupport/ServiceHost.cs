using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Library.TestSupport.Contract;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.Mvc.Testing.Handlers;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace Library.TestSupport;

/// <summary>Settings every service under test gets unless its test says otherwise.</summary>
public static class TestSettings
{
    /// <summary>
    /// The work factor of the tests' password hashes (<c>Auth:PasswordIterations</c>): the same
    /// PBKDF2-HMAC-SHA512 as the services' default of 100,000 iterations (about 50 ms of CPU a
    /// registration or log-in here, each test user costing three), 50 times cheaper. The user
    /// service's tests check the default and that a hash follows the setting.
    /// </summary>
    public const int PasswordIterations = 2_000;
}

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
        _settings.TryAdd("Auth:PasswordIterations", TestSettings.PasswordIterations.ToString(System.Globalization.CultureInfo.InvariantCulture));
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
        // The address as a setting, not UseKestrel(port): that one rewrites the server's addresses
        // after the app has started Kestrel on its own thread, and fails now and then with
        // "IServerAddressesFeature.Addresses cannot be modified after the server has started"
        // (dotnet/aspnetcore#67714).
        _settings["urls"] = $"http://127.0.0.1:{port}";
        UseKestrel();
        _kestrel = true;
        return this;
    }

    private bool _kestrel;

    /// <summary>
    /// The OpenAPI document answers are checked against (<see cref="ContractCheck"/>): the
    /// service's own by default; null: answers are not checked.
    /// </summary>
    public string? ContractDocumentPath { get; set; } = IsGateway ? null : "/openapi/v1.json";

    private static bool IsGateway => typeof(TProgram).Assembly.GetName().Name == "Library.Gateway";

    /// <summary>The document's name in reports: the service's assembly (one document per service).</summary>
    public string ContractName { get; set; } = typeof(TProgram).Assembly.GetName().Name!;

    /// <summary>
    /// A client as <see cref="WebApplicationFactory{TEntryPoint}.CreateClient()"/> makes it
    /// (redirects followed, cookies kept), whose every answer is checked against the service's
    /// published document (<see cref="ContractCheck"/>).
    /// </summary>
    public new HttpClient CreateClient() =>
        _kestrel
            ? AddressClient()
            : CreateDefaultClient(ClientOptions.BaseAddress, new RedirectHandler(ClientOptions.MaxAutomaticRedirections), new CookieContainerHandler(), ContractHandler());

    /// <summary>A plain client to <see cref="Address"/> (a real socket), contract-checked.</summary>
    public HttpClient AddressClient() => new(ContractHandler(new SocketsHttpHandler { AllowAutoRedirect = false })) { BaseAddress = Address };

    /// <summary>The contract check for this service's answers, in front of <paramref name="inner"/> when given.</summary>
    public DelegatingHandler ContractHandler(HttpMessageHandler? inner = null)
    {
        var handler = ContractCheck.Handler(ContractName, LoadContractAsync, ContractDocumentPath is null ? ContractMode.Off : null);
        if (inner is not null)
        {
            handler.InnerHandler = inner;
        }
        return handler;
    }

    private async Task<string> LoadContractAsync(CancellationToken ct)
    {
        using var client = _kestrel ? new HttpClient { BaseAddress = Address } : CreateDefaultClient();
        return await client.GetStringAsync(ContractDocumentPath!, ct);
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
    private const int First = 24_000;
    private const int Count = 8_000;
    private static int _next = Random.Shared.Next(Count);

    /// <summary>
    /// A port nothing listens on right now, from 24000-31999: below Linux's ephemeral range
    /// (32768-60999), so no outgoing connection takes it as its source port between this probe and
    /// the service's bind (a port the kernel handed out for port 0 could be: CI once saw a book
    /// service fail to start with "address already in use" on 45195 while the lanes' tests opened
    /// thousands of connections), and above the fixed ports of eng/test.sh's servers (21xxx) and
    /// the fault stack (22xxx). Each process walks the range from a random place, so two test
    /// processes rarely probe the same port at the same time.
    /// </summary>
    public static int FreePort()
    {
        for (var attempt = 0; attempt < Count; attempt++)
        {
            var port = First + (int)((uint)Interlocked.Increment(ref _next) % Count);
            var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, port);
            try
            {
                listener.Start();
                return port;
            }
            catch (System.Net.Sockets.SocketException)
            {
                // Taken: the next one.
            }
            finally
            {
                listener.Stop();
            }
        }
        throw new InvalidOperationException($"No free port in {First}-{First + Count - 1}.");
    }
}
