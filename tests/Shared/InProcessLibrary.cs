// Shared source, compiled into the test projects that need every service at once (the browser
// tests, the fuzz run): Library.TestSupport references no service, so it cannot hold this.
extern alias BookService;
extern alias Gateway;
extern alias LendingService;
extern alias UserService;

using Library.TestSupport;
using BookServiceProgram = BookService::Program;
using GatewayProgram = Gateway::Program;
using LendingServiceProgram = LendingService::Program;
using UserServiceProgram = UserService::Program;

namespace Library.Tests.InProcess;

/// <summary>
/// The whole library in process: the user, book and lending services on loopback ports sharing
/// one exchange and one cache prefix (events and cache invalidation flow as in production), and
/// the gateway in front of them on its own port, on Kestrel. The catalog starts from
/// data/sample-catalog.json, as a first run of eng/run.sh does.
/// </summary>
public abstract class InProcessLibrary : IAsyncLifetime
{
    public RealUserService<UserServiceProgram> Users { get; private set; } = null!;
    public TestDatabase BookDb { get; private set; } = null!;
    public TestDatabase LendingDb { get; private set; } = null!;
    public ServiceHost<BookServiceProgram> Catalog { get; private set; } = null!;
    public ServiceHost<LendingServiceProgram> Lending { get; private set; } = null!;
    public ServiceHost<GatewayProgram> Gateway { get; private set; } = null!;

    public static string AdminEmail => RealUserService<UserServiceProgram>.AdminEmail;
    public static string AdminPassword => RealUserService<UserServiceProgram>.AdminPassword;

    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>More configuration for the gateway (e.g. raised rate limits).</summary>
    protected virtual IReadOnlyDictionary<string, string?> GatewaySettings { get; } = new Dictionary<string, string?>();

    /// <summary>More configuration for the user service (e.g. a token lifetime).</summary>
    protected virtual IReadOnlyDictionary<string, string?> UserSettings { get; } = new Dictionary<string, string?>();

    public virtual async ValueTask InitializeAsync()
    {
        var isolation = Guid.NewGuid().ToString("N")[..12];
        var bus = new Dictionary<string, string?>
        {
            ["EventBus:Exchange"] = $"test-{isolation}.library.events",
            ["EventBus:QueuePrefix"] = $"test-{isolation}.",
            ["Cache:KeyPrefix"] = $"test-{isolation}:",
            ["EventBus:RetryDelay"] = "00:00:00.200",
        };
        var users = new Dictionary<string, string?>(bus);
        foreach (var (key, value) in UserSettings)
        {
            users[key] = value;
        }
        Users = await RealUserService<UserServiceProgram>.StartAsync(users);
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

        // On Kestrel, as in production (its request limits apply). WebApplicationFactory hosts the
        // gateway from its project folder: its wwwroot is the page.
        var gateway = new Dictionary<string, string?>(shared);
        foreach (var (key, value) in GatewaySettings)
        {
            gateway[key] = value;
        }
        Gateway = new ServiceHost<GatewayProgram>(gateway).OnPort(gatewayPort);
        Gateway.StartServer();
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

    public virtual async ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
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
