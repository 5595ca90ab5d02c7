using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Library.BookService.Books;
using Library.TestSupport;

namespace Library.BookService.Tests;

/// <summary>The book service with the ranked search's titles, imported once for the class's tests in whatever order they run.</summary>
public sealed class RankedCatalogFixture : CatalogFixture
{
    /// <summary>
    /// About 440 titles whose word sits in the title, subtitle or an author's name, once or twice,
    /// stemmed ("marrowinds"), misspelt or next to filler, so ranks, similarities and scores
    /// spread and tie (same title: the ID decides). The misspelt forms are vocabulary words of
    /// their own, so the word is not a typo and does not find them (the typo rule: before it, a
    /// trigram term found them with rank 0); a typo of the word finds them all (the second test).
    /// Imported once (SeedOnceAsync): each test needs more than twice SimilarityRefined matches,
    /// whichever runs first.
    /// </summary>
    public Task SeedAsync() => SeedOnceAsync(async () =>
    {
        var random = new Random(20261201);
        string[] forms = ["Marrowind", "Marrowinds", "Marowind", "Marrowwind"];
        string[] filler = ["Glass", "River", "Lantern", "Harbour", "Quiet", "Salt", "Ember"];
        var csv = new StringBuilder("isbn,title,subtitle,authors,categories,publisher,publishedYear,language,copies\n");
        for (var i = 0; i < 440; i++)
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
        using var librarian = Librarian();
        using var response = await librarian.PostAsync("/api/books/import", new StringContent(csv.ToString(), Encoding.UTF8, "text/csv"), TestContext.Current.CancellationToken);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
    });
}

/// <summary>
/// A ranked search refines with <c>word_similarity</c> only its best matches by rank
/// (CatalogQuery.RankedPage, <see cref="CatalogQuery.SimilarityRefined"/> of them): with more
/// matches than that, every page must still be exactly the slice of the full order (those best
/// matches by rank + similarity, title, ID; then the rest by rank, title, ID) that PostgreSQL
/// gives when it orders every match in one statement, and carry the same count.
/// </summary>
public sealed class RankedSearchTests(RankedCatalogFixture fixture) : IClassFixture<RankedCatalogFixture>
{
    private const string Word = "marrowind";
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// The IDs in the full order, written from its definition in one statement: the best
    /// <see cref="CatalogQuery.SimilarityRefined"/> matches by rank (then title, ID) first, by rank
    /// + <c>word_similarity</c>, title, ID; then the others by rank, title, ID. With
    /// <paramref name="refined"/> false, every match by rank alone.
    /// </summary>
    private async Task<List<Guid>> FullOrderAsync(bool refined = true)
    {
        var ids = await fixture.Database.ScalarAsync<string>($"""
            WITH m AS (
                SELECT b.id, b.title, ts_rank_cd(b.search_vector, q) AS rank, word_similarity(u, b.search_text) AS similarity
                FROM books b, websearch_to_tsquery('library_english', '{Word}') q, lower(unaccent('{Word}')) u
                WHERE b.search_vector @@ q),
            head AS (SELECT m.id FROM m ORDER BY m.rank DESC, m.title, m.id LIMIT {(refined ? CatalogQuery.SimilarityRefined : 0)})
            SELECT string_agg(s.id::text, ',' ORDER BY s.refined DESC, s.score DESC, s.title, s.id) FROM (
                SELECT m.id, m.title, m.id IN (SELECT head.id FROM head) AS refined,
                       CASE WHEN m.id IN (SELECT head.id FROM head) THEN m.rank + m.similarity ELSE m.rank END AS score
                FROM m) s
            """);
        return ids!.Split(',').Select(Guid.Parse).ToList();
    }

    [Fact]
    public async Task Every_page_of_a_broad_ranked_search_is_the_slice_of_the_full_order()
    {
        await fixture.SeedAsync();
        var expected = await FullOrderAsync();
        Assert.True(expected.Count > 2 * CatalogQuery.SimilarityRefined, $"only {expected.Count} matches: pages would not cross the refined ones");
        // The similarity must change the head's order, or the test would not tell it from the rank's.
        var byRank = await FullOrderAsync(refined: false);
        Assert.NotEqual(byRank.Take(CatalogQuery.SimilarityRefined), expected.Take(CatalogQuery.SimilarityRefined));
        Assert.Equal(byRank.Take(CatalogQuery.SimilarityRefined).ToHashSet(), expected.Take(CatalogQuery.SimilarityRefined).ToHashSet());
        Assert.Equal(byRank.Skip(CatalogQuery.SimilarityRefined), expected.Skip(CatalogQuery.SimilarityRefined));
        // The scores must spread and tie for the test to mean something.
        Assert.True(await fixture.Database.ScalarAsync<long>($"""
            SELECT count(DISTINCT ts_rank_cd(b.search_vector, websearch_to_tsquery('library_english', '{Word}')) + word_similarity('{Word}', b.search_text))
            FROM books b WHERE b.search_vector @@ websearch_to_tsquery('library_english', '{Word}')
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

    /// <summary>
    /// With a typo, the exact matches come first (a tier before the score), those refined first:
    /// every page is still the slice of the full order, which pages of 100 give here.
    /// </summary>
    [Fact]
    public async Task Every_page_of_a_ranked_search_with_a_typo_is_the_slice_of_the_full_order_exact_matches_first()
    {
        await fixture.SeedAsync();
        // "marrowwimd": no title has it; its most similar word is "marrowwind" (0.57; "marrowind" 0.40),
        // which only the typo finds ("marrowimd" would stand for "marrowind" alone, already in the query).
        const string search = "marrowind or marrowwimd";
        using var client = fixture.Client();
        var expected = new List<Guid>();
        long total = 0;
        for (var page = 1; ; page++)
        {
            var result = await client.GetFromJsonAsync<JsonElement>($"/api/books?search={Uri.EscapeDataString(search)}&pageSize=100&page={page}", Ct);
            total = result.GetProperty("totalCount").GetInt64();
            var ids = result.GetProperty("items").EnumerateArray().Select(b => b.GetProperty("id").GetGuid()).ToList();
            expected.AddRange(ids);
            if (ids.Count < 100)
            {
                break;
            }
        }
        Assert.Equal(total, expected.Count);
        var exact = (await fixture.Database.ScalarAsync<string>(
            "SELECT string_agg(b.id::text, ',') FROM books b WHERE b.search_vector @@ websearch_to_tsquery('library_english', 'marrowind')"))!
            .Split(',').Select(Guid.Parse).ToHashSet();
        Assert.True(exact.Count > 100 && expected.Count > exact.Count, $"{exact.Count} exact of {expected.Count}: no typo tier to test");
        Assert.Equal(exact, expected.Take(exact.Count).ToHashSet());

        foreach (var pageSize in new[] { 1, 7, 20 })
        {
            var seen = new List<Guid>();
            for (var page = 1; page <= 40; page++)
            {
                var result = await client.GetFromJsonAsync<JsonElement>($"/api/books?search={Uri.EscapeDataString(search)}&pageSize={pageSize}&page={page}", Ct);
                Assert.Equal(total, result.GetProperty("totalCount").GetInt64());
                var ids = result.GetProperty("items").EnumerateArray().Select(b => b.GetProperty("id").GetGuid()).ToList();
                Assert.Equal(expected.Skip((page - 1) * pageSize).Take(pageSize), ids);
                seen.AddRange(ids);
                if (ids.Count == 0)
                {
                    break;
                }
            }
            Assert.Equal(expected.Take(Math.Min(expected.Count, 40 * pageSize)), seen);
        }
    }
}
