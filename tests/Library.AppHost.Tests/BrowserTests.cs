using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Aspire.Hosting.Testing;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Library.AppHost.Tests;

/// <summary>
/// The AppHost's run as a person sees it in a browser: the web page and the API reference through
/// the gateway, and a borrow's distributed trace in the Aspire dashboard. Screenshots land in
/// artifacts/screenshots/apphost/.
/// </summary>
public sealed class BrowserTests(LibraryAppHost library, AppHostBrowser browser) : IClassFixture<AppHostBrowser>
{
    // Telemetry reaches the dashboard in the services' export batches (every few seconds).
    private static readonly TimeSpan TraceDeadline = TimeSpan.FromSeconds(90);

    private string GatewayUrl => library.App.GetEndpoint("gateway", "http").ToString().TrimEnd('/');

    [Fact]
    public async Task The_web_page_through_the_gateway_loads_and_finds_a_sample_title()
    {
        var (context, page, problems) = await browser.NewPageAsync();
        await using var _ = context;

        var home = await page.GotoAsync($"{GatewayUrl}/");
        Assert.Equal((int)HttpStatusCode.OK, home!.Status);
        await Expect(page).ToHaveTitleAsync(new Regex("Library$"));
        // The app (app.js) replaced the "Loading…" placeholder with its search view.
        await Expect(page.GetByTestId("search-input")).ToBeVisibleAsync();
        // ... and its first page of the catalog (before searching: the view is drawn again when it lands).
        await Expect(page.GetByTestId("book-card").First).ToBeVisibleAsync();
        await Expect(page.GetByTestId("result-count")).ToContainTextAsync("titles");

        // A title from data/sample-catalog.json, loaded into the empty catalog on the first run.
        const string title = "The Left Hand of Darkness";
        await page.GetByTestId("search-input").FillAsync("left hand of darkness");
        await page.GetByTestId("search-submit").ClickAsync();
        var card = page.GetByTestId("book-card").Filter(new() { HasText = title });
        await Expect(card).ToHaveCountAsync(1);
        await Expect(card.GetByTestId("book-card-availability")).ToContainTextAsync("on the shelf");
        await AppHostBrowser.ScreenshotAsync(page, "web-page-search");

        Assert.Empty(problems);
    }

    [Fact]
    public async Task The_docs_page_shows_the_API_reference_with_the_catalog_operations()
    {
        var (context, page, problems) = await browser.NewPageAsync();
        await using var _ = context;

        var docs = await page.GotoAsync($"{GatewayUrl}/docs");
        Assert.Equal((int)HttpStatusCode.OK, docs!.Status);
        // Scalar fetched the gateway's merged document (/openapi/library.json, shown first) and
        // rendered its operations: the first tag's paths are on screen, and the catalog's once
        // its section is opened.
        await ShowsTheCatalogOperationsAsync(page);
        await AppHostBrowser.ScreenshotAsync(page, "docs");

        Assert.Empty(problems);
    }

    // Found by this test: the OpenAPI documents the gateway forwarded carried the service's own
    // address as their server (YARP sent the destination's Host), so Scalar's "Test Request" and
    // curl examples targeted the service behind the gateway.
    [Fact]
    public async Task The_docs_pages_server_for_trying_requests_is_the_gateway_not_a_service_behind_it()
    {
        var (context, page, _) = await browser.NewPageAsync();
        await using var __ = context;
        await page.GotoAsync($"{GatewayUrl}/docs");
        await ShowsTheCatalogOperationsAsync(page);
        var bookService = library.App.GetEndpoint("bookservice", "http").ToString().TrimEnd('/');
        var shown = await page.Locator("body").InnerTextAsync();
        TestContext.Current.SendDiagnosticMessage($"gateway {GatewayUrl}, book service {bookService}");
        // "Test Request" and the curl examples go to the server the page shows: it must be the
        // gateway (the page's CSP allows connect-src 'self' only; a service behind the gateway is
        // not reachable from a reader's browser once deployed).
        Assert.DoesNotContain(bookService, shown, StringComparison.Ordinal);
        Assert.Contains(GatewayUrl, shown, StringComparison.Ordinal);
    }

    private static async Task ShowsTheCatalogOperationsAsync(IPage page)
    {
        await Expect(page.GetByText("/api/auth/login").Filter(new() { Visible = true }).First).ToBeVisibleAsync();
        await page.GetByRole(AriaRole.Link, new() { Name = "Books", Exact = true }).First.ClickAsync();
        await Expect(page.GetByText("/api/books/{id}").Filter(new() { Visible = true }).First).ToBeVisibleAsync();
    }

