using System.Globalization;
using System.Text;
using Library.BookService.Data;
using Library.ServiceDefaults;
using Npgsql;
using NpgsqlTypes;

namespace Library.BookService.Books;

/// <summary>
/// The filters of GET /api/books and /api/books/facets, normalised (trimmed, blanks as none). The
/// endpoints' parameter annotations have checked them (limits, no control character: NUL cannot
/// even be compared in PostgreSQL, and no title, name or code holds one).
/// </summary>
public sealed record CatalogFilter(
    string? Search, Guid? AuthorId, Guid? CategoryId, string? Category, string? Publisher, string? Language, bool? Available)
{
    public const int MaxSearchLength = 200;
    /// <summary>The longest category, publisher or language filter: the longest of those columns.</summary>
    public const int MaxFilterLength = 200;

    public const string SearchMessage = "search must have at most 200 characters.";
    public const string AvailableMessage = "available must be true or false.";
    public const string SortMessage = "sort must be one of: relevance, title, newest, popular.";

    public static CatalogFilter Create(string? search, Guid? authorId, Guid? categoryId, string? category, string? publisher, string? language, string? available) =>
        new(Blank(search), authorId, categoryId, Blank(category), Blank(publisher), Blank(language)?.ToLowerInvariant(),
            bool.TryParse(available, out var parsed) ? parsed : null);

    private static string? Blank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}

/// <summary>
/// <c>Catalog:SearchBound</c>: how many matches a search, a filtered list or its facets read at
/// most before they count, rank and facet a bounded set instead of every match (1,000 by
/// default). Up to it every answer is exact; past it <c>totalCount</c> is the planner's estimate
/// (<c>totalCountExact</c> false), relevance ranks the candidate set
/// (<see cref="CatalogQuery.BoundedRankedPage"/>), and facets count a sample scaled to the estimate
/// (<c>exact</c> false). An operator raises it to pay for exact answers on a larger catalog.
/// </summary>
public sealed class SearchOptions
{
    public const int DefaultBound = 1000;

    [System.ComponentModel.DataAnnotations.Range(20, 10_000_000, ErrorMessage = "Catalog:SearchBound must be between 20 and 10000000.")]
    public int SearchBound { get; set; } = DefaultBound;

    /// <summary>
    /// <c>Catalog:QueryConcurrency</c>: how many uncached searches, list pages, facets and
    /// recommendations one replica runs against PostgreSQL at once (<see cref="CatalogQueryGate"/>);
    /// unset, 2 per core of this machine; 0, no limit.
    /// </summary>
    [System.ComponentModel.DataAnnotations.Range(0, 10_000, ErrorMessage = "Catalog:QueryConcurrency must be between 0 (no limit) and 10000.")]
    public int? QueryConcurrency { get; set; }

    /// <summary><c>Catalog:QueryQueue</c>: how many may wait for their turn; one more is answered 503 with Retry-After.</summary>
    [System.ComponentModel.DataAnnotations.Range(0, 1_000_000, ErrorMessage = "Catalog:QueryQueue must be between 0 and 1000000.")]
    public int QueryQueue { get; set; } = 1000;
}

