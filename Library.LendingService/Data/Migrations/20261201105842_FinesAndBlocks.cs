using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Library.LendingService.Data.Migrations
{
    /// <inheritdoc />
    public partial class FinesAndBlocks : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "blocks",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "uuid", nullable: false),
                    user_id = table.Column<Guid>(type: "uuid", nullable: false),
                    reason = table.Column<string>(type: "character varying(500)", maxLength: 500, nullable: false),
                    expires_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    borrowing = table.Column<bool>(type: "boolean", nullable: false),
                    renewals = table.Column<bool>(type: "boolean", nullable: false),
                    holds = table.Column<bool>(type: "boolean", nullable: false),
                    created_by = table.Column<Guid>(type: "uuid", nullable: false),
                    created_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_blocks", x => x.id);
                    table.CheckConstraint("ck_blocks_stops_something", "borrowing OR renewals OR holds");
                });

            migrationBuilder.CreateTable(
                name: "fines",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "uuid", nullable: false),
                    user_id = table.Column<Guid>(type: "uuid", nullable: false),
                    loan_id = table.Column<Guid>(type: "uuid", nullable: true),
                    book_id = table.Column<Guid>(type: "uuid", nullable: false),
                    title = table.Column<string>(type: "character varying(500)", maxLength: 500, nullable: false),
                    kind = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    amount = table.Column<long>(type: "bigint", nullable: false),
                    paid_amount = table.Column<long>(type: "bigint", nullable: false),
                    status = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    created_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    closed_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_fines", x => x.id);
                    table.CheckConstraint("ck_fines_amounts", "amount > 0 AND paid_amount >= 0 AND paid_amount <= amount");
                    table.CheckConstraint("ck_fines_kind", "kind IN ('overdue', 'lost')");
                    table.CheckConstraint("ck_fines_status", "status IN ('open', 'paid', 'waived')");
                    table.ForeignKey(
                        name: "fk_fines_loans_loan_id",
                        column: x => x.loan_id,
                        principalTable: "loans",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Restrict);
                });

            migrationBuilder.CreateTable(
                name: "fine_transactions",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "uuid", nullable: false),
                    fine_id = table.Column<Guid>(type: "uuid", nullable: false),
                    kind = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    amount = table.Column<long>(type: "bigint", nullable: false),
                    created_by = table.Column<Guid>(type: "uuid", nullable: false),
                    reason = table.Column<string>(type: "character varying(500)", maxLength: 500, nullable: true),
                    created_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_fine_transactions", x => x.id);
                    table.CheckConstraint("ck_fine_transactions_amount", "amount > 0");
                    table.CheckConstraint("ck_fine_transactions_kind", "kind IN ('payment', 'waiver')");
                    table.ForeignKey(
                        name: "fk_fine_transactions_fines_fine_id",
                        column: x => x.fine_id,
                        principalTable: "fines",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "ix_blocks_user_id",
                table: "blocks",
                column: "user_id");

            migrationBuilder.CreateIndex(
                name: "ix_fine_transactions_created_at",
                table: "fine_transactions",
                column: "created_at");

            migrationBuilder.CreateIndex(
                name: "ix_fine_transactions_fine_id",
                table: "fine_transactions",
                column: "fine_id");

            migrationBuilder.CreateIndex(
                name: "ix_fines_created_at",
                table: "fines",
                column: "created_at");

            migrationBuilder.CreateIndex(
                name: "ix_fines_loan_id",
                table: "fines",
                column: "loan_id");

            migrationBuilder.CreateIndex(
                name: "ix_fines_user_id_status",
                table: "fines",
                columns: new[] { "user_id", "status" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "blocks");

            migrationBuilder.DropTable(
                name: "fine_transactions");

            migrationBuilder.DropTable(
                name: "fines");
        }
    }
}
