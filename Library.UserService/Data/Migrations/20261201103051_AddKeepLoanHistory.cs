using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Library.UserService.Data.Migrations
{
    /// <inheritdoc />
    public partial class AddKeepLoanHistory : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<bool>(
                name: "keep_loan_history",
                table: "users",
                type: "boolean",
                nullable: false,
                defaultValue: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "keep_loan_history",
                table: "users");
        }
    }
}
