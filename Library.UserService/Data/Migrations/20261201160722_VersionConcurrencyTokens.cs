using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Library.UserService.Data.Migrations
{
    /// <summary>
    /// Nothing in the schema: users' and patron groups' <c>version</c> become concurrency tokens
    /// in the model (EF Core adds <c>WHERE version = @read</c> to their writes), which the model
    /// snapshot records.
    /// </summary>
    public partial class VersionConcurrencyTokens : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {

        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {

        }
    }
}
