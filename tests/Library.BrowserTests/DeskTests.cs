using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Library.BrowserTests;

/// <summary>The librarian's desk on the page: check-out and check-in by barcode (typed and Enter, as a scanner does), a title's copies, the admin's rules and calendar.</summary>
public sealed partial class PageTests
{
    /// <summary>The barcodes of a title's copies, once the lending service has made them from the catalog's event.</summary>
    private async Task<List<string>> CopyBarcodesAsync(Guid bookId, int expected, int seconds = 30)
    {
        using var client = new HttpClient { BaseAddress = new Uri(stack.BaseUrl) };
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            using var response = await client.GetAsync($"/api/books/{bookId}/copies");
            if (response.IsSuccessStatusCode)
            {
                var copies = await response.Content.ReadFromJsonAsync<JsonElement>();
                var barcodes = copies.EnumerateArray().Select(c => c.GetProperty("barcode").GetString()!).ToList();
                if (barcodes.Count >= expected)
                {
                    return barcodes;
                }
            }
            Assert.True(DateTime.UtcNow < deadline, $"The title {bookId} did not have {expected} copies within {seconds} s.");
            await Task.Delay(200);
        }
    }

    /// <summary>A reader registered through the gateway's API.</summary>
    private async Task RegisterReaderAsync(string email, string first, string last)
    {
        using var client = new HttpClient { BaseAddress = new Uri(stack.BaseUrl) };
        using var response = await client.PostAsJsonAsync("/api/auth/register", new { email, firstName = first, lastName = last, password = "Reader-password-1" });
        response.EnsureSuccessStatusCode();
    }

    private static ILocator CopyRow(IPage page, string barcode) => ById(page, "copy-row").And(page.Locator($"[data-barcode='{barcode}']"));

    [Fact]
    public async Task A_librarian_checks_a_copy_out_and_in_by_barcode_at_the_desk_and_the_copies_list_follows()
    {
        const string scenario = "f-desk";
        var title = "The Lamplighter's Ledger";
        var bookId = await stack.CreateBookAsync(title, copies: 1);
        var barcode = (await CopyBarcodesAsync(bookId, 1)).Single();
        var last = $"Desk{Unique()}";
        await RegisterReaderAsync($"{last.ToLowerInvariant()}@library.test", "Dora", last);

        var (context, page, problems) = await stack.NewPageAsync();
        await using var _ = context;
        await LoginAsync(page, WholeLibrary.AdminEmail, WholeLibrary.AdminPassword);
        await Expect(ById(page, "whoami")).ToContainTextAsync("(admin)");
        await ById(page, "nav-admin").ClickAsync();
        await ById(page, "admin-tab-desk").ClickAsync();
        await Expect(ById(page, "view-title")).ToHaveTextAsync("Desk");

        // Choose the reader: search by name, pick the one found.
        await ById(page, "desk-reader-search").FillAsync(last);
        await ById(page, "desk-reader-search").PressAsync("Enter");
        await Expect(ById(page, "desk-reader-option")).ToHaveCountAsync(1);
        await ById(page, "desk-reader-choose").ClickAsync();
        await Expect(ById(page, "desk-reader-name")).ToHaveTextAsync($"Dora {last}");
        await Expect(ById(page, "reader-loans-empty")).ToBeVisibleAsync();
        await Expect(ById(page, "checkout-barcode")).ToBeFocusedAsync();

        // Check out: the barcode typed and Enter, as a scanner does.
        await ById(page, "checkout-barcode").PressSequentiallyAsync(barcode);
        await ById(page, "checkout-barcode").PressAsync("Enter");
        var done = ById(page, "checkout-done");
        await Expect(done).ToContainTextAsync($"Checked out {barcode}: “{title}”");
        var dueAt = DateTimeOffset.Parse((await done.GetAttributeAsync("data-due-at"))!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(dueAt > DateTimeOffset.UtcNow.AddDays(1), $"due {dueAt}");
        await Expect(ById(page, "checkout-due")).ToContainTextAsync(dueAt.UtcDateTime.Year.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var due = await ById(page, "checkout-due").TextContentAsync();
        // Ready for the next scan.
        await Expect(ById(page, "checkout-barcode")).ToBeFocusedAsync();
        await Expect(ById(page, "checkout-barcode")).ToHaveValueAsync("");
        // The reader's current loans show it.
        var loan = ById(page, "reader-loan-row").And(page.Locator($"[data-barcode='{barcode}']"));
        await Expect(loan).ToHaveAttributeAsync("data-status", "active");
        await Expect(loan.GetByTestId("reader-loan-due")).ToHaveTextAsync($"due {due}");
        await WholeLibrary.ScreenshotAsync(page, scenario, "1-checked-out");

        // The book's copies: checked out, due, and (for librarians) to whom.
        await page.EvaluateAsync($"() => {{ location.hash = '#/book/{bookId}'; }}");
        var row = CopyRow(page, barcode);
        await Expect(row).ToHaveAttributeAsync("data-status", "checked-out");
        await Expect(row.GetByTestId("copy-status")).ToHaveTextAsync("checked-out");
        await Expect(row.GetByTestId("copy-due")).ToHaveTextAsync(due!);
        await Expect(row.GetByTestId("copy-borrower")).ToHaveTextAsync($"Dora {last}");
        await WholeLibrary.ScreenshotAsync(page, scenario, "2-copy-out");

        // Check in by barcode and Enter: back to the shelf.
        await page.EvaluateAsync("() => { location.hash = '#/admin/desk'; }");
        await ById(page, "checkin-barcode").PressSequentiallyAsync(barcode);
        await ById(page, "checkin-barcode").PressAsync("Enter");
        var back = ById(page, "checkin-done");
        await Expect(back).ToHaveAttributeAsync("data-routed-to", "shelf");
        await Expect(ById(page, "checkin-routed")).ToHaveTextAsync("Goes to: shelf.");
        await Expect(ById(page, "checkin-barcode")).ToBeFocusedAsync();
        await WholeLibrary.ScreenshotAsync(page, scenario, "3-checked-in");

        // The same copy again: it is not checked out, and the page says so; the field keeps the barcode, selected, for a retry.
        await ById(page, "checkin-barcode").PressSequentiallyAsync(barcode);
        await ById(page, "checkin-barcode").PressAsync("Enter");
        var refusal = ById(page, "checkin-form").GetByTestId("form-error");
        await Expect(refusal).ToBeVisibleAsync();
        await Expect(refusal.GetByTestId("error-title")).ToHaveTextAsync("Not checked out");
        await Expect(refusal.GetByTestId("error-detail")).ToContainTextAsync("available");
        await Expect(ById(page, "checkin-done")).ToHaveCountAsync(0);
        await Expect(ById(page, "checkin-barcode")).ToBeFocusedAsync();
        await Expect(ById(page, "checkin-barcode")).ToHaveValueAsync(barcode);
        await WholeLibrary.ScreenshotAsync(page, scenario, "4-not-checked-out");

        // A barcode nobody has: the check-out's refusal.
        await ById(page, "checkout-barcode").PressSequentiallyAsync("NO-SUCH-COPY-1");
        await ById(page, "checkout-barcode").PressAsync("Enter");
        await Expect(ById(page, "checkout-form").GetByTestId("form-error")).ToBeVisibleAsync();

        // The copies list: on the shelf again.
        await page.EvaluateAsync($"() => {{ location.hash = '#/book/{bookId}'; }}");
        await Expect(row).ToHaveAttributeAsync("data-status", "available");
        await Expect(row.GetByTestId("copy-due")).ToHaveTextAsync("—");
        await Expect(row.GetByTestId("copy-borrower")).ToHaveTextAsync("—");
        Assert.Empty(problems);
    }

    [Fact]
    public async Task A_copy_checked_in_while_another_reader_waits_goes_to_the_hold_shelf_for_that_reader()
    {
        const string scenario = "h-desk-hold-shelf";
        var bookId = await stack.CreateBookAsync("The Tidewater Almanac", copies: 1);
        var barcode = (await CopyBarcodesAsync(bookId, 1)).Single();
        var borrower = $"Out{Unique()}";
        var waiter = $"Wait{Unique()}";
        await RegisterReaderAsync($"{borrower.ToLowerInvariant()}@library.test", "Otto", borrower);
        await RegisterReaderAsync($"{waiter.ToLowerInvariant()}@library.test", "Wanda", waiter);

        var (context, page, problems) = await stack.NewPageAsync();
        await using var _ = context;
        await LoginAsync(page, WholeLibrary.AdminEmail, WholeLibrary.AdminPassword);
        await Expect(ById(page, "whoami")).ToContainTextAsync("(admin)");
        await page.EvaluateAsync("() => { location.hash = '#/admin/desk'; }");
        await ById(page, "desk-reader-search").FillAsync(borrower);
        await ById(page, "desk-reader-find").ClickAsync();
        await ById(page, "desk-reader-choose").ClickAsync();
        await ById(page, "checkout-barcode").PressSequentiallyAsync(barcode);
        await ById(page, "checkout-barcode").PressAsync("Enter");
        await Expect(ById(page, "checkout-done")).ToBeVisibleAsync();

        // The other reader places a hold (through the API, with their own token).
        using (var client = new HttpClient { BaseAddress = new Uri(stack.BaseUrl) })
        {
            using var login = await client.PostAsJsonAsync("/api/auth/login", new { email = $"{waiter.ToLowerInvariant()}@library.test", password = "Reader-password-1" });
            login.EnsureSuccessStatusCode();
            var token = (await login.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("accessToken").GetString();
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/holds") { Content = JsonContent.Create(new { bookId }) };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
            using var hold = await client.SendAsync(request);
            hold.EnsureSuccessStatusCode();
        }

        await ById(page, "checkin-barcode").PressSequentiallyAsync(barcode);
        await ById(page, "checkin-barcode").PressAsync("Enter");
        await Expect(ById(page, "checkin-done")).ToHaveAttributeAsync("data-routed-to", "hold-shelf");
        await Expect(ById(page, "checkin-routed")).ToContainTextAsync($"Goes to: hold shelf, for Wanda {waiter}");
        await WholeLibrary.ScreenshotAsync(page, scenario, "1-hold-shelf");

        await page.EvaluateAsync($"() => {{ location.hash = '#/book/{bookId}'; }}");
        await Expect(CopyRow(page, barcode)).ToHaveAttributeAsync("data-status", "awaiting-pickup");
        Assert.Empty(problems);
    }

    [Fact]
    public async Task A_librarian_adds_a_copy_and_an_admin_sees_rule_errors_per_field_and_saves_the_calendar()
    {
        const string scenario = "g-copies-rules-calendar";
        var title = "A Gazetteer of Small Harbours";
        var bookId = await stack.CreateBookAsync(title, copies: 1);
        var existing = (await CopyBarcodesAsync(bookId, 1)).Single();
        var (context, page, problems) = await stack.NewPageAsync();
        await using var _ = context;
        await LoginAsync(page, WholeLibrary.AdminEmail, WholeLibrary.AdminPassword);
        await Expect(ById(page, "whoami")).ToContainTextAsync("(admin)");

        // Add a copy on the book page; a taken barcode is refused.
        await page.EvaluateAsync($"() => {{ location.hash = '#/book/{bookId}'; }}");
        await Expect(CopyRow(page, existing)).ToHaveAttributeAsync("data-status", "available");
        var barcode = $"T-{Unique()}";
        await ById(page, "copy-barcode-input").FillAsync(barcode);
        await ById(page, "copy-call-number").FillAsync("914.8 GAZ");
        await ById(page, "copy-location").FillAsync("Reading room");
        await ById(page, "copy-add-submit").ClickAsync();
        await Expect(ById(page, "message")).ToHaveTextAsync($"Added copy {barcode} of “{title}”.");
        await Expect(CopyRow(page, barcode)).ToContainTextAsync("914.8 GAZ");
        await ById(page, "copy-barcode-input").FillAsync(existing.ToLowerInvariant());
        await ById(page, "copy-add-submit").ClickAsync();
        await Expect(ById(page, "copy-add-form").GetByTestId("error-title")).ToHaveTextAsync("Barcode taken");
        await WholeLibrary.ScreenshotAsync(page, scenario, "1-copies");

        // The rules: a bad number is shown beside its field, nothing saved.
        await ById(page, "nav-admin").ClickAsync();
        await ById(page, "admin-tab-rules").ClickAsync();
        await ById(page, "rule-0-loanDays").FillAsync("0");
        await ById(page, "rules-submit").ClickAsync();
        await Expect(ById(page, "field-error-rules[0].loanDays")).ToBeVisibleAsync();
        await Expect(ById(page, "rule-0-loanDays")).ToHaveAttributeAsync("aria-invalid", "true");
        await WholeLibrary.ScreenshotAsync(page, scenario, "2-rule-errors");

        // The calendar: a closed date far ahead is saved and shown again.
        await ById(page, "admin-tab-calendar").ClickAsync();
        await Expect(ById(page, "calendar-time-zone")).Not.ToHaveValueAsync("");
        await ById(page, "calendar-add-date").ClickAsync();
        var rows = await ById(page, "calendar-date-row").CountAsync();
        await ById(page, $"calendar-date-{rows - 1}").FillAsync("2099-12-24");
        await ById(page, $"calendar-reason-{rows - 1}").FillAsync("Far-off holiday");
        await ById(page, "calendar-submit").ClickAsync();
        await Expect(ById(page, "message")).ToHaveTextAsync("Saved the calendar.");
        await page.EvaluateAsync("() => { location.hash = '#/admin/calendar?again=1'; }");
        await Expect(ById(page, "calendar-date-row").Filter(new() { Has = page.Locator("input[value='Far-off holiday']") })).ToHaveCountAsync(1);
        await WholeLibrary.ScreenshotAsync(page, scenario, "3-calendar");
        Assert.Empty(problems);
    }
}
