using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Library.TestSupport;

namespace Library.BookService.Tests;

/// <summary>
/// The facets of the whole catalog and of one category come from counts kept by a trigger on books
/// (catalog_facet_counts, migration SearchAtScale6; BooksApi.FacetCountsScope): after every kind of
/// write of a title (create, update of its publisher, language and categories, import, delete)
/// they must equal the facets computed from the titles' rows.
/// </summary>
public sealed class FacetCountsTests(CatalogFixture fixture) : IClassFixture<CatalogFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The kept counts against the same counts computed from books (both directions, counts of 0 not kept).</summary>
    private const string Drift = """
        WITH r AS (SELECT b.category_ids, b.publisher, b.language FROM books b),
        live AS (
            SELECT s.scope, 'c'::"char" AS kind, c.id::text AS value, count(*) AS count
            FROM r, unnest(r.category_ids || '00000000-0000-0000-0000-000000000000'::uuid) AS s(scope), unnest(r.category_ids) AS c(id)
            GROUP BY 1, 2, 3
            UNION ALL
            SELECT s.scope, 'p'::"char", r.publisher, count(*) FROM r, unnest(r.category_ids || '00000000-0000-0000-0000-000000000000'::uuid) AS s(scope) GROUP BY 1, 2, 3
            UNION ALL
            SELECT s.scope, 'l'::"char", r.language, count(*) FROM r, unnest(r.category_ids || '00000000-0000-0000-0000-000000000000'::uuid) AS s(scope)
            WHERE r.language IS NOT NULL GROUP BY 1, 2, 3),
        kept AS (SELECT f.scope, f.kind, f.value, f.count FROM catalog_facet_counts f WHERE f.count <> 0)
        SELECT (SELECT count(*) FROM (SELECT * FROM live EXCEPT SELECT * FROM kept) x)
             + (SELECT count(*) FROM (SELECT * FROM kept EXCEPT SELECT * FROM live) y)
        """;

    [Fact]
    public async Task Kept_facets_equal_the_facets_of_the_titles_rows_through_create_update_import_and_delete()
    {
        var tag = Guid.NewGuid().ToString("N")[..8];
        var red = await fixture.CategoryAsync($"Crimson {tag}");
        var blue = await fixture.CategoryAsync($"Azure {tag}");
        var author = await fixture.AuthorAsync($"Facet Writer {tag}");
        var isbn = TestIsbn.Next();
        var title = $"Facet Ledger {tag}";
        var book = await fixture.BookAsync(title, isbn, [author], [red], publisher: $"Quill {tag}", language: "fr");
        var id = book.GetProperty("id").GetGuid();
        await fixture.BookAsync($"Facet Almanac {tag}", TestIsbn.Next(), [author], [red, blue], publisher: $"QUILL {tag}", language: "en");
        await AssertKeptAsync(red, $"Crimson {tag}", blue);
        var facets = await FacetsAsync($"categoryId={red}");
        // Publishers grouped by lower case, shown by the smallest spelling, as the rows' query does.
        Assert.Equal([($"QUILL {tag}", 2L)], facets.GetProperty("publishers").EnumerateArray()
            .Select(p => (p.GetProperty("name").GetString(), p.GetProperty("count").GetInt64())).ToList());

        using (var update = await fixture.Librarian().PutAsJsonAsync($"/api/books/{id}",
            new { isbn, title, publisher = $"Other {tag}", language = "de", authorIds = new[] { author }, categoryIds = new[] { blue } }, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, update.StatusCode);
        }
        await AssertKeptAsync(red, $"Crimson {tag}", blue);

        var csv = $"isbn,title,subtitle,authors,categories,publisher,publishedYear,language,copies\n"
            + $"{isbn},{title},,,Crimson {tag};Azure {tag},Ace,1969,es,\n{TestIsbn.Next()},Facet Imported {tag},,,Azure {tag},Ace,1970,en,\n";
        using (var import = await fixture.Librarian().PostAsync("/api/books/import", new StringContent(csv, Encoding.UTF8, "text/csv"), Ct))
        {
            Assert.Equal(HttpStatusCode.OK, import.StatusCode);
        }
        await AssertKeptAsync(red, $"Crimson {tag}", blue);

        using (var delete = await fixture.Librarian().DeleteAsync($"/api/books/{id}", Ct))
        {
            Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        }
        await AssertKeptAsync(red, $"Crimson {tag}", blue);
        Assert.Equal(1, (await FacetsAsync($"categoryId={red}")).GetProperty("languages").EnumerateArray().Sum(l => l.GetProperty("count").GetInt64()));
    }

    private async Task<JsonElement> FacetsAsync(string query) =>
        await fixture.Client().GetFromJsonAsync<JsonElement>($"/api/books/facets?{query}", Ct);

    private async Task AssertKeptAsync(Guid red, string redName, Guid blue)
    {
        Assert.Equal(0, await fixture.Database.ScalarAsync<long>(Drift));
        foreach (var category in new[] { red, blue })
        {
            // categoryId and category together take the query over the rows (two category filters):
            // the same answer, computed from the titles.
            var name = category == red ? redName : redName.Replace("Crimson", "Azure", StringComparison.Ordinal);
            var kept = (await FacetsAsync($"categoryId={category}")).GetRawText();
            Assert.Equal(kept, (await FacetsAsync($"categoryId={category}&category={Uri.EscapeDataString(name)}")).GetRawText());
            Assert.Equal(kept, (await FacetsAsync($"category={Uri.EscapeDataString(name.ToUpperInvariant())}")).GetRawText());
        }
        // The whole catalog: every language's count adds up to the list's total.
        var all = await FacetsAsync("");
        var total = (await fixture.Client().GetFromJsonAsync<JsonElement>("/api/books?pageSize=1", Ct)).GetProperty("totalCount").GetInt64();
        Assert.True(all.GetProperty("languages").EnumerateArray().Sum(l => l.GetProperty("count").GetInt64()) <= total);

        // The lists these counts count (CatalogQuery.KeptCount) count what they list.
        var tag = redName["Crimson ".Length..];
        foreach (var filter in new[]
        {
            "", $"categoryId={red}", $"category={Uri.EscapeDataString(redName.ToUpperInvariant())}", $"categoryId={blue}",
            "language=FR", "language=en", "language=de", $"publisher={Uri.EscapeDataString($"quill {tag}")}",
            $"categoryId={red}&publisher={Uri.EscapeDataString($"QUILL {tag}")}", $"categoryId={blue}&language=en",
            $"category={Uri.EscapeDataString(redName)}&language=fr", "category=no%20such%20shelf",
        })
        {
            await AssertCountsWhatItListsAsync(filter);
        }
    }

    /// <summary>A list's totalCount on every page, walked to its end, and past the end, is the number of titles it lists.</summary>
    private async Task AssertCountsWhatItListsAsync(string filter)
    {
        using var client = fixture.Client();
        long? total = null;
        var listed = 0;
        for (var page = 1; ; page++)
        {
            var list = await client.GetFromJsonAsync<JsonElement>($"/api/books?{filter}&sort=title&pageSize=100&page={page}", Ct);
            total ??= list.GetProperty("totalCount").GetInt64();
            Assert.Equal(total, list.GetProperty("totalCount").GetInt64());
            var items = list.GetProperty("items").GetArrayLength();
            listed += items;
            if (items < 100)
            {
                break;
            }
        }
        Assert.True(total == listed, $"{filter}: totalCount {total}, listed {listed}");
        var past = await client.GetFromJsonAsync<JsonElement>($"/api/books?{filter}&sort=popular&pageSize=100&page=1000", Ct);
        Assert.Equal(total, past.GetProperty("totalCount").GetInt64());
    }
}