/// <summary>
/// SQL for searching and faceting the catalog in PostgreSQL: full text (stemmed, unaccented,
/// weighted; a misspelt word also matches the vocabulary words it may misspell) or the exact
/// ISBN, plus filters, with every value a parameter. Paging is stable: every order ends with the book's ID.
/// </summary>
public static class CatalogQuery
{
    /// <summary>
    /// The WHERE clause of a filter, its parameters, and whether a typo widened the search (then a
    /// ranked page puts the exact matches first: <see cref="BoundedRankedPage"/>). The search's
    /// tsquery (typos expanded: <see cref="ResolveSql"/>) and its unaccented lower case, and a
    /// category's ID by name, are resolved first in one round trip and passed as constants: written
    /// inline, <c>websearch_to_tsquery</c> and <c>unaccent</c> (stable, not immutable) ran again for
    /// every match in the ranking, and a join to <c>categories</c> by name hid the category from the
    /// planner's statistics (bench/README.md, search at scale).
    /// </summary>
    /// <param name="readsRows">The statement reads the matching books' rows anyway (the facets read their
    /// publisher, language and categories): see <see cref="Where"/>.</param>
    public static async Task<(string Where, List<NpgsqlParameter> Parameters, bool Typo)> WhereAsync(CatalogDbContext db, CatalogFilter filter, bool readsRows, CancellationToken ct)
    {
        string? tsQuery = null, exact = null, unaccented = null;
        Guid? categoryByName = null;
        if (filter.Search is not null || filter.Category is not null)
        {
            await using var command = await BooksApi.CommandAsync(db, ResolveSql,
                [new NpgsqlParameter("q", NpgsqlDbType.Text) { Value = filter.Search ?? "" },
                 new NpgsqlParameter("category_name", NpgsqlDbType.Text) { Value = filter.Category?.ToLowerInvariant() ?? "" }], ct);
            // The same text for every search: prepared once per connection (Npgsql keeps it on the
            // physical connection across the pool), its plan made once instead of per request
            // (0.6 ms of planning: bench/README.md, search at scale, eighth pass).
            await command.PrepareAsync(ct);
            await using var reader = await command.ExecuteReaderAsync(ct);
            await reader.ReadAsync(ct);
            exact = reader.GetString(0);
            tsQuery = reader.GetString(1);
            unaccented = reader.GetString(2);
            categoryByName = reader.IsDBNull(3) ? null : reader.GetGuid(3);
        }
        var typo = filter.Search is not null && tsQuery != exact;
        var (where, parameters) = Where(filter, tsQuery, unaccented, categoryByName, readsRows);
        if (typo)
        {
            parameters.Add(new NpgsqlParameter("exact", exact));
        }
        return (where, parameters, typo);
    }

    /// <summary>
    /// The book service's session settings (its pool's Options): a broad search's candidates are a
    /// LIMIT without ORDER BY, read in the table's order (<see cref="CandidateSet"/>); no
    /// synchronized scans (a scan that joins another starts mid-table) and no parallel workers
    /// (their rows interleave), so the same statement reads the same rows.
    /// </summary>
    public const string SessionSettings = "-c synchronize_seqscans=off -c max_parallel_workers_per_gather=0";

    /// <summary>The search's test in a filter's WHERE clause (<see cref="Where"/>).</summary>
    private const string SearchMatch = "b.search_vector @@ @tsq::tsquery";

    /// <summary>Vocabulary words at least this similar (pg_trgm <c>similarity</c>) to a query word not in it are its typo candidates.</summary>
    public const double TypoSimilarity = 0.4;

    /// <summary>
    /// At most this many vocabulary words stand in for one misspelt query word: those of the highest
    /// similarity among its <see cref="TypoAlternatives"/> most similar (ties all kept).
    /// </summary>
    public const int TypoAlternatives = 5;

