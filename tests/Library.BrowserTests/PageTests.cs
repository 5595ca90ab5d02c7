using System.Text.RegularExpressions;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Library.BrowserTests;

/// <summary>
/// What readers and librarians do on the page, in a real Chromium through the gateway to the
/// real services. Screenshots of each step land in artifacts/screenshots/.
/// </summary>
public sealed partial class PageTests(WholeLibrary stack) : IClassFixture<WholeLibrary>
{
    private static string Unique() => Guid.NewGuid().ToString("N")[..8];

    private static ILocator ById(IPage page, string testId) => page.GetByTestId(testId);

    private async Task RegisterAsync(IPage page, string email, string first, string last, string password)
    {
        await page.GotoAsync($"{stack.BaseUrl}/#/register");
        await ById(page, "register-email").FillAsync(email);
        await ById(page, "register-first-name").FillAsync(first);
        await ById(page, "register-last-name").FillAsync(last);
        await ById(page, "register-password").FillAsync(password);
        await ById(page, "register-submit").ClickAsync();
    }

    private async Task LoginAsync(IPage page, string email, string password)
    {
        await page.GotoAsync($"{stack.BaseUrl}/#/login");
        await ById(page, "login-email").FillAsync(email);
        await ById(page, "login-password").FillAsync(password);
        await ById(page, "login-submit").ClickAsync();
    }

