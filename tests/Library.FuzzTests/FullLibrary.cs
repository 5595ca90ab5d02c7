extern alias BookService;
extern alias Gateway;
extern alias LendingService;
extern alias UserService;

using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Library.TestSupport;
using BookServiceProgram = BookService::Program;
using GatewayProgram = Gateway::Program;
using LendingServiceProgram = LendingService::Program;
using UserServiceProgram = UserService::Program;

namespace Library.FuzzTests;

/// <summary>
/// The whole library in process, as a client meets it: the user, book and lending services on
/// loopback ports sharing one exchange (events flow as in production) and the gateway in front of
/// them on its own port, on Kestrel, so its request limits apply. The catalog starts from
/// data/sample-catalog.json. The gateway's rate limits are raised through their configuration keys
/// (the contract's "Limits"), so the run is not mostly 429s; its body limit stays the default.
/// </summary>
public sealed class FullLibrary : IAsyncLifetime
{
    public RealUserService<UserServiceProgram> Users { get; private set; } = null!;
    public TestDatabase BookDb { get; private set; } = null!;
    public TestDatabase LendingDb { get; private set; } = null!;
    public ServiceHost<BookServiceProgram> Catalog { get; private set; } = null!;
    public ServiceHost<LendingServiceProgram> Lending { get; private set; } = null!;
    public ServiceHost<GatewayProgram> Gateway { get; private set; } = null!;

    /// <summary>The gateway's address, e.g. http://127.0.0.1:12345/.</summary>
    public Uri BaseAddress { get; private set; } = null!;

    public static string AdminEmail => RealUserService<UserServiceProgram>.AdminEmail;
    public static string AdminPassword => RealUserService<UserServiceProgram>.AdminPassword;

    public static string RepoRoot { get; } = FindRepoRoot();

    public async ValueTask InitializeAsync()
    {
        var isolation = Guid.NewGuid().ToString("N")[..12];
        var bus = new Dictionary<string, string?>
        {
            ["EventBus:Exchange"] = $"test-{isolation}.library.events",
            ["EventBus:QueuePrefix"] = $"test-{isolation}.",
            ["Cache:KeyPrefix"] = $"test-{isolation}:",
            ["EventBus:RetryDelay"] = "00:00:00.200",
        };
        Users = await RealUserService<UserServiceProgram>.StartAsync(bus);
        BookDb = await TestDatabase.CreateAsync("bookdb");
        LendingDb = await TestDatabase.CreateAsync("lendingdb");
        var catalogPort = Ports.FreePort();
        var lendingPort = Ports.FreePort();
        var gatewayPort = Ports.FreePort();
        var shared = new Dictionary<string, string?>(bus)
        {
            ["Auth:MetadataAddress"] = Users.MetadataAddress,
            ["services:userservice:http:0"] = Users.Host.Address.ToString().TrimEnd('/'),
            ["services:bookservice:http:0"] = $"http://127.0.0.1:{catalogPort}",
            ["services:lendingservice:http:0"] = $"http://127.0.0.1:{lendingPort}",
        };

        Catalog = new ServiceHost<BookServiceProgram>(new Dictionary<string, string?>(shared)
        {
            ["ConnectionStrings:bookdb"] = BookDb.ConnectionString,
            ["Catalog:SeedFile"] = Path.Combine(RepoRoot, "data", "sample-catalog.json"),
        }).OnPort(catalogPort);
        Catalog.StartServer();

        Lending = new ServiceHost<LendingServiceProgram>(new Dictionary<string, string?>(shared)
        {
            ["ConnectionStrings:lendingdb"] = LendingDb.ConnectionString,
            ["Auth:Client:Id"] = RealUserService<UserServiceProgram>.ClientId,
            ["Auth:Client:Secret"] = RealUserService<UserServiceProgram>.ClientSecret,
        }).OnPort(lendingPort);
        Lending.StartServer();

        // Raised, not switched off: the same keys benchmarks use (API.md, "Limits").
        Gateway = new ServiceHost<GatewayProgram>(new Dictionary<string, string?>(shared)
        {
            ["RateLimiting:AnonymousPerMinute"] = "100000",
            ["RateLimiting:UserPerMinute"] = "100000",
            ["RateLimiting:LoginPerMinute"] = "100000",
            ["RateLimiting:LoginPerIpPerMinute"] = "100000",
            ["RateLimiting:RegisterPerMinute"] = "100000",
        }).OnPort(gatewayPort);
        Gateway.StartServer();
        BaseAddress = Gateway.Address;
    }

    public HttpClient Client(string? token = null)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        if (token is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        return client;
    }

    /// <summary>Logs in through the gateway; the access and refresh tokens.</summary>
    public async Task<(string Access, string Refresh)> LoginAsync(string email, string password)
    {
        using var client = Client();
        using var response = await client.PostAsJsonAsync("/api/auth/login", new { email, password });
        response.EnsureSuccessStatusCode();
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        return (body.GetProperty("accessToken").GetString()!, body.GetProperty("refreshToken").GetString()!);
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Library.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"No Library.sln above {AppContext.BaseDirectory}");
    }

    public async ValueTask DisposeAsync()
    {
        if (Gateway is not null)
        {
            await Gateway.DisposeAsync();
        }
        if (Lending is not null)
        {
            await Lending.DisposeAsync();
        }
        if (Catalog is not null)
        {
            await Catalog.DisposeAsync();
        }
        if (LendingDb is not null)
        {
            await LendingDb.DisposeAsync();
        }
        if (BookDb is not null)
        {
            await BookDb.DisposeAsync();
        }
        if (Users is not null)
        {
            await Users.DisposeAsync();
        }
    }
}