    /// <summary>
    /// The search's tsquery as written (<c>websearch_to_tsquery</c>), the same with its typos
    /// expanded, its unaccented lower case, and a category's ID by name. A typo is a query word
    /// (unaccented lower case, split as the vocabulary is, 3 letters or more, no digit: an ISBN or a
    /// year is not a misspelling) that no title, subtitle or author holds (<c>search_words</c>, kept
    /// by <c>refresh_book_search()</c>): its lexeme becomes (itself | the lexemes of its most
    /// similar vocabulary words, weights A and B: the fields the vocabulary comes from), wherever it occurs in the query (<c>ts_rewrite</c>, so phrases,
    /// OR and negation keep their meaning). This is pg_trgm's own recipe for typos in full-text
    /// search (its documentation, "Text Search Integration"): the trigram term over whole titles that
    /// it replaces matched stretches across words ("hystory": "a love story h…", never "history")
    /// and rechecked thousands of candidates. Only the words of the best similarity stand in (of the
    /// <see cref="TypoAlternatives"/> most similar, ties kept): "hystory" reads 'histori' (0.45),
    /// not also 'stori' (0.40), whose matches doubled the titles a typo ranked (bench/README.md,
    /// search at scale, sixth pass). A query without a typo is the query as written.
    /// </summary>
    private static readonly string ResolveSql = $"""
        WITH RECURSIVE
            input AS (SELECT websearch_to_tsquery('library_english', @q) AS tsq, lower(unaccent(@q)) AS uq),
            typos AS (
                SELECT row_number() OVER (ORDER BY w.word) AS n, w.lexeme, e.alternatives
                FROM (SELECT DISTINCT q.word, plainto_tsquery('library_english', q.word) AS lexeme
                      FROM input, regexp_split_to_table(input.uq, '[^[:alnum:]]+') AS q(word)
                      WHERE length(q.word) >= 3 AND q.word !~ '[0-9]'
                        AND NOT EXISTS (SELECT 1 FROM search_words v WHERE v.word = q.word)) w
                CROSS JOIN LATERAL (
                    SELECT string_agg(format('%s:AB', x.lexeme::text), ' | ' ORDER BY x.word)::tsquery AS alternatives
                    FROM (SELECT y.word, y.lexeme, y.sim, max(y.sim) OVER () AS best
                          FROM (SELECT v.word, similarity(v.word, w.word) AS sim, plainto_tsquery('library_english', v.word) AS lexeme
                                FROM search_words v WHERE v.word % w.word AND similarity(v.word, w.word) >= {TypoSimilarity.ToString(CultureInfo.InvariantCulture)}
                                ORDER BY 2 DESC, 1 LIMIT {TypoAlternatives}) y
                          WHERE numnode(y.lexeme) = 1 AND y.lexeme <> w.lexeme) x
                    WHERE x.sim = x.best) e
                WHERE numnode(w.lexeme) = 1 AND e.alternatives IS NOT NULL),
            expanded AS (
                SELECT 0::bigint AS n, input.tsq FROM input
                UNION ALL
                SELECT t.n, ts_rewrite(x.tsq, t.lexeme, t.lexeme || t.alternatives) FROM expanded x JOIN typos t ON t.n = x.n + 1)
        SELECT input.tsq::text, (SELECT x.tsq::text FROM expanded x ORDER BY x.n DESC LIMIT 1), input.uq,
               (SELECT c.id FROM categories c WHERE c.normalized_name = @category_name)
        FROM input
        """;

    /// <summary>
    /// A category is tested in one of two equivalent forms (books.category_ids holds exactly a title's
    /// book_categories, written by <c>refresh_book_search()</c> in the same transaction), since the
    /// planner cannot know they are equivalent and each is cheaper in its own case (bench/README.md,
    /// search at scale, fourth pass): when the statement reads the books' rows anyway (a search,
    /// a publisher, language or availability filter, the facets), the row's own <c>category_ids</c>
    /// (a filter on the row, or its GIN index: a bitmap in heap order); when the filters are only a
    /// category or an author, <c>EXISTS</c> on book_categories, which a count answers from two
    /// indexes without reading a row (a merge join: 0.5x of the bitmap over the rows).
    /// </summary>
    private static (string Where, List<NpgsqlParameter> Parameters) Where(CatalogFilter filter, string? tsQuery, string? unaccented, Guid? categoryByName, bool readsRows)
    {
        var rowCategories = readsRows || filter.Search is not null || filter.Publisher is not null || filter.Language is not null || filter.Available is not null;
        var where = new StringBuilder("TRUE");
        var parameters = new List<NpgsqlParameter>();
        if (filter.Search is { } search)
        {
            // tsquery's text form reads back as the same query; the cast of a constant is folded
            // at planning, so the planner still sees the words (row estimates, index choice).
            parameters.Add(new NpgsqlParameter("tsq", tsQuery));
            parameters.Add(new NpgsqlParameter("uq", unaccented));
            var isbnClause = "";
            if (Isbn.TryNormalize(search, out var isbn))
            {
                parameters.Add(new NpgsqlParameter("isbn", isbn));
                isbnClause = " OR b.isbn = @isbn";
            }
            // A typo ("Le Guinn") is already in the tsquery, expanded to the words it may misspell.
            where.Append($" AND ({SearchMatch}{isbnClause})");
        }
        if (filter.AuthorId is { } authorId)
        {
            parameters.Add(new NpgsqlParameter("author", authorId));
            where.Append(" AND EXISTS (SELECT 1 FROM book_authors ba WHERE ba.books_id = b.id AND ba.authors_id = @author)");
        }
        if (filter.CategoryId is { } categoryId)
        {
            where.Append(CategoryClause(parameters, "category_id", categoryId, rowCategories));
        }
        if (filter.Category is not null)
        {
            // No category of that name: no book matches (as the join by name answered before).
            if (categoryByName is { } byName)
            {
                where.Append(CategoryClause(parameters, "category_by_name", byName, rowCategories));
            }
            else
            {
                where.Append(" AND FALSE");
            }
        }
        if (filter.Publisher is { } publisher)
        {
            parameters.Add(new NpgsqlParameter("publisher", publisher));
            where.Append(" AND lower(b.publisher) = lower(@publisher)");
        }
        if (filter.Language is { } language)
        {
            parameters.Add(new NpgsqlParameter("language", language));
            where.Append(" AND b.language = @language");
        }
        if (filter.Available is { } available)
        {
            where.Append(available ? " AND b.available_copies > 0" : " AND b.available_copies <= 0");
        }
        return (where.ToString(), parameters);
    }

