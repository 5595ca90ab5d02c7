using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Library.LendingService.Data.Migrations
{
    /// <inheritdoc />
    public partial class CopiesOnShelfIndex : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateIndex(
                name: "ix_copies_on_shelf",
                table: "copies",
                columns: new[] { "book_id", "loan_type", "created_at", "id" },
                filter: "status = 'available'");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_copies_on_shelf",
                table: "copies");
        }
    }
}
