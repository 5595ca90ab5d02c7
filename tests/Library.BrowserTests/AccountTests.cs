using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Library.TestSupport;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Library.BrowserTests;

/// <summary>
/// Fines, blocks and notices on the page: the reader's account, a librarian taking a payment,
/// waiving, placing and lifting a block; the reports and the catalog's import and export.
/// </summary>
public sealed partial class PageTests
{
    private const long LostFee = 2500;

    private async Task<HttpClient> AdminClientAsync()
    {
        var client = new HttpClient { BaseAddress = new Uri(stack.BaseUrl) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", await stack.AdminTokenAsync());
        return client;
    }

    /// <summary>The rules as they are, with every rule charging <see cref="LostFee"/> for a lost copy (nothing else changes).</summary>
    private static async Task ChargeForLostCopiesAsync(HttpClient admin)
    {
        var rules = (await admin.GetFromJsonAsync<JsonNode>("/api/circulation-rules"))!;
        var list = rules is JsonArray a ? a : rules["rules"]!.AsArray();
        foreach (var rule in list)
        {
            rule!["lostFee"] = LostFee;
        }
        using var put = await admin.PutAsJsonAsync("/api/circulation-rules", rules);
        Assert.True(put.IsSuccessStatusCode, await put.Content.ReadAsStringAsync());
    }

    /// <summary>A reader with a lost copy: checked out at the desk, then declared lost, which charges the lost fee.</summary>
    private async Task<(Guid ReaderId, string Title)> ReaderWithALostCopyAsync(string email, string last)
    {
        using var admin = await AdminClientAsync();
        await ChargeForLostCopiesAsync(admin);
        var title = $"The Cartographer's Daughter {Unique()}";
        var bookId = await stack.CreateBookAsync(title, copies: 1);
        var barcode = (await CopyBarcodesAsync(bookId, 1)).Single();
        await RegisterReaderAsync(email, "Lena", last);
        var users = await admin.GetFromJsonAsync<JsonElement>($"/api/users?search={Uri.EscapeDataString(email)}");
        var readerId = users.GetProperty("items")[0].GetProperty("id").GetGuid();

        using var checkout = await admin.PostAsJsonAsync("/api/circulation/check-out", new { barcode, userId = readerId });
        Assert.True(checkout.IsSuccessStatusCode, await checkout.Content.ReadAsStringAsync());
        var copy = await admin.GetFromJsonAsync<JsonElement>($"/api/copies/by-barcode/{barcode}");
        using var lost = await admin.PatchAsJsonAsync($"/api/copies/{copy.GetProperty("id").GetGuid()}", new { status = "lost" });
        Assert.True(lost.IsSuccessStatusCode, await lost.Content.ReadAsStringAsync());
        return (readerId, title);
    }

    [Fact]
    public async Task A_reader_sees_their_fine_block_and_notice_and_a_librarian_takes_a_payment_waives_and_places_and_lifts_a_block()
    {
        const string scenario = "g-account";
        var last = $"Fines{Unique()}";
        var email = $"{last.ToLowerInvariant()}@library.test";
        var (readerId, title) = await ReaderWithALostCopyAsync(email, last);

        // The reader: the fine, the fines block and the notice of the fine.
        var (context, page, problems) = await stack.NewPageAsync();
        await using (context)
        {
            await LoginAsync(page, email, "Reader-password-1");
            await Expect(ById(page, "whoami")).ToContainTextAsync("(member)");
            await ById(page, "nav-account").ClickAsync();
            await Expect(ById(page, "view-title")).ToHaveTextAsync("My account");
            await Expect(ById(page, "account-balance")).ToHaveAttributeAsync("data-balance", LostFee.ToString(System.Globalization.CultureInfo.InvariantCulture));
            var fine = ById(page, "fine-row");
            await Expect(fine).ToHaveCountAsync(1);
            await Expect(fine).ToHaveAttributeAsync("data-kind", "lost");
            await Expect(fine).ToContainTextAsync(title);
            await Expect(ById(page, "fine-pay")).ToHaveCountAsync(0);   // readers do not take payments
            await Expect(ById(page, "block-row").And(page.Locator("[data-source='fines']"))).ToHaveCountAsync(1);
            // The fine's notice arrives through the events: reload until it is there.
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (await ById(page, "notice-row").And(page.Locator("[data-kind='fine-charged']")).CountAsync() == 0)
            {
                Assert.True(DateTime.UtcNow < deadline, "No fine-charged notice in the reader's feed within 30 s.");
                await Task.Delay(500);
                await page.ReloadAsync();
                await LoginAsync(page, email, "Reader-password-1");
                await Expect(ById(page, "whoami")).ToContainTextAsync("(member)");
                await ById(page, "nav-account").ClickAsync();
                await Expect(ById(page, "view-title")).ToHaveTextAsync("My account");
            }
            await Expect(ById(page, "notice-row").And(page.Locator("[data-kind='fine-charged']"))).ToHaveCountAsync(1);
            await WholeLibrary.ScreenshotAsync(page, scenario, "1-reader-account");
            Assert.Empty(problems);
        }

        // The librarian: part payment, waiver of the rest, then a manual block placed and lifted.
        (context, page, problems) = await stack.NewPageAsync();
        await using (context)
        {
            await LoginAsync(page, WholeLibrary.AdminEmail, WholeLibrary.AdminPassword);
            await Expect(ById(page, "whoami")).ToContainTextAsync("(admin)");
            await page.GotoAsync($"{stack.BaseUrl}/#/admin/readers?search={Uri.EscapeDataString(email)}");
            await ById(page, "reader-account").ClickAsync();
            await Expect(ById(page, "view-title")).ToHaveTextAsync("Reader account");
            await Expect(ById(page, "account-balance")).ToHaveAttributeAsync("data-balance", "2500");

            await ById(page, "fine-pay-amount").FillAsync("10.00");
            await ById(page, "fine-pay").ClickAsync();
            await Expect(ById(page, "account-balance")).ToHaveAttributeAsync("data-balance", "1500");
            await Expect(ById(page, "fine-row")).ToHaveAttributeAsync("data-status", "open");

            // Over the balance: refused beside the field, nothing changes.
            await ById(page, "fine-pay-amount").FillAsync("99.00");
            await ById(page, "fine-pay").ClickAsync();
            await Expect(ById(page, "fine-pay-form").GetByTestId("form-error")).ToBeVisibleAsync();
            await Expect(ById(page, "account-balance")).ToHaveAttributeAsync("data-balance", "1500");

            await ById(page, "fine-waive-reason").FillAsync("Copy found in the returns box");
            await ById(page, "fine-waive").ClickAsync();
            await Expect(ById(page, "fine-row")).ToHaveAttributeAsync("data-status", "waived");
            await Expect(ById(page, "account-balance")).ToHaveAttributeAsync("data-balance", "0");
            await Expect(ById(page, "block-row").And(page.Locator("[data-source='fines']"))).ToHaveCountAsync(0);

            await ById(page, "block-reason").FillAsync("Damaged two books");
            await ById(page, "block-submit").ClickAsync();
            var manual = ById(page, "block-row").And(page.Locator("[data-source='manual']"));
            await Expect(manual).ToHaveCountAsync(1);
            await Expect(manual).ToContainTextAsync("Damaged two books");
            await WholeLibrary.ScreenshotAsync(page, scenario, "2-librarian-account");
            await ById(page, "block-lift").ClickAsync();
            await Expect(manual).ToHaveCountAsync(0);
            await Expect(ById(page, "blocks-none")).ToBeVisibleAsync();
            Assert.Empty(problems);
        }

        using var admin = await AdminClientAsync();
        var fines = await admin.GetFromJsonAsync<JsonElement>($"/api/fines?userId={readerId}");
        var only = fines.GetProperty("items").EnumerateArray().Single();
        Assert.Equal("waived", only.GetProperty("status").GetString());
        Assert.Equal(1000, only.GetProperty("paidAmount").GetInt64());
    }

    [Fact]
    public async Task A_librarian_reads_and_downloads_the_reports_imports_a_catalog_file_and_downloads_the_export()
    {
        const string scenario = "h-reports";
        var (context, page, problems) = await stack.NewPageAsync();
        await using var _ = context;
        // Something to report today.
        var title = $"The Orchard Keeper's Almanac {Unique()}";
        var bookId = await stack.CreateBookAsync(title, copies: 1);
        var barcode = (await CopyBarcodesAsync(bookId, 1)).Single();
        var last = $"Reports{Unique()}";
        await RegisterReaderAsync($"{last.ToLowerInvariant()}@library.test", "Rhea", last);
        using (var admin = await AdminClientAsync())
        {
            var users = await admin.GetFromJsonAsync<JsonElement>($"/api/users?search={last}");
            using var checkout = await admin.PostAsJsonAsync("/api/circulation/check-out", new { barcode, userId = users.GetProperty("items")[0].GetProperty("id").GetGuid() });
            Assert.True(checkout.IsSuccessStatusCode, await checkout.Content.ReadAsStringAsync());
        }

        await LoginAsync(page, WholeLibrary.AdminEmail, WholeLibrary.AdminPassword);
        await Expect(ById(page, "whoami")).ToContainTextAsync("(admin)");
        await page.GotoAsync($"{stack.BaseUrl}/#/admin/reports");
        await Expect(ById(page, "view-title")).ToHaveTextAsync("Reports");
        var today = DateTime.UtcNow.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        await Expect(ById(page, "report-day").And(page.Locator($"[data-date='{today}']"))).ToHaveCountAsync(1);
        await Expect(ById(page, "report-popular-row").And(page.Locator($"[data-book-id='{bookId}']"))).ToHaveCountAsync(1);

        var download = await page.RunAndWaitForDownloadAsync(() => ById(page, "report-circulation-csv").ClickAsync());
        var csv = await File.ReadAllTextAsync((await download.PathAsync())!);
        Assert.Contains(today, csv);
        Assert.StartsWith("date", csv.TrimStart('\uFEFF'), StringComparison.OrdinalIgnoreCase);

        // Import: two good rows and a bad one (wrong ISBN checksum).
        var isbnA = TestIsbn.Next();
        var isbnB = TestIsbn.Next();
        var file = Path.Combine(Path.GetTempPath(), $"import-{Unique()}.csv");
        await File.WriteAllTextAsync(file,
            "isbn,title,subtitle,authors,categories,publisher,publishedYear,language,copies\n"
            + $"{isbnA},Imported Tides,,Ada Marsh,Sea,Harbour Lane Press,2020,en,2\n"
            + $"{isbnB},Imported Winds,,Ada Marsh;Ben Reed,Sea,Harbour Lane Press,2019,en,1\n"
            + "9780000000001,Bad Checksum,,,,,2018,en,1\n");
        await ById(page, "import-file").SetInputFilesAsync(file);
        await ById(page, "import-submit").ClickAsync();
        var done = ById(page, "import-done");
        await Expect(done).ToHaveAttributeAsync("data-created", "2");
        await Expect(done).ToHaveAttributeAsync("data-rejected", "1");
        await Expect(ById(page, "import-rejected")).ToContainTextAsync("Line 4");
        await WholeLibrary.ScreenshotAsync(page, scenario, "1-reports-and-import");

        var export = await page.RunAndWaitForDownloadAsync(() => ById(page, "export-download").ClickAsync());
        var catalog = await File.ReadAllTextAsync((await export.PathAsync())!);
        Assert.Contains(isbnA, catalog);
        Assert.Contains("Imported Winds", catalog);
        Assert.Empty(problems);
    }
}