    [Fact]
    public async Task The_dashboard_shows_a_borrow_as_one_trace_from_the_gateway_to_the_book_services_consumer()
    {
        var ct = TestContext.Current.CancellationToken;
        using var http = library.Gateway();

        // A title with two copies, and a reader.
        var admin = await AppHostTests.LogInAsync(http, LibraryAppHost.AdminEmail, LibraryAppHost.AdminPassword, ct);
        var title = $"Traced Orchard {Guid.NewGuid():N}"[..30];
        using var create = new HttpRequestMessage(HttpMethod.Post, "/api/books")
        {
            Content = JsonContent.Create(new { isbn = AppHostTests.TestIsbn(), title, publisher = "Aspire Press", authorIds = Array.Empty<Guid>(), categoryIds = Array.Empty<Guid>(), totalCopies = 2 }),
        };
        create.Headers.Authorization = new AuthenticationHeaderValue("Bearer", admin);
        using var created = await http.SendAsync(create, ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var bookId = (await created.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("id").GetString()!;
        var email = $"traced-{Guid.NewGuid():N}@library.test";
        using var register = await http.PostAsJsonAsync("/api/auth/register",
            new { email, firstName = "Tracy", lastName = "Reader", password = "Reader-password-1" }, ct);
        Assert.Equal(HttpStatusCode.Created, register.StatusCode);
        var token = await AppHostTests.LogInAsync(http, email, "Reader-password-1", ct);

        // The borrow, in a trace of our own: the gateway (ASP.NET Core) continues an incoming W3C
        // traceparent, so the whole borrow is findable by this ID.
        var traceId = ActivityTraceId.CreateRandom().ToHexString();
        using var borrow = new HttpRequestMessage(HttpMethod.Post, "/api/loans") { Content = JsonContent.Create(new { bookId, days = 7 }) };
        borrow.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        borrow.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
        borrow.Headers.Add("traceparent", $"00-{traceId}-{ActivitySpanId.CreateRandom().ToHexString()}-01");
        using var borrowed = await http.SendAsync(borrow, ct);
        Assert.Equal(HttpStatusCode.Created, borrowed.StatusCode);
        // The catalog has heard of it (outbox -> relay -> RabbitMQ -> book service's consumer).
        await AppHostTests.WaitForAvailableAsync(http, bookId, 1, ct);

        // The dashboard, as a developer opens it: log in with the browser token, open the trace.
        var (context, page, problems) = await browser.NewPageAsync(1600, 2400);
        await using var _ = context;
        var dashboard = library.DashboardUrl.ToString().TrimEnd('/');
        var browserToken = library.DashboardToken;
        await page.GotoAsync($"{dashboard}/login?t={browserToken}");
        await Expect(page).Not.ToHaveURLAsync(new Regex("/login"));

        // The trace view lists one row per span; its first cell's title is "{resource}: {span}"
        // (replicas are named {service}-{suffix}; the dashboard names messaging spans
        // "MSG {system} {destination}": the relay's publish goes to the exchange library.events, the
        // book service's consumer reads its queue, bookservice).
        var traceUrl = $"{dashboard}/traces/detail/{traceId}";
        var spans = page.Locator("tr.fluent-data-grid-row td[col-index='1'][title]");
        var expected = new (string What, Regex Row)[]
        {
            // The gateway runs replicas too: the dashboard names each (gateway-abcdwxyz).
            ("the gateway's request", new(@"^gateway-\w+: POST /api/loans")),
            ("the lending service's request", new(@"^lendingservice-\w+: POST /api/loans")),
            ("the lending service's relay publishing to the exchange", new(@"^lendingservice-\w+: MSG rabbitmq\s+library\.events$")),
            ("the book service's consumer of its queue", new(@"^bookservice-\w+: MSG rabbitmq\s+bookservice$")),
        };
        var deadline = DateTime.UtcNow + TraceDeadline;
        List<string> rows;
        while (true)
        {
            await page.GotoAsync(traceUrl);
            try
            {
                await Expect(spans.First).ToBeVisibleAsync(new() { Timeout = 5_000 });
            }
            catch (PlaywrightException)
            {
                // not there yet (the dashboard says the trace is not found)
            }
            rows = [.. await spans.EvaluateAllAsync<string[]>("cells => cells.map(c => c.title)")];
            if (expected.All(e => rows.Exists(e.Row.IsMatch)))
            {
                break;
            }
            if (DateTime.UtcNow > deadline)
            {
                await AppHostBrowser.ScreenshotAsync(page, "dashboard-borrow-trace");
                Assert.Fail($"The dashboard's trace {traceId} lacks {string.Join(", ", expected.Where(e => !rows.Exists(e.Row.IsMatch)).Select(e => e.What))} "
                    + $"{TraceDeadline.TotalSeconds} s after the borrow. Its spans:\n{string.Join("\n", rows)}");
            }
            await Task.Delay(2_000, ct);
        }
        // The gateway's span heads the trace: it continued our traceparent, and everything after
        // it (lending service, relay, broker, book service) is in this one trace.
        await Expect(page.Locator("h1")).ToContainTextAsync(new Regex(@"gateway-\w+: POST /api/loans"));
        TestContext.Current.SendDiagnosticMessage($"trace {traceId}: {rows.Count} spans, e.g. {string.Join(" | ", rows.Where(r => expected.Any(e => e.Row.IsMatch(r))))}");
        await AppHostBrowser.ScreenshotAsync(page, "dashboard-borrow-trace");

        // The consumer's span, opened: its name is the event it handled.
        await spans.Filter(new() { HasTextRegex = new Regex(@"MSG rabbitmq\s+bookservice") }).First.ClickAsync();
        await Expect(page.GetByText(new Regex(@"^(loan\.created|book\.availability-changed) process$")).First).ToBeVisibleAsync();
        await AppHostBrowser.ScreenshotAsync(page, "dashboard-borrow-trace-consumer-span");
        Assert.Empty(problems);
    }
}
