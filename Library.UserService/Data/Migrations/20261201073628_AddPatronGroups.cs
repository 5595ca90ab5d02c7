using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Library.UserService.Data.Migrations
{
    /// <inheritdoc />
    public partial class AddPatronGroups : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            // In place on a running database: the table, the initial default group, every
            // existing user in it, and only then the column becomes NOT NULL.
            migrationBuilder.CreateTable(
                name: "patron_groups",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "uuid", nullable: false),
                    name = table.Column<string>(type: "character varying(50)", maxLength: 50, nullable: false),
                    normalized_name = table.Column<string>(type: "character varying(50)", maxLength: 50, nullable: false),
                    description = table.Column<string>(type: "character varying(500)", maxLength: 500, nullable: true),
                    created_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    updated_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    version = table.Column<long>(type: "bigint", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_patron_groups", x => x.id);
                });

            migrationBuilder.CreateIndex(
                name: "ix_patron_groups_normalized_name",
                table: "patron_groups",
                column: "normalized_name",
                unique: true);

            // The initial default group (PatronGroups:Default's default), with a fixed id:
            // DefaultPatronGroup.InitialId.
            migrationBuilder.Sql(
                "INSERT INTO patron_groups (id, name, normalized_name, description, created_at, updated_at, version) " +
                "VALUES ('019ab000-0000-7000-8000-000000000001', 'patron', 'patron', 'Readers of the library', now(), now(), 1) " +
                "ON CONFLICT DO NOTHING;");

            migrationBuilder.AddColumn<Guid>(
                name: "patron_group_id",
                table: "users",
                type: "uuid",
                nullable: true);

            migrationBuilder.Sql("UPDATE users SET patron_group_id = '019ab000-0000-7000-8000-000000000001' WHERE patron_group_id IS NULL;");

            migrationBuilder.AlterColumn<Guid>(
                name: "patron_group_id",
                table: "users",
                type: "uuid",
                nullable: false,
                oldClrType: typeof(Guid),
                oldType: "uuid",
                oldNullable: true);

            migrationBuilder.CreateIndex(
                name: "ix_users_patron_group_id",
                table: "users",
                column: "patron_group_id");

            migrationBuilder.AddForeignKey(
                name: "fk_users_patron_groups_patron_group_id",
                table: "users",
                column: "patron_group_id",
                principalTable: "patron_groups",
                principalColumn: "id",
                onDelete: ReferentialAction.Restrict);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropForeignKey(
                name: "fk_users_patron_groups_patron_group_id",
                table: "users");

            migrationBuilder.DropTable(
                name: "patron_groups");

            migrationBuilder.DropIndex(
                name: "ix_users_patron_group_id",
                table: "users");

            migrationBuilder.DropColumn(
                name: "patron_group_id",
                table: "users");
        }
    }
}
