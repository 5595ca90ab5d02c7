using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Library.BookService.Data.Migrations
{
    /// <inheritdoc />
    public partial class AddCatalogSearch : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropForeignKey(
                name: "fk_book_authors_authors_authors_id",
                table: "book_authors");

            migrationBuilder.DropForeignKey(
                name: "fk_book_categories_categories_categories_id",
                table: "book_categories");

            migrationBuilder.DropIndex(
                name: "ix_books_title",
                table: "books");

            migrationBuilder.AddColumn<long>(
                name: "availability_version",
                table: "books",
                type: "bigint",
                nullable: false,
                defaultValue: 0L);

            migrationBuilder.AddColumn<int>(
                name: "recent_loans",
                table: "books",
                type: "integer",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.AddColumn<long>(
                name: "version",
                table: "books",
                type: "bigint",
                nullable: false,
                defaultValue: 0L);

            migrationBuilder.CreateTable(
                name: "book_loans",
                columns: table => new
                {
                    loan_id = table.Column<Guid>(type: "uuid", nullable: false),
                    book_id = table.Column<Guid>(type: "uuid", nullable: false),
                    user_id = table.Column<Guid>(type: "uuid", nullable: false),
                    borrowed_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    returned_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_book_loans", x => x.loan_id);
                });

            migrationBuilder.CreateIndex(
                name: "ix_books_language",
                table: "books",
                column: "language");

            migrationBuilder.CreateIndex(
                name: "ix_books_published_year",
                table: "books",
                column: "published_year");

            migrationBuilder.CreateIndex(
                name: "ix_books_recent_loans_title",
                table: "books",
                columns: new[] { "recent_loans", "title" });

            migrationBuilder.CreateIndex(
                name: "ix_books_title_id",
                table: "books",
                columns: new[] { "title", "id" });

            migrationBuilder.CreateIndex(
                name: "ix_book_loans_book_id_user_id",
                table: "book_loans",
                columns: new[] { "book_id", "user_id" });

            migrationBuilder.CreateIndex(
                name: "ix_book_loans_borrowed_at",
                table: "book_loans",
                column: "borrowed_at");

            migrationBuilder.CreateIndex(
                name: "ix_book_loans_user_id_book_id",
                table: "book_loans",
                columns: new[] { "user_id", "book_id" });

            migrationBuilder.AddForeignKey(
                name: "fk_book_authors_authors_authors_id",
                table: "book_authors",
                column: "authors_id",
                principalTable: "authors",
                principalColumn: "id",
                onDelete: ReferentialAction.Restrict);

            migrationBuilder.AddForeignKey(
                name: "fk_book_categories_categories_categories_id",
                table: "book_categories",
                column: "categories_id",
                principalTable: "categories",
                principalColumn: "id",
                onDelete: ReferentialAction.Restrict);

            // Full-text search: English stemming with accents folded ("García" finds "Garcia"),
            // weighted title (A) > subtitle, authors (B) > description (C); and a lower-cased,
            // unaccented text of title, subtitle and authors for trigram typo tolerance. Both are
            // filled by refresh_book_search(), which every catalog write calls in its transaction.
            migrationBuilder.Sql("""
                CREATE EXTENSION IF NOT EXISTS unaccent;
                CREATE EXTENSION IF NOT EXISTS pg_trgm;
                CREATE TEXT SEARCH CONFIGURATION library_english (COPY = english);
                ALTER TEXT SEARCH CONFIGURATION library_english
                    ALTER MAPPING FOR hword, hword_part, word WITH unaccent, english_stem;

                ALTER TABLE books ADD COLUMN search_vector tsvector NOT NULL DEFAULT ''::tsvector;
                ALTER TABLE books ADD COLUMN search_text text NOT NULL DEFAULT '';
                CREATE INDEX ix_books_search_vector ON books USING gin (search_vector);
                CREATE INDEX ix_books_search_text_trgm ON books USING gin (search_text gin_trgm_ops);
                CREATE INDEX ix_books_publisher_lower ON books (lower(publisher));

                CREATE FUNCTION refresh_book_search(ids uuid[]) RETURNS void LANGUAGE sql AS $$
                    UPDATE books b SET
                        search_vector =
                            setweight(to_tsvector('library_english', b.title), 'A') ||
                            setweight(to_tsvector('library_english', coalesce(b.subtitle, '')), 'B') ||
                            setweight(to_tsvector('library_english', coalesce(a.names, '')), 'B') ||
                            setweight(to_tsvector('library_english', coalesce(b.description, '')), 'C'),
                        search_text = lower(unaccent(concat_ws(' ', b.title, b.subtitle, a.names)))
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
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("""
                DROP FUNCTION IF EXISTS refresh_book_search(uuid[]);
                ALTER TABLE books DROP COLUMN IF EXISTS search_vector;
                ALTER TABLE books DROP COLUMN IF EXISTS search_text;
                DROP INDEX IF EXISTS ix_books_publisher_lower;
                DROP TEXT SEARCH CONFIGURATION IF EXISTS library_english;
                """);
            migrationBuilder.DropForeignKey(
                name: "fk_book_authors_authors_authors_id",
                table: "book_authors");

            migrationBuilder.DropForeignKey(
                name: "fk_book_categories_categories_categories_id",
                table: "book_categories");

            migrationBuilder.DropTable(
                name: "book_loans");

            migrationBuilder.DropIndex(
                name: "ix_books_language",
                table: "books");

            migrationBuilder.DropIndex(
                name: "ix_books_published_year",
                table: "books");

            migrationBuilder.DropIndex(
                name: "ix_books_recent_loans_title",
                table: "books");

            migrationBuilder.DropIndex(
                name: "ix_books_title_id",
                table: "books");

            migrationBuilder.DropColumn(
                name: "availability_version",
                table: "books");

            migrationBuilder.DropColumn(
                name: "recent_loans",
                table: "books");

            migrationBuilder.DropColumn(
                name: "version",
                table: "books");

            migrationBuilder.CreateIndex(
                name: "ix_books_title",
                table: "books",
                column: "title");

            migrationBuilder.AddForeignKey(
                name: "fk_book_authors_authors_authors_id",
                table: "book_authors",
                column: "authors_id",
                principalTable: "authors",
                principalColumn: "id",
                onDelete: ReferentialAction.Cascade);

            migrationBuilder.AddForeignKey(
                name: "fk_book_categories_categories_categories_id",
                table: "book_categories",
                column: "categories_id",
                principalTable: "categories",
                principalColumn: "id",
                onDelete: ReferentialAction.Cascade);
        }
    }
}
