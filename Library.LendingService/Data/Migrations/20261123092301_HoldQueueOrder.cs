using Microsoft.EntityFrameworkCore.Migrations;
using Npgsql.EntityFrameworkCore.PostgreSQL.Metadata;

#nullable disable

namespace Library.LendingService.Data.Migrations
{
    /// <inheritdoc />
    public partial class HoldQueueOrder : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_holds_book_id_status_placed_at",
                table: "holds");

            migrationBuilder.AddColumn<long>(
                name: "sequence",
                table: "holds",
                type: "bigint",
                nullable: false,
                defaultValue: 0L)
                .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityAlwaysColumn);

            migrationBuilder.CreateIndex(
                name: "ix_holds_book_id_status_sequence",
                table: "holds",
                columns: new[] { "book_id", "status", "sequence" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_holds_book_id_status_sequence",
                table: "holds");

            migrationBuilder.DropColumn(
                name: "sequence",
                table: "holds");

            migrationBuilder.CreateIndex(
                name: "ix_holds_book_id_status_placed_at",
                table: "holds",
                columns: new[] { "book_id", "status", "placed_at" });
        }
    }
}
