using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Library.TestSupport;

namespace Library.BookService.Tests;

/// <summary>
/// books.category_ids (migration SearchAtScale4) repeats a title's book_categories on its row for the
/// category filter and the facets. CatalogQuery tests a category through that column when the
/// statement reads the rows anyway (with a search, in the facets) and through book_categories
/// otherwise: after each kind of write of a title's categories both forms and the facets must give
/// the same books, and the column must equal the link table.
/// </summary>
public sealed class CategoryColumnTests(CatalogFixture fixture) : IClassFixture<CatalogFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Category_filters_and_facets_follow_a_titles_categories_through_create_update_and_import()
    {
        var tag = Guid.NewGuid().ToString("N")[..8];
        var red = await fixture.CategoryAsync($"Red {tag}");
        var blue = await fixture.CategoryAsync($"Blue {tag}");
        var isbn = TestIsbn.Next();
        var title = $"Zebra {tag}";
        var id = (await fixture.BookAsync(title, isbn, [], [red])).GetProperty("id").GetGuid();
        await AssertFiledUnderAsync(id, title, filed: [red], notFiled: [blue]);

        using (var first = await fixture.Client().GetAsync($"/api/books/{id}", Ct))
        using (var update = new HttpRequestMessage(HttpMethod.Put, $"/api/books/{id}")
        {
            Content = JsonContent.Create(new { isbn, title, publisher = "Ace", language = "en", categoryIds = new[] { blue } }),
        })
        {
            update.Headers.IfMatch.ParseAdd(first.Headers.ETag!.Tag);
            using var ok = await fixture.Librarian().SendAsync(update, Ct);
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
        await AssertFiledUnderAsync(id, title, filed: [blue], notFiled: [red]);

        var csv = $"isbn,title,subtitle,authors,categories,publisher,publishedYear,language,copies\n{isbn},{title},,,Red {tag};Blue {tag},Ace,1969,en,\n";
        using (var import = await fixture.Librarian().PostAsync("/api/books/import", new StringContent(csv, Encoding.UTF8, "text/csv"), Ct))
        {
            Assert.Equal(HttpStatusCode.OK, import.StatusCode);
        }
        await AssertFiledUnderAsync(id, title, filed: [red, blue], notFiled: []);

        Assert.Equal(0, await fixture.Database.ScalarAsync<long>("""
            SELECT count(*) FROM books b
            WHERE b.category_ids <> ARRAY(SELECT bc.categories_id FROM book_categories bc WHERE bc.books_id = b.id ORDER BY bc.categories_id)
            """));
    }

    private async Task AssertFiledUnderAsync(Guid id, string title, Guid[] filed, Guid[] notFiled)
    {
        using var client = fixture.Client();
        var search = Uri.EscapeDataString(title);
        var facets = await client.GetFromJsonAsync<JsonElement>($"/api/books/facets?search={search}", Ct);
        var counted = facets.GetProperty("categories").EnumerateArray()
            .ToDictionary(c => c.GetProperty("id").GetGuid(), c => c.GetProperty("count").GetInt64());
        foreach (var (category, expected) in filed.Select(c => (c, true)).Concat(notFiled.Select(c => (c, false))))
        {
            // Alone (book_categories), and with a search and a language (the row's column).
            foreach (var query in new[] { $"categoryId={category}", $"categoryId={category}&search={search}&language=en" })
            {
                var page = await client.GetFromJsonAsync<JsonElement>($"/api/books?{query}&pageSize=100", Ct);
                var ids = page.GetProperty("items").EnumerateArray().Select(b => b.GetProperty("id").GetGuid()).ToList();
                Assert.True(expected == ids.Contains(id), $"{query}: {(expected ? "missing" : "listed")}");
                Assert.Equal(expected ? 1 : 0, page.GetProperty("totalCount").GetInt64());
            }
            var categoryFacets = await client.GetFromJsonAsync<JsonElement>($"/api/books/facets?categoryId={category}", Ct);
            Assert.Equal(expected ? 1 : 0, categoryFacets.GetProperty("languages").EnumerateArray().Sum(l => l.GetProperty("count").GetInt64()));
            Assert.Equal(expected ? 1 : 0, counted.GetValueOrDefault(category));
        }
    }
}
