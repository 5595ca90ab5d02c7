using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Library.TestSupport;

namespace Library.BookService.Tests;

/// <summary>
/// The typo rule (CatalogQuery.ResolveSql): a query word that no title, subtitle or author holds
/// stands for the vocabulary words most similar to it, so a typo finds the word it misspells;
/// the exact matches rank first; and the vocabulary is written with the title, in its transaction.
/// </summary>
public sealed class TypoSearchTests(CatalogFixture fixture) : IClassFixture<CatalogFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<List<string>> TitlesAsync(string search)
    {
        var page = await fixture.Client().GetFromJsonAsync<JsonElement>($"/api/books?search={Uri.EscapeDataString(search)}&pageSize=100", Ct);
        return page.GetProperty("items").EnumerateArray().Select(b => b.GetProperty("title").GetString()!).ToList();
    }

    [Fact]
    public async Task A_typo_finds_the_word_it_misspells_and_exact_matches_rank_first()
    {
        var author = await fixture.AuthorAsync("Wenna Tolliver");
        await fixture.BookAsync("The Hollowmere History of Tea", TestIsbn.Next(), [author], []);
        // The trigram term over whole titles that the rule replaced matched this one ("hollowmere
        // hystory" is closer to "…love story h…" than to "history") and missed the history above.
        await fixture.BookAsync("A Hollowmere Love Story Hidden", TestIsbn.Next(), [author], []);
        // "hystory" in a description only: not in the vocabulary (titles, subtitles, authors), but an
        // exact match of the query as written, so it ranks above every typo match, though a title
        // match weighs more in ts_rank_cd than a description match.
        await fixture.BookAsync("Hollowmere Letters", TestIsbn.Next(), [author], [], description: "A hystory of misspellings.");

        var titles = await TitlesAsync("hollowmere hystory");
        Assert.Equal("Hollowmere Letters", titles[0]);
        Assert.Contains("The Hollowmere History of Tea", titles);
        // Only the most similar vocabulary words stand in: "history" (0.45), not also "story" (0.40).
        Assert.DoesNotContain("A Hollowmere Love Story Hidden", titles);

        // A word that is in the vocabulary is not a typo: it finds what it always found.
        Assert.Equal(["The Hollowmere History of Tea"], await TitlesAsync("hollowmere history"));
    }

    [Fact]
    public async Task A_title_created_or_renamed_after_the_migration_is_found_by_a_typo_of_its_new_word()
    {
        var author = await fixture.AuthorAsync("Odile Fairweather");
        await fixture.BookAsync("Quillwortia Meadows", TestIsbn.Next(), [author], []);
        Assert.Equal(["Quillwortia Meadows"], await TitlesAsync("quilwortia"));

        var book = await fixture.BookAsync("Plain Ordinary Title", TestIsbn.Next(), [author], []);
        var id = book.GetProperty("id").GetGuid();
        Assert.Empty(await TitlesAsync("bramblehollt"));
        using var update = await fixture.Librarian().PutAsJsonAsync($"/api/books/{id}",
            new { isbn = book.GetProperty("isbn").GetString(), title = "Brambleholtz Evenings", publisher = "Ace", authorIds = new[] { author } }, Ct);
        Assert.Equal(HttpStatusCode.OK, update.StatusCode);
        Assert.Equal(["Brambleholtz Evenings"], await TitlesAsync("bramblehollt"));

        // An author's name is searchable text too: renamed, the books are found by a typo of the new name.
        using var renamed = await fixture.Librarian().PutAsJsonAsync($"/api/authors/{author}", new { name = "Odile Zwanenburgh" }, Ct);
        Assert.Equal(HttpStatusCode.OK, renamed.StatusCode);
        Assert.Equal(["Brambleholtz Evenings", "Quillwortia Meadows"], (await TitlesAsync("zwanenburg")).Order());
    }
}
