using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Library.BookService.Data.Migrations
{
    /// <inheritdoc />
    public partial class SearchAtScale4 : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            // HAND-WRITTEN (not in the EF model, like search_vector): books.category_ids, a title's
            // book_categories on its own row, for the category filter (GIN) and the category facet
            // (no join with book_categories); filled here once, then by refresh_book_search(),
            // which every write of a title's categories calls in its transaction.
            migrationBuilder.Sql("""
                ALTER TABLE books ADD COLUMN category_ids uuid[] NOT NULL DEFAULT '{}';
                UPDATE books b SET category_ids = c.ids
                FROM (SELECT books_id, array_agg(categories_id ORDER BY categories_id) AS ids FROM book_categories GROUP BY books_id) c
                WHERE c.books_id = b.id;
                CREATE INDEX ix_books_category_ids ON books USING gin (category_ids);
                """);
            migrationBuilder.Sql(RefreshBookSearch("""
                ,
                category_ids = ARRAY(SELECT bc.categories_id FROM book_categories bc WHERE bc.books_id = b.id ORDER BY bc.categories_id)
                """));
        }

        /// <summary>refresh_book_search() as AddCatalogSearch wrote it, plus <paramref name="more"/> columns to set.</summary>
        private static string RefreshBookSearch(string more) => $"""
            CREATE OR REPLACE FUNCTION refresh_book_search(ids uuid[]) RETURNS void LANGUAGE sql AS $$
                UPDATE books b SET
                    search_vector =
                        setweight(to_tsvector('library_english', b.title), 'A') ||
                        setweight(to_tsvector('library_english', coalesce(b.subtitle, '')), 'B') ||
                        setweight(to_tsvector('library_english', coalesce(a.names, '')), 'B') ||
                        setweight(to_tsvector('library_english', coalesce(b.description, '')), 'C'),
                    search_text = lower(unaccent(concat_ws(' ', b.title, b.subtitle, a.names))){more}
                FROM (
                    SELECT bb.id, string_agg(au.name, ' ' ORDER BY au.name) AS names
                    FROM books bb
                    LEFT JOIN book_authors ba ON ba.books_id = bb.id
                    LEFT JOIN authors au ON au.id = ba.authors_id
                    WHERE bb.id = ANY(ids)
                    GROUP BY bb.id
                ) a
                WHERE b.id = a.id;
            $$;
            """;

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql(RefreshBookSearch(""));
            migrationBuilder.Sql("""
                DROP INDEX IF EXISTS ix_books_category_ids;
                ALTER TABLE books DROP COLUMN IF EXISTS category_ids;
                """);
        }
    }
}