    /// <summary>
    /// A ranked page's IDs over the rows <c>r</c> that <paramref name="ranked"/> defines (id, title,
    /// search_text, tier, rank: the candidates of <see cref="CandidateSet"/>, or every match for a
    /// deep page), with the count of those rows, in the order of <see cref="OrderBy"/>'s
    /// "relevance": the <paramref name="refined"/> best rows by (tier, rank, title, ID) first,
    /// ordered by tier, then score = <c>ts_rank_cd</c> + <c>word_similarity</c> (how closely the
    /// words as typed match a stretch of the title's text), title and ID; then every other row by
    /// tier, rank, title and ID. <c>word_similarity</c> costs about 6 us a row, and a flat rank (a
    /// typo, two common words) gave no bound to skip it: scoring every candidate was most of a
    /// broad search (bench/README.md, search at scale, ninth and tenth passes). So it refines the
    /// head of the ranking, the rows a reader sees, and the rest keep the rank's order.
    /// </summary>
    /// <remarks>
    /// Pages are slices of one order for any page size: the refined rows are fixed by the order
    /// alone, and all of them come before every other row (an other row's tier is at most the
    /// last refined row's, so a refined row comes first in a higher tier by the tier and in the
    /// same tier by being refined). A page that ends within them reads them alone. With a typo,
    /// the exact matches (the query as written, parameter <c>exact</c>) come first: a tier (1
    /// exact, 0 typo only; 0 for every match without a typo; a deep page adds 2 for a candidate)
    /// leads the order.
    /// </remarks>
    private static string RankedPage(string ranked, int take, int skip, long refined)
    {
        var end = (long)skip + take;
        var head = $"""
            WITH {ranked},
            s AS MATERIALIZED (
                SELECT h.id, h.title, h.tier, h.rank + word_similarity(@uq, h.search_text) AS score FROM (
                    SELECT r.id, r.title, r.tier, r.rank, r.search_text FROM r ORDER BY r.tier DESC, r.rank DESC, r.title, r.id LIMIT {refined}) h)
            """;
        if (end <= refined)
        {
            return $"""
                {head}
                SELECT s.id, (SELECT count(*) FROM r) FROM s
                ORDER BY s.tier DESC, s.score DESC, s.title, s.id LIMIT {take} OFFSET {skip}
                """;
        }
        return $"""
            {head}
            SELECT p.id, (SELECT count(*) FROM r) FROM (
                SELECT 1 AS part, s.id, s.title, s.tier, s.score FROM s
                UNION ALL
                SELECT 0, r.id, r.title, r.tier, r.rank FROM r WHERE r.id NOT IN (SELECT s.id FROM s)) p
            ORDER BY p.part DESC, p.tier DESC, p.score DESC, p.title, p.id LIMIT {take} OFFSET {skip}
            """;
    }

