using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Library.BookService.Books;
using Library.BookService.Data;
using Library.TestSupport;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Library.BookService.Tests;

/// <summary>The book service with a small search bound (Catalog:SearchBound = 40), so a test reaches past it with a few dozen titles.</summary>
public sealed class BoundedCatalogFixture : CatalogFixture
{
    public const int Bound = 40;

    protected override void Configure(Dictionary<string, string?> settings) => settings["Catalog:SearchBound"] = Bound.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// 25 titles with the word in the title (the headline: title, subtitle, authors; 10 of them
    /// also "Lantern") and 50 with it only in the description, all from one publisher, in English.
    /// The description-only ones are created first, so the first matches in the table's order are
    /// not the headline ones: the candidate set has to look for them.
    /// </summary>
    public Task SeedAsync() => SeedOnceAsync(async () =>
    {
        using var librarian = Librarian();
        for (var i = 0; i < BoundedSearchTests.DescriptionOnly; i++)
        {
            using var created = await librarian.PostAsJsonAsync("/api/books", new
            {
                isbn = TestIsbn.Next(), title = $"Harbour Tide {i}", description = $"A story of {BoundedSearchTests.Word} and the sea.",
                publisher = BoundedSearchTests.Publisher, publishedYear = 1990, language = "en", authorIds = Array.Empty<Guid>(),
                categoryIds = Array.Empty<Guid>(), totalCopies = 1,
            }, TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }
        var csv = new StringBuilder("isbn,title,subtitle,authors,categories,publisher,publishedYear,language,copies\n");
        for (var i = 0; i < BoundedSearchTests.Headline; i++)
        {
            var title = i < BoundedSearchTests.WithLantern ? $"Quillmoor Lantern {i}" : $"Quillmoor Glass {i}";
            csv.Append($"{TestIsbn.Next()},{title},,Ann Reed,,{BoundedSearchTests.Publisher},1991,en,1\n");
        }
        using var imported = await librarian.PostAsync("/api/books/import", new StringContent(csv.ToString(), Encoding.UTF8, "text/csv"), TestContext.Current.CancellationToken);
        Assert.True(imported.StatusCode == HttpStatusCode.OK, await imported.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        // Last in the table: titles whose description alone holds a word no title or author has
        // (a typo, then, of "tide", in 50 titles' headline): its exact matches.
        for (var i = 0; i < BoundedSearchTests.TypoExact; i++)
        {
            using var created = await librarian.PostAsJsonAsync("/api/books", new
            {
                isbn = TestIsbn.Next(), title = $"Salt Marsh {i}", description = $"Where the {BoundedSearchTests.TypoWord} turns.",
                publisher = "Salt Marsh Press", publishedYear = 1992, language = "en", authorIds = Array.Empty<Guid>(),
                categoryIds = Array.Empty<Guid>(), totalCopies = 1,
            }, TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }
        // Statistics now, so an autovacuum's ANALYZE does not change the estimate between two answers a test compares.
        await Database.ScalarAsync<string>("ANALYZE books");
    });
}

/// <summary>
/// Past Catalog:SearchBound matches, a search counts, ranks and facets a bounded set
/// (CatalogQuery.BoundedRankedPage, BoundedCount, Estimate; bench/README.md, search at scale,
/// eighth pass): the count is an estimate and says so, the headline matches rank first, pages
/// of any size are slices of one order (candidates, then the rest) that holds every match once,
/// and the facets say they are approximate. Up to the bound every answer is exact.
/// </summary>
public sealed class BoundedSearchTests(BoundedCatalogFixture fixture) : IClassFixture<BoundedCatalogFixture>
{
    public const string Word = "quillmoor";
    public const string Publisher = "Quillmoor Yard Press";
    public const int DescriptionOnly = 50, Headline = 25, WithLantern = 10, TypoExact = 5;
    public const string TypoWord = "tidez";
    private const int Matches = DescriptionOnly + Headline;
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<JsonElement> GetAsync(HttpClient client, string query) =>
        await client.GetFromJsonAsync<JsonElement>($"/api/books?{query}", Ct);

    private static List<Guid> Ids(JsonElement page) => page.GetProperty("items").EnumerateArray().Select(b => b.GetProperty("id").GetGuid()).ToList();

    private async Task<HashSet<Guid>> MatchesAsync(string where) =>
        (await fixture.Database.ScalarAsync<string>($"SELECT string_agg(b.id::text, ',') FROM books b WHERE {where}"))!
            .Split(',').Select(Guid.Parse).ToHashSet();

    [Fact]
    public async Task A_broad_search_estimates_its_count_and_says_so_and_a_narrow_one_counts_exactly()
    {
        await fixture.SeedAsync();
        using var client = fixture.Client();
        var broad = await GetAsync(client, $"search={Word}");
        Assert.False(broad.GetProperty("totalCountExact").GetBoolean());
        Assert.True(broad.GetProperty("totalCount").GetInt64() > BoundedCatalogFixture.Bound, broad.GetProperty("totalCount").ToString());
        Assert.Equal(20, Ids(broad).Count);

        // Past the end: no item, the same estimate.
        var past = await GetAsync(client, $"search={Word}&page=50");
        Assert.Empty(Ids(past));
        Assert.False(past.GetProperty("totalCountExact").GetBoolean());
        Assert.Equal(broad.GetProperty("totalCount").GetInt64(), past.GetProperty("totalCount").GetInt64());

        var narrow = await GetAsync(client, $"search={Word}%20lantern");
        Assert.True(narrow.GetProperty("totalCountExact").GetBoolean());
        Assert.Equal(WithLantern, narrow.GetProperty("totalCount").GetInt64());
        Assert.Equal(WithLantern, Ids(narrow).Count);

        // Filters without a search count their rows up to the bound too; a publisher alone is counted by the kept counts, exactly.
        var filtered = await GetAsync(client, $"publisher={Uri.EscapeDataString(Publisher)}&available=true");
        Assert.False(filtered.GetProperty("totalCountExact").GetBoolean());
        var kept = await GetAsync(client, $"publisher={Uri.EscapeDataString(Publisher)}");
        Assert.True(kept.GetProperty("totalCountExact").GetBoolean());
        Assert.Equal(Matches, kept.GetProperty("totalCount").GetInt64());
    }

    [Fact]
    public async Task Pages_of_a_broad_search_are_slices_of_one_order_with_the_headline_matches_first_and_every_match_once()
    {
        await fixture.SeedAsync();
        using var client = fixture.Client();
        var matches = await MatchesAsync($"b.search_vector @@ websearch_to_tsquery('library_english', '{Word}')");
        var headline = await MatchesAsync($"b.title ILIKE '{Word}%'");
        Assert.Equal(Matches, matches.Count);
        Assert.Equal(Headline, headline.Count);

        // A page that ends past the candidates (here, the first page of 100) is ranked over every match, candidates first.
        var whole = await GetAsync(client, $"search={Word}&pageSize=100");
        var order = Ids(whole);
        Assert.True(whole.GetProperty("totalCountExact").GetBoolean());
        Assert.Equal(Matches, whole.GetProperty("totalCount").GetInt64());
        Assert.Equal(matches, order.ToHashSet());
        Assert.Equal(Matches, order.Count);
        Assert.Equal(headline, order.Take(Headline).ToHashSet());

        // Pages within the candidates (bounded) and past them (every match) make up the same order.
        foreach (var pageSize in new[] { 7, 10, 41 })
        {
            var seen = new List<Guid>();
            for (var page = 1; page <= 20; page++)
            {
                var ids = Ids(await GetAsync(client, $"search={Word}&pageSize={pageSize}&page={page}"));
                Assert.Equal(order.Skip((page - 1) * pageSize).Take(pageSize), ids);
                seen.AddRange(ids);
                if (ids.Count == 0)
                {
                    break;
                }
            }
            Assert.Equal(order, seen);
        }
    }

    [Fact]
    public async Task The_facets_of_a_broad_search_are_scaled_to_the_estimate_and_say_they_are_approximate()
    {
        await fixture.SeedAsync();
        using var client = fixture.Client();
        var facets = await client.GetFromJsonAsync<JsonElement>($"/api/books/facets?search={Word}", Ct);
        var total = (await GetAsync(client, $"search={Word}")).GetProperty("totalCount").GetInt64();
        Assert.False(facets.GetProperty("exact").GetBoolean());
        // Every match is in English from one publisher: the sample's counts scale to the estimate.
        var language = Assert.Single(facets.GetProperty("languages").EnumerateArray());
        Assert.Equal(("en", total), (language.GetProperty("code").GetString(), language.GetProperty("count").GetInt64()));
        var publisher = Assert.Single(facets.GetProperty("publishers").EnumerateArray());
        Assert.Equal((Publisher, total), (publisher.GetProperty("name").GetString(), publisher.GetProperty("count").GetInt64()));

        var narrow = await client.GetFromJsonAsync<JsonElement>($"/api/books/facets?search={Word}%20lantern", Ct);
        Assert.True(narrow.GetProperty("exact").GetBoolean());
        Assert.Equal(WithLantern, Assert.Single(narrow.GetProperty("languages").EnumerateArray()).GetProperty("count").GetInt64());
    }

    /// <summary>
    /// The planner's estimate chooses how the candidates are read (headline matches first, or the
    /// first matches first: CatalogQuery.CandidateSet); a wrong estimate must cost time, not a
    /// different answer. Both statements, for broad and narrow searches, a typo, a negation and a
    /// filter, bounded pages and a deep one: the same IDs in the same order, the same count.
    /// </summary>
    [Fact]
    public async Task Both_ways_of_reading_the_candidates_give_the_same_pages()
    {
        await fixture.SeedAsync();
        await using var scope = fixture.Host.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<CatalogDbContext>();
        await db.Database.OpenConnectionAsync(Ct);
        string[] searches = [Word, $"{Word} lantern", "harbour", "quilmoor", $"{Word} -lantern", $"{Word} or harbour", TypoWord, $"{TypoWord} or {Word}"];
        foreach (var search in searches)
        {
            foreach (var available in new string?[] { null, "true" })
            {
                var filter = CatalogFilter.Create(search, null, null, null, null, null, available);
                var (where, parameters, typo) = await CatalogQuery.WhereAsync(db, filter, readsRows: false, Ct);
                foreach (var (take, skip) in new[] { (10, 0), (10, 30), (41, 0), (100, 0) })
                {
                    var answers = new List<string>();
                    foreach (var estimate in new[] { 0d, 1e9 })
                    {
                        var (sql, _) = CatalogQuery.BoundedRankedPage(where, take, skip, typo, BoundedCatalogFixture.Bound, estimate);
                        await using var command = db.Database.GetDbConnection().CreateCommand();
                        command.CommandText = sql;
                        command.Parameters.AddRange(parameters.Select(p => p.Clone()).ToArray());
                        await using var reader = await command.ExecuteReaderAsync(Ct);
                        var rows = new StringBuilder();
                        while (await reader.ReadAsync(Ct))
                        {
                            rows.Append(reader.GetGuid(0)).Append(' ').Append(reader.GetInt64(1)).Append('\n');
                        }
                        answers.Add(rows.ToString());
                    }
                    Assert.True(answers[0] == answers[1], $"{search} (available {available ?? "any"}), take {take} skip {skip}: first matches first\n{answers[0]}headline first\n{answers[1]}");
                    Assert.True(search == $"{Word} lantern" || skip > 0 || answers[0].Length > 0, $"{search}: no match to compare");
                }
            }
        }
    }

    /// <summary>
    /// A typo's exact matches come first (its tier), also when the words it may misspell fill the
    /// candidates with headline matches: "tidez" is in 5 descriptions, last in the table, and
    /// stands for "tide" too, in 50 titles; the candidates read the exact matches first.
    /// </summary>
    [Fact]
    public async Task A_broad_typos_exact_matches_rank_first()
    {
        await fixture.SeedAsync();
        using var client = fixture.Client();
        var page = await GetAsync(client, $"search={TypoWord}&pageSize=10");
        Assert.False(page.GetProperty("totalCountExact").GetBoolean());
        var exact = await MatchesAsync($"b.search_vector @@ websearch_to_tsquery('library_english', '{TypoWord}')");
        Assert.Equal(TypoExact, exact.Count);
        Assert.Equal(exact, Ids(page).Take(TypoExact).ToHashSet());
        Assert.All(page.GetProperty("items").EnumerateArray().Skip(TypoExact), b => Assert.StartsWith("Harbour Tide", b.GetProperty("title").GetString()));
    }
}
