using Microsoft.EntityFrameworkCore.Migrations;
using Npgsql.EntityFrameworkCore.PostgreSQL.Metadata;

#nullable disable

namespace Library.BookService.Data.Migrations
{
    /// <inheritdoc />
    public partial class SearchAtScale : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_books_recent_loans_title",
                table: "books");

            migrationBuilder.CreateIndex(
                name: "ix_books_published_year_created_at_id",
                table: "books",
                columns: new[] { "published_year", "created_at", "id" },
                descending: new[] { true, true, false })
                .Annotation("Npgsql:IndexNullSortOrder", new[] { NullSortOrder.NullsLast, NullSortOrder.NullsFirst, NullSortOrder.NullsLast });

            migrationBuilder.CreateIndex(
                name: "ix_books_recent_loans_title_id",
                table: "books",
                columns: new[] { "recent_loans", "title", "id" },
                descending: new[] { true, false, false });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_books_published_year_created_at_id",
                table: "books");

            migrationBuilder.DropIndex(
                name: "ix_books_recent_loans_title_id",
                table: "books");

            migrationBuilder.CreateIndex(
                name: "ix_books_recent_loans_title",
                table: "books",
                columns: new[] { "recent_loans", "title" });
        }
    }
}
