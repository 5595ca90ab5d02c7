using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Library.BookService.Data.Migrations
{
    /// <inheritdoc />
    public partial class SearchAtScale5 : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            // HAND-WRITTEN (not in the EF model, like search_vector): search_words, the vocabulary of
            // the catalog's titles, subtitles and authors (the words of books.search_text: unaccented,
            // lower case), trigram-indexed, for the typo rule (CatalogQuery.ResolveSql: a query word
            // not in it stands for its most similar words, pg_trgm's "Text Search Integration").
            // Filled here once, then by refresh_book_search(), which every write of a title's
            // searchable text calls in its transaction (ON CONFLICT DO NOTHING: words are never
            // removed; a word no title holds any more only widens a typo into a word that matches
            // nothing). The words are inserted in order, so two writers never wait on each other's
            // new words in opposite orders. The trigram index of books.search_text served only the
            // old typo term (search_text %> q) and goes.
            migrationBuilder.Sql("""
                CREATE TABLE search_words (word text PRIMARY KEY);
                INSERT INTO search_words
                    SELECT DISTINCT w FROM books b, regexp_split_to_table(b.search_text, '[^[:alnum:]]+') AS w WHERE w <> '';
                CREATE INDEX ix_search_words_word_trgm ON search_words USING gin (word gin_trgm_ops);
                DROP INDEX IF EXISTS ix_books_search_text_trgm;
                """);
            migrationBuilder.Sql(RefreshBookSearch(
                "WITH u AS (",
                """
                    RETURNING b.search_text)
                INSERT INTO search_words
                    SELECT DISTINCT w FROM u, regexp_split_to_table(u.search_text, '[^[:alnum:]]+') AS w WHERE w <> ''
                    ORDER BY w
                ON CONFLICT DO NOTHING
                """));
        }

        /// <summary>refresh_book_search() as SearchAtScale4 wrote it, its UPDATE between <paramref name="before"/> and <paramref name="after"/>.</summary>
        private static string RefreshBookSearch(string before, string after) => $"""
            CREATE OR REPLACE FUNCTION refresh_book_search(ids uuid[]) RETURNS void LANGUAGE sql AS $$
                {before}UPDATE books b SET
                    search_vector =
                        setweight(to_tsvector('library_english', b.title), 'A') ||
                        setweight(to_tsvector('library_english', coalesce(b.subtitle, '')), 'B') ||
                        setweight(to_tsvector('library_english', coalesce(a.names, '')), 'B') ||
                        setweight(to_tsvector('library_english', coalesce(b.description, '')), 'C'),
                    search_text = lower(unaccent(concat_ws(' ', b.title, b.subtitle, a.names))),
                    category_ids = ARRAY(SELECT bc.categories_id FROM book_categories bc WHERE bc.books_id = b.id ORDER BY bc.categories_id)
                FROM (
                    SELECT bb.id, string_agg(au.name, ' ' ORDER BY au.name) AS names
                    FROM books bb
                    LEFT JOIN book_authors ba ON ba.books_id = bb.id
                    LEFT JOIN authors au ON au.id = ba.authors_id
                    WHERE bb.id = ANY(ids)
                    GROUP BY bb.id
                ) a
                WHERE b.id = a.id
                {after};
            $$;
            """;

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql(RefreshBookSearch("", ""));
            migrationBuilder.Sql("""
                CREATE INDEX IF NOT EXISTS ix_books_search_text_trgm ON books USING gin (search_text gin_trgm_ops);
                DROP TABLE IF EXISTS search_words;
                """);
        }
    }
}
