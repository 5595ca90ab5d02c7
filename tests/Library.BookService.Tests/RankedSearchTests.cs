using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Library.TestSupport;

namespace Library.BookService.Tests;

/// <summary>
/// A ranked search scores with <c>word_similarity</c> only the matches that can reach the page
/// (CatalogQuery.RankedPageWithTotal bounds them by rank + 1): with more matches than the bound's
/// candidates, every page must still be exactly the slice of the full order (score, title, ID)
/// that PostgreSQL gives when it scores every match, and carry the same count.
/// </summary>
public sealed class RankedSearchTests(CatalogFixture fixture) : IClassFixture<CatalogFixture>
{
    private const string Word = "marrowind";
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// About 260 titles whose word sits in the title, subtitle or an author's name, once or twice,
    /// stemmed ("marrowinds"), misspelt (found by the trigram term alone, rank 0) or next to
    /// filler, so ranks, similarities and scores spread and tie (same title: the ID decides).
    /// </summary>
    private async Task SeedAsync()
    {
        var random = new Random(20261201);
        string[] forms = ["Marrowind", "Marrowinds", "Marowind", "Marrowwind"];
        string[] filler = ["Glass", "River", "Lantern", "Harbour", "Quiet", "Salt", "Ember"];
        var csv = new StringBuilder("isbn,title,subtitle,authors,categories,publisher,publishedYear,language,copies\n");
        for (var i = 0; i < 260; i++)
        {
            string Form() => forms[random.Next(forms.Length)];
            string Filler() => filler[random.Next(filler.Length)];
            var (title, subtitle, author) = (i % 5) switch
            {
                0 => ($"{Form()} {Filler()}", "", "Ann Reed"),
                1 => ($"{Form()} of the {Form()}", Filler(), "Ann Reed"),
                2 => ($"The {Filler()} Tide", $"A {Form()} story", "Ann Reed"),
                3 => ($"{Filler()} Nights", "", $"Kit {Form()}"),
                _ => (i % 3 == 0 ? "Marrowind" : $"{Filler()} {Form()}", "", "Ann Reed"),
            };
            csv.Append($"{TestIsbn.Next()},{title},{subtitle},{author},,Ace,{1950 + i % 70},en,1\n");
        }
        using var response = await fixture.Librarian().PostAsync("/api/books/import", new StringContent(csv.ToString(), Encoding.UTF8, "text/csv"), Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync(Ct));
    }

    /// <summary>The IDs in the full order, every match scored, as the SQL before the bound wrote it.</summary>
    private async Task<List<Guid>> FullOrderAsync()
    {
        var ids = await fixture.Database.ScalarAsync<string>($"""
            SELECT string_agg(s.id::text, ',' ORDER BY s.score DESC, s.title, s.id) FROM (
                SELECT b.id, b.title, ts_rank_cd(b.search_vector, q) + word_similarity(u, b.search_text) AS score
                FROM books b, websearch_to_tsquery('library_english', '{Word}') q, lower(unaccent('{Word}')) u
                WHERE b.search_vector @@ q OR u <% b.search_text) s
            """);
        return ids!.Split(',').Select(Guid.Parse).ToList();
    }

    [Fact]
    public async Task Every_page_of_a_broad_ranked_search_is_the_slice_of_the_full_order()
    {
        await SeedAsync();
        var expected = await FullOrderAsync();
        Assert.True(expected.Count > 200, $"only {expected.Count} matches: the bound would not cut anything");
        // The scores must spread and tie for the test to mean something.
        Assert.True(await fixture.Database.ScalarAsync<long>($"""
            SELECT count(DISTINCT ts_rank_cd(b.search_vector, websearch_to_tsquery('library_english', '{Word}')) + word_similarity('{Word}', b.search_text))
            FROM books b WHERE b.search_vector @@ websearch_to_tsquery('library_english', '{Word}') OR '{Word}' <% b.search_text
            """) >= 5);

        using var client = fixture.Client();
        foreach (var pageSize in new[] { 1, 7, 20, 100 })
        {
            var seen = new List<Guid>();
            for (var page = 1; ; page++)
            {
                var result = await client.GetFromJsonAsync<JsonElement>($"/api/books?search={Word}&pageSize={pageSize}&page={page}", Ct);
                Assert.Equal(expected.Count, result.GetProperty("totalCount").GetInt64());
                var ids = result.GetProperty("items").EnumerateArray().Select(b => b.GetProperty("id").GetGuid()).ToList();
                Assert.Equal(expected.Skip((page - 1) * pageSize).Take(pageSize), ids);
                seen.AddRange(ids);
                if (ids.Count == 0 || (pageSize == 1 && page == 40))
                {
                    break;
                }
            }
            Assert.Equal(pageSize == 1 ? expected.Take(40) : expected, seen);
        }
    }
}