    /// <summary>
    /// A ranked page of a search that may be broad: the IDs, with the count of the candidates
    /// ranked (at most <paramref name="bound"/> + 1: more than <paramref name="bound"/> says the
    /// count is not every match) or, for a deep page, of every match. A broad search reads and
    /// ranks a bounded candidate set instead of every match (bench/README.md, search at scale,
    /// eighth pass: at 100,000 titles "darkness" matches 7,880 titles, and reading them was most
    /// of the search): the first <paramref name="bound"/> + 1 matches whose title, subtitle or
    /// authors hold the query (weights A and B, where the best scores are), then, to fill the set,
    /// the other matches, each in the table's physical order (the order every plan of a LIMIT
    /// reads them in: block, then line). Within the set the order is <see cref="RankedPage"/>'s,
    /// so a search with at most <paramref name="bound"/> matches ranks every match. Past the
    /// set (a page that ends beyond it) the order is the candidates first, then every other match,
    /// each part in that order: so pages never repeat or skip a title, and a deep page pays for
    /// ranking every match. Candidates is true when the count is the candidates' (bounded).
    /// </summary>
    public static (string Sql, bool Candidates) BoundedRankedPage(string where, int take, int skip, bool typo, int bound, double estimate)
    {
        var end = (long)skip + take;
        var cap = bound + 1L;
        var headlineFirst = estimate > HeadlineFirstAbove * cap;
        // At most the candidates: a deep page then refines the same rows as a page of the set.
        var refined = Math.Min(SimilarityRefined, cap);
        if (end <= cap)
        {
            // The candidates are the ranked rows themselves (no copy of them as r).
            return (RankedPage(CandidateSet(where, typo, cap, headlineFirst, "r"), take, skip, refined), true);
        }
        // Past the set: every match, the candidates first (a tier of 2 over the typo's 1 and 0),
        // the same refined rows as a page of the set.
        var tier = typo ? "(b.search_vector @@ @exact::tsquery)::int" : "0";
        return (RankedPage($"""
            {CandidateSet(where, typo, cap, headlineFirst, "c")},
            r AS MATERIALIZED (
                SELECT b.id, b.title, b.search_text, 2 * (b.id IN (SELECT c.id FROM c))::int + {tier} AS tier,
                       ts_rank_cd(b.search_vector, @tsq::tsquery) AS rank
                FROM books b WHERE {where})
            """, take, skip, refined), false);
    }

    /// <summary>
    /// Above this many times the candidates, by the planner's estimate, a ranked search reads its
    /// headline matches first (<see cref="CandidateSet"/>).
    /// </summary>
    private const int HeadlineFirstAbove = 2;

