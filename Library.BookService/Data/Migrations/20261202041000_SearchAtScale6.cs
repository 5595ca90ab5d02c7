using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Library.BookService.Data.Migrations
{
    /// <inheritdoc />
    public partial class SearchAtScale6 : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            // HAND-WRITTEN (not in the EF model, like search_vector): catalog_facet_counts, the facets
            // of the whole catalog (scope: the nil UUID) and of each category (scope: its ID), kept
            // exact by triggers on books in the transaction of every write (insert, delete: statement
            // triggers; an update of a title's publisher, language or categories: books.category_ids,
            // a row trigger that only such an update runs), so
            // GET /api/books/facets with no filter or a category alone reads a few hundred rows instead
            // of every title of the category (BooksApi.FacetCountsSql; bench/README.md, search at
            // scale, sixth pass). Publishers are counted by their exact spelling (the facet groups
            // them by lower case and shows the smallest spelling, as the query over the rows did);
            // rows that fall to 0 stay (a few hundred at most) and are not read. The trigger adds the
            // statement's deltas in one INSERT, in key order, so two writers lock counts in the same order.
            migrationBuilder.Sql($"""
                CREATE TABLE catalog_facet_counts (
                    scope uuid NOT NULL,
                    kind "char" NOT NULL,
                    value text NOT NULL,
                    count bigint NOT NULL,
                    PRIMARY KEY (scope, kind, value));

                CREATE FUNCTION books_facet_counts() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF TG_OP = 'INSERT' THEN
                        {Apply("SELECT n.category_ids, n.publisher, n.language, 1 AS delta FROM new_rows n")}
                    ELSE
                        {Apply("SELECT o.category_ids, o.publisher, o.language, -1 AS delta FROM old_rows o")}
                    END IF;
                    RETURN NULL;
                END $$;

                CREATE FUNCTION books_facet_counts_updated() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    {Apply(UpdatedRow)}
                    RETURN NULL;
                END $$;

                CREATE TRIGGER books_facet_counts_insert AFTER INSERT ON books
                    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION books_facet_counts();
                CREATE TRIGGER books_facet_counts_update AFTER UPDATE OF category_ids, publisher, language ON books
                    FOR EACH ROW WHEN ((OLD.category_ids, OLD.publisher, OLD.language) IS DISTINCT FROM (NEW.category_ids, NEW.publisher, NEW.language))
                    EXECUTE FUNCTION books_facet_counts_updated();
                CREATE TRIGGER books_facet_counts_delete AFTER DELETE ON books
                    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION books_facet_counts();

                {Apply("SELECT b.category_ids, b.publisher, b.language, 1 AS delta FROM books b")}
                """);
        }

        /// <summary>
        /// A row whose facets an UPDATE changed: as it was (-1) and as it is (+1). A row trigger, named
        /// columns and a WHEN: the updates that change no facet (the availability that every loan and
        /// return sends, a title's text, its copies) never run it, where a statement trigger with
        /// transition tables ran on every UPDATE of books (PostgreSQL allows no column list with
        /// transition tables) and cost each one-row update 0.2-0.5 ms. An UPDATE of many titles' facets
        /// (rare: a category's deletion) adds its counts row by row, each an upsert in the same transaction.
        /// </summary>
        private const string UpdatedRow = """
            SELECT OLD.category_ids, OLD.publisher, OLD.language, -1 AS delta
            UNION ALL
            SELECT NEW.category_ids, NEW.publisher, NEW.language, 1
            """;

        /// <summary>The INSERT that adds the facet counts of <paramref name="rows"/> (category_ids, publisher, language, delta).</summary>
        private static string Apply(string rows) => $"""
            WITH r AS ({rows}),
            d AS (
                SELECT s.scope, 'c'::"char" AS kind, c.id::text AS value, r.delta
                FROM r CROSS JOIN LATERAL unnest(r.category_ids || '00000000-0000-0000-0000-000000000000'::uuid) AS s(scope)
                    CROSS JOIN LATERAL unnest(r.category_ids) AS c(id)
                UNION ALL
                SELECT s.scope, 'p', r.publisher, r.delta
                FROM r CROSS JOIN LATERAL unnest(r.category_ids || '00000000-0000-0000-0000-000000000000'::uuid) AS s(scope)
                UNION ALL
                SELECT s.scope, 'l', r.language, r.delta
                FROM r CROSS JOIN LATERAL unnest(r.category_ids || '00000000-0000-0000-0000-000000000000'::uuid) AS s(scope)
                WHERE r.language IS NOT NULL)
            INSERT INTO catalog_facet_counts AS f (scope, kind, value, count)
            SELECT d.scope, d.kind, d.value, sum(d.delta) FROM d
            GROUP BY d.scope, d.kind, d.value HAVING sum(d.delta) <> 0
            ORDER BY d.scope, d.kind, d.value
            ON CONFLICT (scope, kind, value) DO UPDATE SET count = f.count + excluded.count;
            """;

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("""
                DROP TRIGGER IF EXISTS books_facet_counts_insert ON books;
                DROP TRIGGER IF EXISTS books_facet_counts_update ON books;
                DROP TRIGGER IF EXISTS books_facet_counts_delete ON books;
                DROP FUNCTION IF EXISTS books_facet_counts();
                DROP FUNCTION IF EXISTS books_facet_counts_updated();
                DROP TABLE IF EXISTS catalog_facet_counts;
                """);
        }
    }
}
