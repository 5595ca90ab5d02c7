using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Library.TestSupport;
using Library.Tests.InProcess;
using Microsoft.Playwright;

namespace Library.BrowserTests;

/// <summary>
/// The whole library in process, as a browser meets it: the user, book and lending services on
/// loopback ports sharing one exchange (events flow as in production), the gateway in front of
/// them on its own port serving the web page from its wwwroot, and a headless Chromium.
/// The catalog starts from data/sample-catalog.json, as a first run of eng/run.sh does.
/// </summary>
public sealed class WholeLibrary : InProcessLibrary
{
    public IPlaywright Playwright { get; private set; } = null!;
    public IBrowser Browser { get; private set; } = null!;

    /// <summary>The gateway's address, e.g. http://127.0.0.1:12345 (no trailing slash).</summary>
    public string BaseUrl => Gateway.Address.ToString().TrimEnd('/');

    public override async ValueTask InitializeAsync()
    {
        await base.InitializeAsync();
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

    public override async ValueTask DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.CloseAsync();
        }
        Playwright?.Dispose();
        await base.DisposeAsync();
    }
}
