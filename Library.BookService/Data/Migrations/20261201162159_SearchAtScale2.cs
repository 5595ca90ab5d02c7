using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Library.BookService.Data.Migrations
{
    /// <inheritdoc />
    public partial class SearchAtScale2 : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_book_categories_categories_id",
                table: "book_categories");

            migrationBuilder.CreateIndex(
                name: "ix_book_categories_categories_id_books_id",
                table: "book_categories",
                columns: new[] { "categories_id", "books_id" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_book_categories_categories_id_books_id",
                table: "book_categories");

            migrationBuilder.CreateIndex(
                name: "ix_book_categories_categories_id",
                table: "book_categories",
                column: "categories_id");
        }
    }
}
