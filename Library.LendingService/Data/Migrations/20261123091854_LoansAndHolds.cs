using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Library.LendingService.Data.Migrations
{
    /// <inheritdoc />
    public partial class LoansAndHolds : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_loans_book_id_returned_at",
                table: "loans");

            migrationBuilder.DropColumn(
                name: "name",
                table: "readers");

            migrationBuilder.AddColumn<long>(
                name: "availability_version",
                table: "titles",
                type: "bigint",
                nullable: false,
                defaultValue: 0L);

            migrationBuilder.AddColumn<long>(
                name: "catalog_version",
                table: "titles",
                type: "bigint",
                nullable: false,
                defaultValue: 0L);

            migrationBuilder.AddColumn<bool>(
                name: "deleted",
                table: "titles",
                type: "boolean",
                nullable: false,
                defaultValue: false);

            migrationBuilder.AddColumn<int>(
                name: "held",
                table: "titles",
                type: "integer",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.AddColumn<string>(
                name: "first_name",
                table: "readers",
                type: "character varying(100)",
                maxLength: 100,
                nullable: false,
                defaultValue: "");

            migrationBuilder.AddColumn<string>(
                name: "last_name",
                table: "readers",
                type: "character varying(100)",
                maxLength: 100,
                nullable: false,
                defaultValue: "");

            migrationBuilder.AddColumn<long>(
                name: "version",
                table: "readers",
                type: "bigint",
                nullable: false,
                defaultValue: 0L);

            migrationBuilder.AddColumn<int>(
                name: "days",
                table: "loans",
                type: "integer",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "overdue_notified_at",
                table: "loans",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "holds",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "uuid", nullable: false),
                    book_id = table.Column<Guid>(type: "uuid", nullable: false),
                    user_id = table.Column<Guid>(type: "uuid", nullable: false),
                    status = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    placed_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    ready_until = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    closed_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_holds", x => x.id);
                    table.ForeignKey(
                        name: "fk_holds_titles_book_id",
                        column: x => x.book_id,
                        principalTable: "titles",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Restrict);
                });

            migrationBuilder.CreateTable(
                name: "idempotent_requests",
                columns: table => new
                {
                    user_id = table.Column<Guid>(type: "uuid", nullable: false),
                    key = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    operation = table.Column<string>(type: "character varying(50)", maxLength: 50, nullable: false),
                    status_code = table.Column<int>(type: "integer", nullable: false),
                    response = table.Column<string>(type: "jsonb", nullable: true),
                    location = table.Column<string>(type: "text", nullable: true),
                    created_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_idempotent_requests", x => new { x.user_id, x.key });
                });

            migrationBuilder.AddCheckConstraint(
                name: "ck_titles_held",
                table: "titles",
                sql: "held >= 0");

            migrationBuilder.AddCheckConstraint(
                name: "ck_titles_total",
                table: "titles",
                sql: "total_copies >= 0");

            migrationBuilder.CreateIndex(
                name: "ix_loans_book_id_returned_at_due_at",
                table: "loans",
                columns: new[] { "book_id", "returned_at", "due_at" });

            migrationBuilder.CreateIndex(
                name: "ix_loans_due_at",
                table: "loans",
                column: "due_at",
                filter: "returned_at IS NULL AND overdue_notified_at IS NULL");

            migrationBuilder.CreateIndex(
                name: "ix_holds_book_id_status_placed_at",
                table: "holds",
                columns: new[] { "book_id", "status", "placed_at" });

            migrationBuilder.CreateIndex(
                name: "ix_holds_book_id_user_id",
                table: "holds",
                columns: new[] { "book_id", "user_id" },
                unique: true,
                filter: "status IN ('waiting', 'ready')");

            migrationBuilder.CreateIndex(
                name: "ix_holds_ready_until",
                table: "holds",
                column: "ready_until",
                filter: "status = 'ready'");

            migrationBuilder.CreateIndex(
                name: "ix_holds_user_id",
                table: "holds",
                column: "user_id");

            migrationBuilder.CreateIndex(
                name: "ix_idempotent_requests_created_at",
                table: "idempotent_requests",
                column: "created_at");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "holds");

            migrationBuilder.DropTable(
                name: "idempotent_requests");

            migrationBuilder.DropCheckConstraint(
                name: "ck_titles_held",
                table: "titles");

            migrationBuilder.DropCheckConstraint(
                name: "ck_titles_total",
                table: "titles");

            migrationBuilder.DropIndex(
                name: "ix_loans_book_id_returned_at_due_at",
                table: "loans");

            migrationBuilder.DropIndex(
                name: "ix_loans_due_at",
                table: "loans");

            migrationBuilder.DropColumn(
                name: "availability_version",
                table: "titles");

            migrationBuilder.DropColumn(
                name: "catalog_version",
                table: "titles");

            migrationBuilder.DropColumn(
                name: "deleted",
                table: "titles");

            migrationBuilder.DropColumn(
                name: "held",
                table: "titles");

            migrationBuilder.DropColumn(
                name: "first_name",
                table: "readers");

            migrationBuilder.DropColumn(
                name: "last_name",
                table: "readers");

            migrationBuilder.DropColumn(
                name: "version",
                table: "readers");

            migrationBuilder.DropColumn(
                name: "days",
                table: "loans");

            migrationBuilder.DropColumn(
                name: "overdue_notified_at",
                table: "loans");

            migrationBuilder.AddColumn<string>(
                name: "name",
                table: "readers",
                type: "character varying(201)",
                maxLength: 201,
                nullable: false,
                defaultValue: "");

            migrationBuilder.CreateIndex(
                name: "ix_loans_book_id_returned_at",
                table: "loans",
                columns: new[] { "book_id", "returned_at" });
        }
    }
}