    /// <summary>
    /// The CTE <paramref name="name"/>, the candidate set of a ranked page (id, title, search_text,
    /// tier, rank: the columns <see cref="RankedPage"/> reads): when there
    /// are at least <paramref name="cap"/> matches (a broad search), first a typo's exact matches
    /// (<c>e</c>: they rank first), then the matches whose title, subtitle or authors hold the
    /// query (<c>t</c>, the headline matches, from their own GIN index, ix_books_search_headline),
    /// then the first other matches (of <c>f</c>, the first <paramref name="cap"/> matches), each
    /// in the table's order, up to <paramref name="cap"/> in all; with fewer, every match. Rank
    /// and tier are computed once per row that <c>e</c> and <c>t</c> read, and for <c>f</c>'s
    /// rows only as they fill the set.
    /// </summary>
    /// <remarks>
    /// Two statements give that same set, each cheaper in its own case, so the planner's estimate
    /// (<paramref name="headlineFirst"/>) chooses, and a wrong estimate costs time, not a different
    /// answer: first-matches-first reads <c>f</c>, and <c>e</c> and <c>t</c> only when <c>f</c> is
    /// full (a search with fewer matches reads them once); headline-first reads <c>e</c> and
    /// <c>t</c>, and <c>f</c> only when they do not fill the set (a broad search whose headline
    /// matches fill it never builds the bitmap of every match: at 1,000,000 titles 78,800 entries
    /// for "darkness", 14 ms to read from the index and as much to build). <c>t</c> tests the
    /// search on its rows, not in the search's index (<c>IS TRUE</c> is not an operator an index
    /// serves): as a BitmapAnd with the headline index it read that whole bitmap too. The table's
    /// order holds for a statement because the sessions neither synchronize scans nor run
    /// parallel workers (<see cref="SessionSettings"/>); it changes when rows are rewritten.
    /// </remarks>
    private static string CandidateSet(string where, bool typo, long cap, bool headlineFirst, string name)
    {
        const string Headline = "ts_filter(b.search_vector, '{a,b}') @@ @tsq::tsquery";
        var headlineWhere = where.Replace(SearchMatch, $"({SearchMatch}) IS TRUE", StringComparison.Ordinal);
        // e and t carry their rows' tier and rank, computed once per row they return (a LIMIT's
        // projection runs only for the rows it passes on), not the rows' search vectors: narrow
        // rows through the CTEs. f carries the vector: its rows are ranked in the last step, only
        // those that fill the set (in the first-matches-first statement f is read whole, and most
        // of it may be left out when e and t fill the set).
        string Scored(string row) => $"{row}.id, {row}.title, {row}.search_text, {(typo ? $"({row}.search_vector @@ @exact::tsquery)::int" : "0")} AS tier, "
            + $"ts_rank_cd({row}.search_vector, @tsq::tsquery) AS rank";
        // Every LIMIT is an expression, never a constant: a constant LIMIT plans for its first rows
        // and an expression for a tenth of them, so written both ways the same subquery could get
        // two plans that read rows in two orders.
        var whenBroad = $"(CASE WHEN (SELECT count(*) FROM f) = {cap} THEN {cap} ELSE 0 END)";
        // Without a typo the exact and headline matches are t itself (no copy of it as et).
        var et = typo ? "et" : "t";
        var (e, t, f) = (
            $"e AS MATERIALIZED (SELECT {Scored("b")} FROM books b WHERE {where} AND b.search_vector @@ @exact::tsquery LIMIT {(headlineFirst ? $"(SELECT {cap})" : whenBroad)})",
            $"t AS MATERIALIZED (SELECT {Scored("b")} FROM books b WHERE {Headline} AND {headlineWhere} LIMIT {(headlineFirst ? $"(SELECT {cap})" : whenBroad)})",
            $"f AS MATERIALIZED (SELECT b.id, b.title, b.search_text, b.search_vector FROM books b WHERE {where} LIMIT {(headlineFirst ? $"(CASE WHEN (SELECT count(*) FROM {et}) = {cap} THEN 0 ELSE {cap} END)" : $"(SELECT {cap})")})");
        var ctes = (typo, headlineFirst) switch
        {
            (true, true) => $"{e},\n{t},\n{EtCte(cap)},\n{f}",
            (true, false) => $"{f},\n{e},\n{t},\n{EtCte(cap)}",
            (false, true) => $"{t},\n{f}",
            (false, false) => $"{f},\n{t}",
        };
        return $"""
            {ctes},
            {name} AS MATERIALIZED (
                SELECT * FROM {et}
                UNION ALL
                (SELECT {Scored("f")} FROM f WHERE f.id NOT IN (SELECT {et}.id FROM {et}) LIMIT (SELECT {cap} - count(*) FROM {et})))
            """;
    }

    /// <summary>With a typo: its exact matches (<c>e</c>), then the headline matches that are not among them, up to the cap.</summary>
    private static string EtCte(long cap) =>
        $"et AS MATERIALIZED (SELECT * FROM e UNION ALL (SELECT * FROM t WHERE t.id NOT IN (SELECT e.id FROM e) LIMIT (SELECT {cap} - count(*) FROM e)))";

    /// <summary>The count of a filter's matches up to <paramref name="bound"/> + 1: reads at most that many rows.</summary>
    public static string BoundedCount(string where, int bound) =>
        $"SELECT count(*) FROM (SELECT 1 FROM books b WHERE {where} LIMIT {bound + 1L}) x";

    /// <summary>
    /// The planner's estimate of a filter's matches (<c>EXPLAIN</c>'s rows, from the table's
    /// statistics: for a full-text query the lexemes' frequencies that ANALYZE keeps), for a count
    /// past the bound. At 100,000 titles "darkness": 7,953 estimated, 7,880 matches.
    /// </summary>
    public static string Estimate(string where) => $"EXPLAIN (FORMAT JSON) SELECT 1 FROM books b WHERE {where}";

