using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Library.LendingService.Data.Migrations
{
    /// <inheritdoc />
    public partial class TitleCopyCounts : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<int>(
                name: "copies_on_shelf",
                table: "titles",
                type: "integer",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.AddColumn<int>(
                name: "loanable_copies",
                table: "titles",
                type: "integer",
                nullable: false,
                defaultValue: 0);

            // The counts are kept from here on (Shelf.CountsTriggerSql). The triggers come before
            // the first count: creating them locks copies against writes until this migration
            // commits, so no change falls between the count and the first statement they see.
            migrationBuilder.Sql($"""
                CREATE FUNCTION copies_keep_title_counts() RETURNS trigger LANGUAGE plpgsql AS $$
                {Library.LendingService.Copies.Shelf.CountsTriggerSql()}
                $$;
                CREATE TRIGGER copies_counts_insert AFTER INSERT ON copies REFERENCING NEW TABLE AS new_rows
                  FOR EACH STATEMENT EXECUTE FUNCTION copies_keep_title_counts();
                CREATE TRIGGER copies_counts_update AFTER UPDATE ON copies REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                  FOR EACH STATEMENT EXECUTE FUNCTION copies_keep_title_counts();
                CREATE TRIGGER copies_counts_delete AFTER DELETE ON copies REFERENCING OLD TABLE AS old_rows
                  FOR EACH STATEMENT EXECUTE FUNCTION copies_keep_title_counts();
                UPDATE titles t SET loanable_copies = c.total, copies_on_shelf = c.on_shelf
                FROM (SELECT book_id, sum(total)::int AS total, sum(on_shelf)::int AS on_shelf
                      FROM ({Library.LendingService.Copies.Shelf.CountedSql("copies", "+")}) AS counted GROUP BY book_id) AS c
                WHERE t.id = c.book_id;
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("""
                DROP TRIGGER copies_counts_insert ON copies;
                DROP TRIGGER copies_counts_update ON copies;
                DROP TRIGGER copies_counts_delete ON copies;
                DROP FUNCTION copies_keep_title_counts();
                """);

            migrationBuilder.DropColumn(
                name: "copies_on_shelf",
                table: "titles");

            migrationBuilder.DropColumn(
                name: "loanable_copies",
                table: "titles");
        }
    }
}
