extern alias BookService;
extern alias Gateway;
extern alias LendingService;
extern alias UserService;

using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Library.TestSupport;
using Microsoft.Playwright;
using BookServiceProgram = BookService::Program;
using GatewayProgram = Gateway::Program;
using LendingServiceProgram = LendingService::Program;
using UserServiceProgram = UserService::Program;

namespace Library.BrowserTests;

/// <summary>
/// The whole library in process, as a browser meets it: the user, book and lending services on
/// loopback ports sharing one exchange (events flow as in production), the gateway in front of
/// them on its own port serving the web page from its wwwroot, and a headless Chromium.
/// The catalog starts from data/sample-catalog.json, as a first run of eng/run.sh does.
/// </summary>
public sealed class WholeLibrary : IAsyncLifetime
{
    public RealUserService<UserServiceProgram> Users { get; private set; } = null!;
    public TestDatabase BookDb { get; private set; } = null!;
    public TestDatabase LendingDb { get; private set; } = null!;
    public ServiceHost<BookServiceProgram> Catalog { get; private set; } = null!;
    public ServiceHost<LendingServiceProgram> Lending { get; private set; } = null!;
    public ServiceHost<GatewayProgram> Gateway { get; private set; } = null!;
    public IPlaywright Playwright { get; private set; } = null!;
    public IBrowser Browser { get; private set; } = null!;

    /// <summary>The gateway's address, e.g. http://127.0.0.1:12345 (no trailing slash).</summary>
    public string BaseUrl { get; private set; } = null!;

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
            ["EventBus:RetryDelay"] = "00:00:00.200",
            ["Cache:KeyPrefix"] = $"test-{isolation}:",
        };
        Users = await RealUserService<UserServiceProgram>.StartAsync(bus);
        BookDb = await TestDatabase.CreateAsync("bookdb");
        LendingDb = await TestDatabase.CreateAsync("lendingdb");
        var catalogPort = Ports.FreePort();
        var lendingPort = Ports.FreePort();
        var gatewayPort = Ports.FreePort();
        var userAddress = Users.Host.Address.ToString().TrimEnd('/');
        var shared = new Dictionary<string, string?>(bus)
        {
            ["Auth:MetadataAddress"] = Users.MetadataAddress,
            ["services:userservice:http:0"] = userAddress,
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

        // WebApplicationFactory hosts the gateway from its project folder: its wwwroot is the page.
        Gateway = new ServiceHost<GatewayProgram>(new Dictionary<string, string?>(shared)).OnPort(gatewayPort);
        Gateway.StartServer();
        BaseUrl = Gateway.Address.ToString().TrimEnd('/');

        Playwright = await Microsoft.Playwright.Playwright.CreateAsync();
        Browser = await Playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = Environment.GetEnvironmentVariable("LIBRARY_TEST_CHROMIUM") is { Length: > 0 } path ? path : "/usr/bin/chromium",
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
        Assertions.SetDefaultExpectTimeout(20_000);
    }

    /// <summary>A fresh browser profile (no shared state between scenarios) with one page.</summary>
    public async Task<(IBrowserContext Context, IPage Page, List<string> Problems)> NewPageAsync(int width = 1280, int height = 900, bool phone = false)
    {
        var context = await Browser.NewContextAsync(new()
        {
            ViewportSize = new() { Width = width, Height = height },
            IsMobile = phone,
            HasTouch = phone,
            DeviceScaleFactor = phone ? 2 : 1,
            Locale = "en-GB",
            TimezoneId = "UTC",
        });
        context.SetDefaultTimeout(20_000);
        var page = await context.NewPageAsync();
        // Uncaught script errors and Content-Security-Policy refusals fail the scenario.
        var problems = new List<string>();
        page.PageError += (_, error) => problems.Add($"page error: {error}");
        page.Console += (_, message) =>
        {
            if (message.Type == "error" && message.Text.Contains("Content Security Policy", StringComparison.OrdinalIgnoreCase))
            {
                problems.Add($"CSP: {message.Text}");
            }
        };
        return (context, page, problems);
    }

    /// <summary>Saves a full-page screenshot to artifacts/screenshots/{scenario}-{step}.png at the repository root.</summary>
    public static async Task ScreenshotAsync(IPage page, string scenario, string step)
    {
        var folder = Path.Combine(RepoRoot, "artifacts", "screenshots");
        Directory.CreateDirectory(folder);
        await page.ScreenshotAsync(new() { Path = Path.Combine(folder, $"{scenario}-{step}.png"), FullPage = true });
    }

    /// <summary>A librarian's token, straight from the user service (for arranging data, not for the page).</summary>
    public Task<string> AdminTokenAsync() => Users.AdminTokenAsync();

    /// <summary>A title created through the gateway's API by the admin; its ID.</summary>
    public async Task<Guid> CreateBookAsync(string title, int copies, string publisher = "Harbour Lane Press")
    {
        using var client = new HttpClient { BaseAddress = new Uri(BaseUrl) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", await AdminTokenAsync());
        using var response = await client.PostAsJsonAsync("/api/books", new { isbn = TestIsbn.Next(), title, publisher, publishedYear = 2021, language = "en", totalCopies = copies });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
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
        if (Browser is not null)
        {
            await Browser.CloseAsync();
        }
        Playwright?.Dispose();
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
