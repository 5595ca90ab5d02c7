using Microsoft.Playwright;

namespace Library.AppHost.Tests;

/// <summary>
/// A headless Chromium (Debian's, driven by Playwright: it cannot download its own browsers) for
/// the browser tests against the AppHost's run. One per test class that asks for it.
/// </summary>
public sealed class AppHostBrowser : IAsyncLifetime
{
    public const float Timeout = 20_000;

    private IPlaywright? _playwright;
    private IBrowser? _browser;

    public async ValueTask InitializeAsync()
    {
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = Environment.GetEnvironmentVariable("LIBRARY_TEST_CHROMIUM") is { Length: > 0 } path ? path : "/usr/bin/chromium",
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
        Assertions.SetDefaultExpectTimeout(Timeout);
    }

    /// <summary>A fresh browser profile with one page; uncaught script errors are collected in Problems.</summary>
    public async Task<(IBrowserContext Context, IPage Page, List<string> Problems)> NewPageAsync(int width = 1280, int height = 900)
    {
        var context = await _browser!.NewContextAsync(new()
        {
            ViewportSize = new() { Width = width, Height = height },
            Locale = "en-GB",
            TimezoneId = "UTC",
        });
        context.SetDefaultTimeout(Timeout);
        var page = await context.NewPageAsync();
        var problems = new List<string>();
        page.PageError += (_, error) => problems.Add($"page error: {error}");
        return (context, page, problems);
    }

    /// <summary>Saves a full-page screenshot to artifacts/screenshots/apphost/{name}.png at the repository root.</summary>
    public static async Task<string> ScreenshotAsync(IPage page, string name)
    {
        var path = Path.Combine(Repository.Screenshots, name + ".png");
        await page.ScreenshotAsync(new() { Path = path, FullPage = true });
        return path;
    }

    public async ValueTask DisposeAsync()
    {
        if (_browser is not null)
        {
            await _browser.CloseAsync();
        }
        _playwright?.Dispose();
    }
}
