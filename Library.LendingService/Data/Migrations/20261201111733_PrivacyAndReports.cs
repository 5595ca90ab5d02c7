using System;
using Microsoft.EntityFrameworkCore.Migrations;
using Npgsql.EntityFrameworkCore.PostgreSQL.Metadata;

#nullable disable

namespace Library.LendingService.Data.Migrations
{
    /// <inheritdoc />
    public partial class PrivacyAndReports : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<bool>(
                name: "keep_loan_history",
                table: "readers",
                type: "boolean",
                nullable: false,
                defaultValue: true);

            migrationBuilder.AlterColumn<Guid>(
                name: "user_id",
                table: "loans",
                type: "uuid",
                nullable: true,
                oldClrType: typeof(Guid),
                oldType: "uuid");

            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "anonymised_at",
                table: "loans",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.AlterColumn<Guid>(
                name: "user_id",
                table: "holds",
                type: "uuid",
                nullable: true,
                oldClrType: typeof(Guid),
                oldType: "uuid");

            migrationBuilder.AlterColumn<Guid>(
                name: "user_id",
                table: "fines",
                type: "uuid",
                nullable: true,
                oldClrType: typeof(Guid),
                oldType: "uuid");

            migrationBuilder.CreateTable(
                name: "loan_renewals",
                columns: table => new
                {
                    id = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityAlwaysColumn),
                    loan_id = table.Column<Guid>(type: "uuid", nullable: false),
                    book_id = table.Column<Guid>(type: "uuid", nullable: false),
                    renewed_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    due_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_loan_renewals", x => x.id);
                    table.ForeignKey(
                        name: "fk_loan_renewals_loans_loan_id",
                        column: x => x.loan_id,
                        principalTable: "loans",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "ix_loans_anonymised_at",
                table: "loans",
                column: "anonymised_at",
                filter: "anonymised_at IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "ix_loans_borrowed_at",
                table: "loans",
                column: "borrowed_at");

            migrationBuilder.CreateIndex(
                name: "ix_loans_due_at_all",
                table: "loans",
                column: "due_at");

            migrationBuilder.CreateIndex(
                name: "ix_loans_returned_at",
                table: "loans",
                column: "returned_at");

            migrationBuilder.CreateIndex(
                name: "ix_loans_to_anonymise",
                table: "loans",
                column: "returned_at",
                filter: "returned_at IS NOT NULL AND anonymised_at IS NULL");

            migrationBuilder.AddCheckConstraint(
                name: "ck_loans_user",
                table: "loans",
                sql: "user_id IS NOT NULL OR (returned_at IS NOT NULL AND anonymised_at IS NOT NULL)");

            migrationBuilder.CreateIndex(
                name: "ix_holds_closed_at",
                table: "holds",
                column: "closed_at",
                filter: "status = 'fulfilled'");

            migrationBuilder.CreateIndex(
                name: "ix_holds_placed_at",
                table: "holds",
                column: "placed_at");

            migrationBuilder.AddCheckConstraint(
                name: "ck_holds_user",
                table: "holds",
                sql: "user_id IS NOT NULL OR status = 'fulfilled'");

            migrationBuilder.CreateIndex(
                name: "ix_loan_renewals_loan_id",
                table: "loan_renewals",
                column: "loan_id");

            migrationBuilder.CreateIndex(
                name: "ix_loan_renewals_renewed_at",
                table: "loan_renewals",
                column: "renewed_at");

            // Hand-written (privacy): the anonymiser finds the sent events of the loans and holds it
            // anonymises by their loanId and holdId (LoanAnonymiser), among a week of the outbox.
            migrationBuilder.Sql("CREATE INDEX ix_outbox_messages_loan_id ON outbox_messages ((payload->>'loanId'));");
            migrationBuilder.Sql("CREATE INDEX ix_outbox_messages_hold_id ON outbox_messages ((payload->>'holdId'));");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("DROP INDEX ix_outbox_messages_loan_id;");
            migrationBuilder.Sql("DROP INDEX ix_outbox_messages_hold_id;");

            migrationBuilder.DropTable(
                name: "loan_renewals");

            migrationBuilder.DropIndex(
                name: "ix_loans_anonymised_at",
                table: "loans");

            migrationBuilder.DropIndex(
                name: "ix_loans_borrowed_at",
                table: "loans");

            migrationBuilder.DropIndex(
                name: "ix_loans_due_at_all",
                table: "loans");

            migrationBuilder.DropIndex(
                name: "ix_loans_returned_at",
                table: "loans");

            migrationBuilder.DropIndex(
                name: "ix_loans_to_anonymise",
                table: "loans");

            migrationBuilder.DropCheckConstraint(
                name: "ck_loans_user",
                table: "loans");

            migrationBuilder.DropIndex(
                name: "ix_holds_closed_at",
                table: "holds");

            migrationBuilder.DropIndex(
                name: "ix_holds_placed_at",
                table: "holds");

            migrationBuilder.DropCheckConstraint(
                name: "ck_holds_user",
                table: "holds");

            migrationBuilder.DropColumn(
                name: "keep_loan_history",
                table: "readers");

            migrationBuilder.DropColumn(
                name: "anonymised_at",
                table: "loans");

            migrationBuilder.AlterColumn<Guid>(
                name: "user_id",
                table: "loans",
                type: "uuid",
                nullable: false,
                defaultValue: new Guid("00000000-0000-0000-0000-000000000000"),
                oldClrType: typeof(Guid),
                oldType: "uuid",
                oldNullable: true);

            migrationBuilder.AlterColumn<Guid>(
                name: "user_id",
                table: "holds",
                type: "uuid",
                nullable: false,
                defaultValue: new Guid("00000000-0000-0000-0000-000000000000"),
                oldClrType: typeof(Guid),
                oldType: "uuid",
                oldNullable: true);

            migrationBuilder.AlterColumn<Guid>(
                name: "user_id",
                table: "fines",
                type: "uuid",
                nullable: false,
                defaultValue: new Guid("00000000-0000-0000-0000-000000000000"),
                oldClrType: typeof(Guid),
                oldType: "uuid",
                oldNullable: true);
        }
    }
}