    /// <summary>
    /// The count of a list's matches from the facet counts the triggers on books keep in every
    /// write's transaction (catalog_facet_counts, migration SearchAtScale6), when its filters are
    /// ones they count: none (the whole catalog: every title has exactly one publisher, so its
    /// publisher counts add up to the titles), a category (by ID or by name), a language or a
    /// publisher (by lower case, as the filter compares), or a category with a language or a
    /// publisher (that category's scope). Read in the page's statement, so with its snapshot: the
    /// same count as over the rows. At 100,000 titles counting a category's rows took 12.8 ms and
    /// the whole catalog 4.1 ms (1,000,000: 492 and 93 ms), of a page that takes 1 ms
    /// (bench/README.md, search at scale, seventh pass). Null for any other filter; adds its parameters.
    /// </summary>
    public static string? KeptCount(CatalogFilter filter, List<NpgsqlParameter> parameters)
    {
        if (filter.Search is not null || filter.AuthorId is not null || filter.Available is not null
            || (filter.CategoryId is not null && filter.Category is not null) || (filter.Publisher is not null && filter.Language is not null))
        {
            return null;
        }
        var scope = KeptScope(filter, parameters, "kept_");
        string counted;
        if (filter.Language is { } language)
        {
            parameters.Add(new NpgsqlParameter("kept_language", language));
            counted = "f.kind = 'l' AND f.value = @kept_language";
        }
        else if (filter.Publisher is { } publisher)
        {
            parameters.Add(new NpgsqlParameter("kept_publisher", publisher));
            counted = "f.kind = 'p' AND lower(f.value) = lower(@kept_publisher)";
        }
        else
        {
            counted = "f.kind = 'p'";
        }
        return $"SELECT coalesce(sum(f.count), 0)::bigint FROM catalog_facet_counts f WHERE f.scope = {scope} AND {counted}";
    }

    /// <summary>
    /// The scope of catalog_facet_counts a filter reads: its category (by ID, or by name looked up
    /// in the statement: no category of that name, no scope, no row) or the nil UUID (the whole
    /// catalog). Adds its parameter, named with <paramref name="prefix"/>.
    /// </summary>
    public static string KeptScope(CatalogFilter filter, List<NpgsqlParameter> parameters, string prefix = "")
    {
        if (filter.Category is { } name)
        {
            parameters.Add(new NpgsqlParameter($"{prefix}category_name", name.ToLowerInvariant()));
            return $"(SELECT c.id FROM categories c WHERE c.normalized_name = @{prefix}category_name)";
        }
        parameters.Add(new NpgsqlParameter($"{prefix}scope", filter.CategoryId ?? Guid.Empty));
        return $"@{prefix}scope";
    }

    /// <summary>
    /// How many of a search's best matches by (tier, rank, title, ID) <c>word_similarity</c>
    /// refines (<see cref="RankedPage"/>): five pages of 20, the default page size.
    /// </summary>
    public const int SimilarityRefined = 100;

    /// <summary>The ORDER BY of an unranked page (a ranked one: <see cref="BoundedRankedPage"/>).</summary>
    public static string OrderBy(string sort) => sort switch
    {
        "newest" => "b.published_year DESC NULLS LAST, b.created_at DESC, b.id",
        "popular" => "b.recent_loans DESC, b.title, b.id",
        _ => "b.title, b.id",
    };

    private static string CategoryClause(List<NpgsqlParameter> parameters, string name, Guid categoryId, bool rowCategories)
    {
        if (rowCategories)
        {
            parameters.Add(new NpgsqlParameter(name, NpgsqlDbType.Array | NpgsqlDbType.Uuid) { Value = new[] { categoryId } });
            return $" AND b.category_ids @> @{name}";
        }
        parameters.Add(new NpgsqlParameter(name, categoryId));
        return $" AND EXISTS (SELECT 1 FROM book_categories bc WHERE bc.books_id = b.id AND bc.categories_id = @{name})";
    }

    public static NpgsqlParameter Uuids(string name, IEnumerable<Guid> ids) =>
        new(name, NpgsqlDbType.Array | NpgsqlDbType.Uuid) { Value = ids.ToArray() };
}