    [Fact]
    public async Task A_reader_registers_finds_a_title_borrows_it_sees_the_loan_and_returns_it()
    {
        const string scenario = "a-reader-borrows";
        var title = $"The Quiet Lantern Orchard";
        var bookId = await stack.CreateBookAsync(title, copies: 2);
        var (context, page, problems) = await stack.NewPageAsync();
        await using var _ = context;

        // Register (the page logs the new reader in).
        var email = $"reader-{Unique()}@library.test";
        await RegisterAsync(page, email, "Ada", "Reader", "Reader-password-1");
        await Expect(ById(page, "whoami")).ToHaveTextAsync("Ada Reader (member)");
        await Expect(ById(page, "nav-loans")).ToBeVisibleAsync();
        await Expect(ById(page, "nav-admin")).ToBeHiddenAsync();

        // Search the catalog (322 sample titles and this one).
        await ById(page, "search-input").FillAsync("quiet lantern orchard");
        await ById(page, "search-submit").ClickAsync();
        var card = ById(page, "book-card").Filter(new() { HasText = title });
        await Expect(card).ToHaveCountAsync(1);
        await Expect(card.GetByTestId("book-card-availability")).ToHaveTextAsync("2 of 2 on the shelf");
        await WholeLibrary.ScreenshotAsync(page, scenario, "1-search-results");

        // Open it and borrow it for 7 days.
        await card.GetByTestId("book-link").ClickAsync();
        await Expect(ById(page, "book-title")).ToHaveTextAsync(title);
        await Expect(page).ToHaveURLAsync(new Regex($"#/book/{bookId}$"));
        await ById(page, "borrow-days").SelectOptionAsync("7");
        await WholeLibrary.ScreenshotAsync(page, scenario, "2-book-page");
        await Expect(page.Locator("main")).Not.ToContainTextAsync("null");
        await ById(page, "borrow-button").ClickAsync();
        await Expect(ById(page, "borrowed")).ToBeVisibleAsync();
        await Expect(ById(page, "message")).ToContainTextAsync($"Borrowed “{title}”");

        // The catalog learns of the loan by an event: the page shows one copy left once it has.
        await WaitForAvailabilityAsync(page, bookId, "1");
        await Expect(ById(page, "book-availability")).ToHaveTextAsync("1 of 2 on the shelf");
        await WholeLibrary.ScreenshotAsync(page, scenario, "3-borrowed");

        // My loans: the loan is active, due 7 days on: at the end of that day in the library's time
        // zone, or of the next open day after it (the lending service's calendar), so 7 to 9 days.
        await ById(page, "nav-loans").ClickAsync();
        var row = ById(page, "loan-row").Filter(new() { HasText = title });
        await Expect(row).ToHaveCountAsync(1);
        await Expect(row).ToHaveAttributeAsync("data-status", "active");
        var dueAt = DateTimeOffset.Parse((await row.GetAttributeAsync("data-due-at"))!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(dueAt - DateTimeOffset.UtcNow, TimeSpan.FromDays(6.9), TimeSpan.FromDays(9));
        await Expect(row.GetByTestId("loan-return")).ToBeVisibleAsync();
        await WholeLibrary.ScreenshotAsync(page, scenario, "4-my-loans");

        // Return it: the row shows it returned, and the active list is empty.
        await row.GetByTestId("loan-return").ClickAsync();
        await Expect(row).ToHaveAttributeAsync("data-status", "returned");
        await Expect(row.GetByTestId("loan-return")).ToHaveCountAsync(0);
        await Expect(ById(page, "message")).ToContainTextAsync($"Returned “{title}”");
        await WholeLibrary.ScreenshotAsync(page, scenario, "5-returned");
        await ById(page, "loans-status").SelectOptionAsync("active");
        await Expect(ById(page, "loans-empty")).ToBeVisibleAsync();
        await Expect(page.Locator("main")).Not.ToContainTextAsync("null");

        Assert.Empty(problems);
    }

    [Fact]
    public async Task A_librarian_adds_an_author_a_category_and_a_book_and_a_reader_then_finds_it()
    {
        const string scenario = "b-librarian-adds-book";
        var suffix = Unique();
        var author = $"Marguerite Okonkwo {suffix}";
        var category = $"Maritime Folklore {suffix}";
        var title = "Tides of the Salt Archive";
        var (context, page, problems) = await stack.NewPageAsync();
        await using (context)
        {
            // The admin is also a librarian.
            await LoginAsync(page, WholeLibrary.AdminEmail, WholeLibrary.AdminPassword);
            await Expect(ById(page, "whoami")).ToContainTextAsync("(admin)");
            await ById(page, "nav-admin").ClickAsync();

            await ById(page, "admin-tab-authors").ClickAsync();
            await ById(page, "author-name").FillAsync(author);
            await ById(page, "author-birth-year").FillAsync("1962");
            await ById(page, "authors-submit").ClickAsync();
            await Expect(ById(page, "message")).ToHaveTextAsync($"Added {author}.");

            await ById(page, "admin-tab-categories").ClickAsync();
            await ById(page, "category-name").FillAsync(category);
            await ById(page, "category-description").FillAsync("Sea stories, shanties and shipwrecks.");
            await ById(page, "categories-submit").ClickAsync();
            await Expect(ById(page, "categories-row").Filter(new() { HasText = category })).ToHaveCountAsync(1);
            await WholeLibrary.ScreenshotAsync(page, scenario, "1-categories");

            await ById(page, "admin-tab-books").ClickAsync();
            await ById(page, "admin-add-book").ClickAsync();
            await ById(page, "book-isbn").FillAsync(Library.TestSupport.TestIsbn.Next());
            await ById(page, "book-title-input").FillAsync(title);
            await ById(page, "book-publisher").FillAsync("Gull Rock Books");
            await ById(page, "book-year").FillAsync("2019");
            await ById(page, "book-language").FillAsync("en");
            await ById(page, "book-pages").FillAsync("288");
            await ById(page, "book-copies").FillAsync("3");
            await ById(page, "book-description-input").FillAsync("An archivist catalogues the letters that the tide brings in.");
            await ById(page, "authorIds-filter").FillAsync(suffix);
            await ById(page, "authorIds-option").And(page.Locator($"[data-name='{author}']")).CheckAsync();
            await ById(page, "categoryIds-filter").FillAsync(suffix);
            await ById(page, "categoryIds-option").And(page.Locator($"[data-name='{category}']")).CheckAsync();
            await WholeLibrary.ScreenshotAsync(page, scenario, "2-book-form");
            await ById(page, "book-submit").ClickAsync();

            await Expect(ById(page, "book-title")).ToHaveTextAsync(title);
            await Expect(ById(page, "book-authors")).ToHaveTextAsync(author);
            await Expect(ById(page, "book-availability")).ToHaveTextAsync("3 of 3 on the shelf");
            await WholeLibrary.ScreenshotAsync(page, scenario, "3-book-added");
            await ById(page, "nav-logout").ClickAsync();
            await Expect(ById(page, "nav-login")).ToBeVisibleAsync();
        }

        // A reader, in another browser, finds it by searching, and by its category's facet.
        var (readerContext, reader, readerProblems) = await stack.NewPageAsync(390, 844, phone: true);
        await using (readerContext)
        {
            await reader.GotoAsync($"{stack.BaseUrl}/#/search");
            await ById(reader, "search-input").FillAsync("salt archive");
            await ById(reader, "search-submit").ClickAsync();
            await Expect(ById(reader, "book-card").Filter(new() { HasText = title })).ToHaveCountAsync(1);
            var facet = ById(reader, "facet-category-option").And(reader.Locator($"[data-value='{category}']"));
            await Expect(facet).ToHaveTextAsync($"{category} (1)");
            await facet.ClickAsync();
            await Expect(ById(reader, "active-filter-category")).ToBeVisibleAsync();
            await Expect(ById(reader, "result-count")).ToHaveTextAsync("1 title");
            await Expect(ById(reader, "book-card")).ToHaveCountAsync(1);
            await WholeLibrary.ScreenshotAsync(reader, scenario, "4-reader-finds-it");
        }

        Assert.Empty(problems);
        Assert.Empty(readerProblems);
    }

    [Fact]
    public async Task Bad_input_shows_the_problem_details_beside_the_form_on_a_phone()
    {
        const string scenario = "c-bad-input-phone";
        var (context, page, problems) = await stack.NewPageAsync(390, 844, phone: true);
        await using var _ = context;

        var home = await page.GotoAsync($"{stack.BaseUrl}/");
        Assert.Contains("script-src 'self'", (await home!.AllHeadersAsync())["content-security-policy"], StringComparison.Ordinal);
        await RegisterAsync(page, $"short-{Unique()}@library.test", "Bea", "Brief", "short");

        await Expect(ById(page, "field-error-password")).ToHaveTextAsync("The password must have at least 8 characters.");
        await Expect(ById(page, "register-password")).ToHaveAttributeAsync("aria-invalid", "true");
        await Expect(ById(page, "form-error")).ToBeVisibleAsync();
        await Expect(ById(page, "error-title")).Not.ToBeEmptyAsync();
        await Expect(ById(page, "whoami")).ToBeHiddenAsync();
        await WholeLibrary.ScreenshotAsync(page, scenario, "1-short-password");
        await Expect(ById(page, "form-error")).Not.ToContainTextAsync("null");

        // Fixing it clears the error and registers.
        await ById(page, "register-password").FillAsync("Long-enough-1");
        await ById(page, "register-submit").ClickAsync();
        await Expect(ById(page, "whoami")).ToHaveTextAsync("Bea Brief (member)");

        // A wrong password at log-in: the service's problem, not a blank page.
        await ById(page, "nav-logout").ClickAsync();
        await Expect(ById(page, "message")).ToHaveTextAsync("You are logged out.");
        await LoginAsync(page, "nobody@library.test", "Wrong-password-1");
        await Expect(ById(page, "error-title")).ToHaveTextAsync("Invalid credentials");
        await Expect(ById(page, "error-detail")).ToContainTextAsync("email or password is wrong");
        await WholeLibrary.ScreenshotAsync(page, scenario, "2-wrong-login");

        // The layout fits the phone: nothing scrolls sideways.
        var overflow = await page.EvaluateAsync<bool>("() => document.documentElement.scrollWidth > window.innerWidth");
        Assert.False(overflow, "The page is wider than a 390 px phone.");
        Assert.Empty(problems);
    }

    [Fact]
    public async Task A_librarian_sees_readers_borrowers_and_unavailable_titles_and_changes_stock()
    {
        const string scenario = "d-librarian-lists";
        var title = $"The Single Copy Lighthouse";
        var bookId = await stack.CreateBookAsync(title, copies: 1);
        var (readerContext, reader, readerProblems) = await stack.NewPageAsync();
        var last = $"Borrower{Unique()}";
        await using (readerContext)
        {
            await RegisterAsync(reader, $"{last.ToLowerInvariant()}@library.test", "Cyd", last, "Reader-password-1");
            await Expect(ById(reader, "whoami")).ToContainTextAsync("(member)");
            await reader.GotoAsync($"{stack.BaseUrl}/#/book/{bookId}");
            await ById(reader, "borrow-button").ClickAsync();
            await Expect(ById(reader, "borrowed")).ToBeVisibleAsync();
        }

        var (context, page, problems) = await stack.NewPageAsync();
        await using (context)
        {
            await LoginAsync(page, WholeLibrary.AdminEmail, WholeLibrary.AdminPassword);
            await Expect(ById(page, "whoami")).ToContainTextAsync("(admin)");

            await ById(page, "nav-admin").ClickAsync();
            await ById(page, "admin-tab-readers").ClickAsync();
            await ById(page, "readers-search").FillAsync(last);
            await ById(page, "readers-submit").ClickAsync();
            await Expect(ById(page, "reader-row")).ToHaveCountAsync(1);
            await Expect(ById(page, "reader-row")).ToContainTextAsync($"Cyd {last}");

            await ById(page, "admin-tab-borrowers").ClickAsync();
            await Expect(ById(page, "borrower-row").Filter(new() { HasText = last })).ToContainTextAsync(title);

            // The lending service's own view: no copy of it on the shelf.
            await ById(page, "admin-tab-unavailable").ClickAsync();
            await Expect(ById(page, "unavailable-row").Filter(new() { HasText = title })).ToContainTextAsync("1 of 1 on loan");
            await WholeLibrary.ScreenshotAsync(page, scenario, "1-unavailable");

            // Another copy: the stock form on the book's edit page (If-Match from the ETag).
            await page.EvaluateAsync($"() => {{ location.hash = '#/admin/book/{bookId}'; }}");
            await ById(page, "stock-copies").FillAsync("2");
            await ById(page, "stock-submit").ClickAsync();
            await Expect(ById(page, "message")).ToHaveTextAsync($"Stock of “{title}” is now 2.");

            // A book edit with a bad ISBN shows the field's error.
            await ById(page, "book-isbn").FillAsync("978-0-00-000000-1");
            await ById(page, "book-submit").ClickAsync();
            await Expect(ById(page, "field-error-isbn")).ToContainTextAsync("valid ISBN");
            await WholeLibrary.ScreenshotAsync(page, scenario, "2-edit-book-errors");
        }

        Assert.Empty(problems);
        Assert.Empty(readerProblems);
    }

    [Fact]
    public async Task A_reader_holds_a_title_with_no_copy_and_an_expired_token_is_refreshed_once_and_the_call_retried()
    {
        const string scenario = "e-hold-and-refresh";
        var title = "The Borrowed Winter Atlas";
        var bookId = await stack.CreateBookAsync(title, copies: 0);
        var (context, page, problems) = await stack.NewPageAsync(390, 844, phone: true);
        await using var _ = context;
        await RegisterAsync(page, $"holder-{Unique()}@library.test", "Hal", "Holder", "Reader-password-1");
        await Expect(ById(page, "whoami")).ToHaveTextAsync("Hal Holder (member)");

        // Nothing on the shelf: the page offers a hold instead.
        await page.EvaluateAsync($"() => {{ location.hash = '#/book/{bookId}'; }}");
        await Expect(ById(page, "book-availability")).ToHaveTextAsync("No copies owned");
        await ById(page, "hold-button").ClickAsync();
        await Expect(ById(page, "hold-placed")).ToBeVisibleAsync();
        await Expect(ById(page, "message")).ToContainTextAsync("number 1 in the queue");

        // The next API call answers 401 as for an expired access token: the page refreshes once and retries.
        var authorizations = new List<string?>();
        var refreshes = 0;
        page.Request += (_, request) =>
        {
            if (request.Url.EndsWith("/api/auth/refresh", StringComparison.Ordinal))
            {
                refreshes++;
            }
        };
        var expired = true;
        await page.RouteAsync(new Regex(@"/api/loans\?"), async route =>
        {
            authorizations.Add(route.Request.Headers.GetValueOrDefault("authorization"));
            if (expired)
            {
                expired = false;
                await route.FulfillAsync(new() { Status = 401, ContentType = "application/problem+json", Body = """{"title":"Unauthorized","status":401}""" });
                return;
            }
            await route.ContinueAsync();
        });
        await ById(page, "nav-loans").ClickAsync();
        await Expect(ById(page, "loans-empty")).ToBeVisibleAsync();
        await Expect(ById(page, "whoami")).ToHaveTextAsync("Hal Holder (member)");
        Assert.Equal(1, refreshes);
        Assert.Equal(2, authorizations.Count);
        Assert.NotEqual(authorizations[0], authorizations[1]);

        // The hold is listed, waiting, and can be cancelled.
        var hold = ById(page, "hold-row").Filter(new() { HasText = title });
        await Expect(hold).ToHaveAttributeAsync("data-status", "waiting");
        await WholeLibrary.ScreenshotAsync(page, scenario, "1-my-holds");
        await hold.GetByTestId("hold-cancel").ClickAsync();
        await Expect(hold).ToHaveAttributeAsync("data-status", "cancelled");
        await Expect(hold.GetByTestId("hold-cancel")).ToHaveCountAsync(0);
        Assert.Empty(problems);
    }

    /// <summary>Re-renders the book page until the catalog's availability (fed by events) says so.</summary>
    private static async Task WaitForAvailabilityAsync(IPage page, Guid bookId, string available, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        for (var attempt = 1; ; attempt++)
        {
            var shown = ById(page, "book-availability");
            await shown.WaitForAsync();
            if (await shown.GetAttributeAsync("data-available") == available)
            {
                return;
            }
            Assert.True(DateTime.UtcNow < deadline, $"The book page did not show {available} available within {seconds} s.");
            // Navigating within the page (not reloading it) keeps the in-memory session.
            await page.EvaluateAsync($"() => {{ location.hash = '#/book/{bookId}?poll={attempt}'; }}");
            await page.WaitForFunctionAsync($"() => document.querySelector('[data-testid=book-availability]') && location.hash.endsWith('poll={attempt}')");
        }
    }
}
