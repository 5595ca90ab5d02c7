using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Library.BookService.Books;
using Library.TestSupport;

namespace Library.BookService.Tests;

/// <summary>The catalog in and out as CSV: POST /api/books/import and GET /api/books/export.</summary>
public sealed class CatalogTransferTests(CatalogFixture fixture) : IClassFixture<CatalogFixture>
{
    private const string Header = "isbn,title,subtitle,authors,categories,publisher,publishedYear,language,copies";
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static StringContent Csv(string text, string mediaType = "text/csv") => new(text, Encoding.UTF8, mediaType);

    private async Task<HttpResponseMessage> ImportAsync(string text, string? token = null) =>
        await fixture.Client(token ?? fixture.LibrarianToken).PostAsync("/api/books/import", Csv(text), Ct);

    private async Task<JsonElement> ImportOkAsync(string text)
    {
        using var response = await ImportAsync(text);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(Ct)}");
        return await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
    }

    private static Dictionary<int, JsonElement> RejectedByLine(JsonElement result) =>
        result.GetProperty("rejected").EnumerateArray().ToDictionary(r => r.GetProperty("line").GetInt32(), r => r.GetProperty("errors"));

    private Task<long> CountAsync(string sql) => fixture.Database.ScalarAsync<long>(sql);

    private static string WrongCheckDigit(string isbn) => isbn[..12] + (char)('0' + (isbn[12] - '0' + 1) % 10);

    [Fact]
    public async Task A_file_of_good_and_bad_rows_creates_exactly_the_good_ones_and_says_why_for_each_bad_one()
    {
        var (good1, good2, dup, noCopies) = (TestIsbn.Next(), TestIsbn.Next(), TestIsbn.Next(), TestIsbn.Next());
        var tag = Guid.NewGuid().ToString("N")[..8];
        var lines = new[]
        {
            Header,
            $"{good1},Good One {tag},A subtitle,Ann Author {tag}; Bob Author {tag},Import {tag};import {tag},Ace,1999,EN,3",     // 2
            $"{WrongCheckDigit(TestIsbn.Next())},Bad Checksum,,,,Ace,2000,en,1",                                                   // 3
            $"{dup},Duplicate A,,,,Ace,2000,en,1",                                                                                   // 4
            $"{TestIsbn.Next()},{new string('x', 10_000)},,,,Ace,2000,en,1",                                                          // 5
            $"{dup},Duplicate B,,,,Ace,2000,en,1",                                                                                   // 6
            $"{TestIsbn.Next()},Bad Year,,,,Ace,19x9,en,1",                                                                          // 7
            $"{TestIsbn.Next()},Future Year,,,,Ace,3000,en,1",                                                                       // 8
            $"{TestIsbn.Next()},Negative Copies,,,,Ace,2000,en,-2",                                                                  // 9
            $"{noCopies},No Copies For A New Title,,Nobody {tag},Nowhere {tag},Ace,2000,en,",                                        // 10
            $"{TestIsbn.Next()},Stray \"quote,,,,Ace,2000,en,1",                                                                     // 11
            $"{TestIsbn.Next()},Too Few Fields,Ace",                                                                                 // 12
            $"{TestIsbn.Next()},,,,,Ace,2000,en,1",                                                                                  // 13: no title
            $"\"{good2}\",\"Good, Two {tag}\",,\"Ann Author {tag}\",,\"Quoted \"\"Press\"\"\",,,0",                                  // 14
        };

        var result = await ImportOkAsync(string.Join("\n", lines) + "\n");

        Assert.Equal(2, result.GetProperty("created").GetInt32());
        Assert.Equal(0, result.GetProperty("updated").GetInt32());
        var rejected = RejectedByLine(result);
        Assert.Equal([3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13], rejected.Keys.Order());
        Assert.True(rejected[3].TryGetProperty("isbn", out _));
        Assert.Contains("lines 4, 6", rejected[4].GetProperty("isbn")[0].GetString());
        Assert.Contains("lines 4, 6", rejected[6].GetProperty("isbn")[0].GetString());
        Assert.Contains("500", rejected[5].GetProperty("title")[0].GetString());
        Assert.True(rejected[7].TryGetProperty("publishedYear", out _));
        Assert.True(rejected[8].TryGetProperty("publishedYear", out _));
        Assert.True(rejected[9].TryGetProperty("copies", out _));
        Assert.True(rejected[10].TryGetProperty("copies", out _));
        Assert.True(rejected[11].TryGetProperty("row", out _));
        Assert.Contains("header names 9", rejected[12].GetProperty("row")[0].GetString());
        Assert.True(rejected[13].TryGetProperty("title", out _));

        // Exactly the two good titles exist, with their authors (created by name, once) and categories.
        Assert.Equal(2, await CountAsync($"SELECT count(*) FROM books WHERE title LIKE '%{tag}%'"));
        Assert.Equal(0, await CountAsync($"SELECT count(*) FROM books WHERE isbn IN ('{dup}', '{noCopies}') OR title IN ('Bad Year', 'Negative Copies')"));
        var one = await fixture.Client().GetFromJsonAsync<JsonElement>($"/api/books?search={good1}", Ct);
        var book = one.GetProperty("items")[0];
        Assert.Equal($"Good One {tag}", book.GetProperty("title").GetString());
        Assert.Equal("en", book.GetProperty("language").GetString());
        Assert.Equal(3, book.GetProperty("totalCopies").GetInt32());
        Assert.Equal([$"Ann Author {tag}", $"Bob Author {tag}"], book.GetProperty("authors").EnumerateArray().Select(a => a.GetProperty("name").GetString()));
        Assert.Equal([$"Import {tag}"], book.GetProperty("categories").EnumerateArray().Select(a => a.GetProperty("name").GetString()));
        Assert.Equal(1, await CountAsync($"SELECT count(*) FROM authors WHERE name = 'Ann Author {tag}'"));
        // A rejected row leaves nothing behind, not even its authors and categories.
        Assert.Equal(0, await CountAsync($"SELECT count(*) FROM authors WHERE name = 'Nobody {tag}'"));
        Assert.Equal(0, await CountAsync($"SELECT count(*) FROM categories WHERE name = 'Nowhere {tag}'"));
        Assert.Equal("Quoted \"Press\"", await fixture.Database.ScalarAsync<string>($"SELECT publisher FROM books WHERE isbn = '{good2}'"));

        // Each new title is announced with its copies, as POST /api/books does (the lending service makes them).
        Assert.Equal(3, await CountAsync($"SELECT (payload::jsonb ->> 'totalCopies')::bigint FROM outbox_messages WHERE event_name = 'book.created' AND payload::jsonb ->> 'isbn' = '{good1}'"));
        Assert.Equal(1, await CountAsync($"SELECT count(*) FROM outbox_messages WHERE event_name = 'book.created' AND payload::jsonb ->> 'isbn' = '{good2}'"));
    }

    [Fact]
    public async Task Re_importing_updates_by_ISBN_and_changes_the_stock_through_the_stock_event()
    {
        var isbn = TestIsbn.Next();
        var isbn10Title = TestIsbn.Next();
        var first = await ImportOkAsync($"{Header}\n{isbn},First Title,,Old Author,,Ace,2001,en,2\n{isbn10Title},Unchanged,,,,Ace,2001,en,1\n");
        Assert.Equal(2, first.GetProperty("created").GetInt32());
        var id = await fixture.Database.ScalarAsync<Guid>($"SELECT id FROM books WHERE isbn = '{isbn}'");

        // The title, the author and the copies change; the other row is the same as before.
        var again = await ImportOkAsync($"{Header}\n{isbn},Second Title,Sub,New Author,,Ace,2002,fr,5\n{isbn10Title},Unchanged,,,,Ace,2001,en,\n");
        Assert.Equal(0, again.GetProperty("created").GetInt32());
        Assert.Equal(2, again.GetProperty("updated").GetInt32());
        Assert.Empty(again.GetProperty("rejected").EnumerateArray());

        var book = await fixture.Client().GetFromJsonAsync<JsonElement>($"/api/books/{id}", Ct);
        Assert.Equal("Second Title", book.GetProperty("title").GetString());
        Assert.Equal("fr", book.GetProperty("language").GetString());
        Assert.Equal(5, book.GetProperty("totalCopies").GetInt32());
        Assert.Equal(5, book.GetProperty("availableCopies").GetInt32());
        Assert.Equal(["New Author"], book.GetProperty("authors").EnumerateArray().Select(a => a.GetProperty("name").GetString()));
        Assert.Equal(3, book.GetProperty("version").GetInt64()); // updated, then its stock changed
        Assert.Equal(1, await CountAsync($"SELECT count(*) FROM outbox_messages WHERE event_name = 'book.updated' AND payload::jsonb ->> 'bookId' = '{id}'"));
        Assert.Equal(5, await CountAsync($"SELECT (payload::jsonb ->> 'totalCopies')::bigint FROM outbox_messages WHERE event_name = 'book.stock-changed' AND payload::jsonb ->> 'bookId' = '{id}' AND (payload::jsonb ->> 'version')::bigint = 3"));
        // Nothing changed on the other row: no new version, no event.
        Assert.Equal(1, await CountAsync($"SELECT version FROM books WHERE isbn = '{isbn10Title}'"));
        Assert.Equal(0, await CountAsync($"SELECT count(*) FROM outbox_messages WHERE event_name IN ('book.updated', 'book.stock-changed') AND payload::jsonb ->> 'isbn' = '{isbn10Title}'"));
    }

    [Fact]
    public async Task The_export_streams_the_whole_catalog_as_CSV_that_re_imports_as_updates_only()
    {
        var tag = Guid.NewGuid().ToString("N")[..8];
        var rows = Enumerable.Range(0, 25).Select(i =>
            $"{TestIsbn.Next()},\"Export {tag} {i}, with a comma\",,\"Semi\\;colon {tag};Plain {tag}\",Shelf {tag},\"Line\nBreak Press\",{1990 + i},en,{i % 4}");
        Assert.Equal(25, (await ImportOkAsync($"{Header}\n{string.Join("\n", rows)}\n")).GetProperty("created").GetInt32());

        using var response = await fixture.Librarian().GetAsync("/api/books/export", HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/csv", response.Content.Headers.ContentType?.MediaType);
        Assert.EndsWith(".csv", response.Content.Headers.ContentDisposition?.FileNameStar ?? response.Content.Headers.ContentDisposition?.FileName?.Trim('"'));
        var exported = await response.Content.ReadAsStringAsync(Ct);
        Assert.StartsWith(Header + "\n", exported);
        Assert.Contains($"Plain {tag};Semi\\;colon {tag}", exported);

        var total = await CountAsync("SELECT count(*) FROM books");
        Assert.True(total >= 25);
        var reimported = await ImportOkAsync(exported);
        Assert.Equal(0, reimported.GetProperty("created").GetInt32());
        Assert.Equal(total, reimported.GetProperty("updated").GetInt32());
        Assert.Empty(reimported.GetProperty("rejected").EnumerateArray());
        // Nothing changed, so nothing was written: every name came back as it went out.
        Assert.Equal(0, await CountAsync($"SELECT count(*) FROM books WHERE title LIKE 'Export {tag}%' AND version <> 1"));
        Assert.Equal(1, await CountAsync($"SELECT count(*) FROM authors WHERE name = 'Semi;colon {tag}'"));
    }

    [Fact]
    public async Task A_row_the_database_refuses_is_rejected_alone_and_the_rest_of_its_batch_is_written()
    {
        // Stands in for a concurrent writer taking an ISBN between the check and the insert: the
        // database refuses one title of the batch with a unique violation. The service first (it
        // migrates the database at start; this test may be the class's first).
        using (var started = await fixture.Client().GetAsync("/api/books?pageSize=1", Ct))
        {
            started.EnsureSuccessStatusCode();
        }
        var tag = Guid.NewGuid().ToString("N")[..8];
        await fixture.Database.ScalarAsync<int>($"""
            CREATE FUNCTION refuse_{tag}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE unique_violation USING MESSAGE = 'taken meanwhile'; END $$;
            CREATE TRIGGER refuse_{tag} BEFORE INSERT ON books FOR EACH ROW WHEN (NEW.title = 'Poison {tag}') EXECUTE FUNCTION refuse_{tag}();
            SELECT 1;
            """);
        try
        {
            var rows = Enumerable.Range(0, 5).Select(i => $"{TestIsbn.Next()},{(i == 2 ? $"Poison {tag}" : $"Fine {tag} {i}")},,Batch Author {tag},,Ace,2000,en,1");
            var result = await ImportOkAsync($"{Header}\n{string.Join("\n", rows)}\n");
            Assert.Equal(4, result.GetProperty("created").GetInt32());
            var rejected = Assert.Single(result.GetProperty("rejected").EnumerateArray());
            Assert.Equal(4, rejected.GetProperty("line").GetInt32());
            Assert.True(rejected.GetProperty("errors").TryGetProperty("row", out _));
            Assert.Equal(4, await CountAsync($"SELECT count(*) FROM books WHERE title LIKE 'Fine {tag}%'"));
            Assert.Equal(4, await CountAsync($"SELECT count(*) FROM outbox_messages WHERE event_name = 'book.created' AND payload::jsonb ->> 'title' LIKE 'Fine {tag}%'"));
            Assert.Equal(0, await CountAsync($"SELECT count(*) FROM outbox_messages WHERE payload::jsonb ->> 'title' = 'Poison {tag}'"));
            Assert.Equal(1, await CountAsync($"SELECT count(*) FROM authors WHERE name = 'Batch Author {tag}'"));
        }
        finally
        {
            await fixture.Database.ScalarAsync<int>($"DROP TRIGGER refuse_{tag} ON books; SELECT 1;");
        }
    }

    [Fact]
    public async Task A_file_with_an_unknown_column_is_refused_whole_naming_it()
    {
        var isbn = TestIsbn.Next();
        using var response = await ImportAsync($"{Header},shelfmark\n{isbn},Unknown Column,,,,Ace,2000,en,1,A-12\n");
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("shelfmark", (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("detail").GetString());
        Assert.Equal(0, await CountAsync($"SELECT count(*) FROM books WHERE isbn = '{isbn}'"));
    }

    [Fact]
    public async Task Bad_files_are_4xx_problems_and_change_nothing()
    {
        // The client first: it starts the service, whose migrations create the tables counted here
        // (run first in its class, the count found no table).
        using var client = fixture.Librarian();
        var before = await CountAsync("SELECT count(*) FROM books");

        using var empty = await client.PostAsync("/api/books/import", Csv(""), Ct);
        Assert.Equal(HttpStatusCode.BadRequest, empty.StatusCode);
        using var json = await client.PostAsync("/api/books/import", Csv("""{"isbn":"x"}""", "application/json"), Ct);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, json.StatusCode);
        using var none = await client.PostAsync("/api/books/import", new ByteArrayContent([1, 2, 3]), Ct);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, none.StatusCode);

        var latin1 = new ByteArrayContent([.. Encoding.UTF8.GetBytes($"{Header}\n{TestIsbn.Next()},Caf"), 0xE9, .. Encoding.UTF8.GetBytes(",,,,Ace,2000,en,1\n")]);
        latin1.Headers.ContentType = new MediaTypeHeaderValue("text/csv");
        using var notUtf8 = await client.PostAsync("/api/books/import", latin1, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, notUtf8.StatusCode);

        using var binary = await client.PostAsync("/api/books/import", Csv("\u0001\u0002garbage\0,\u0003"), Ct);
        Assert.Equal(HttpStatusCode.BadRequest, binary.StatusCode);
        using var duplicateColumn = await client.PostAsync("/api/books/import", Csv("isbn,title,publisher,title\n"), Ct);
        Assert.Equal(HttpStatusCode.BadRequest, duplicateColumn.StatusCode);
        using var missingColumn = await client.PostAsync("/api/books/import", Csv("isbn,title\n"), Ct);
        Assert.Equal(HttpStatusCode.BadRequest, missingColumn.StatusCode);

        // Over Catalog:MaxImportBytes (1 MiB in these tests), declared or not.
        var big = $"{Header}\n" + string.Concat(Enumerable.Repeat($"{TestIsbn.Next()},Big,,,,Ace,2000,en,1\n", 1)) + new string('#', 1024 * 1024);
        using var tooLarge = await client.PostAsync("/api/books/import", Csv(big), Ct);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooLarge.StatusCode);
        Assert.Equal("application/problem+json", tooLarge.Content.Headers.ContentType?.MediaType);
        var chunked = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(big)));
        chunked.Headers.ContentType = new MediaTypeHeaderValue("text/csv");
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/books/import") { Content = chunked };
        request.Headers.TransferEncodingChunked = true;
        using var tooLargeChunked = await client.SendAsync(request, Ct);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooLargeChunked.StatusCode);

        Assert.Equal(before, await CountAsync("SELECT count(*) FROM books"));
    }

    [Fact]
    public async Task Only_librarians_import_and_export()
    {
        var row = $"{Header}\n{TestIsbn.Next()},Members May Not,,,,Ace,2000,en,1\n";
        using var member = await ImportAsync(row, fixture.MemberToken);
        Assert.Equal(HttpStatusCode.Forbidden, member.StatusCode);
        using var anonymous = await fixture.Client().PostAsync("/api/books/import", Csv(row), Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        using var memberExport = await fixture.Client(fixture.MemberToken).GetAsync("/api/books/export", Ct);
        Assert.Equal(HttpStatusCode.Forbidden, memberExport.StatusCode);
        using var anonymousExport = await fixture.Client().GetAsync("/api/books/export", Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymousExport.StatusCode);
        Assert.Equal(0, await CountAsync("SELECT count(*) FROM books WHERE title = 'Members May Not'"));
    }

    [Theory]
    [InlineData("", new string[0])]
    [InlineData("Ann", new[] { "Ann" })]
    [InlineData(" Ann ; Bob ;; ann ", new[] { "Ann", "Bob" })]
    [InlineData(@"Semi\;colon;Back\\slash", new[] { "Semi;colon", @"Back\slash" })]
    public void Names_split_at_unescaped_semicolons_and_join_back(string field, string[] names)
    {
        Assert.Equal(names, CatalogCsv.SplitNames(field));
        Assert.Equal(names, CatalogCsv.SplitNames(CatalogCsv.JoinNames(names)));
    }
}
