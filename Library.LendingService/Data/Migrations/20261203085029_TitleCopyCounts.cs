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

            // The counts are kept from here on. The SQL is frozen here, as this migration ran it:
            // Shelf.CountsTriggerSql is the definition the code holds today, and a test
            // (UpgradeTests) fails when the two differ, so a change to it ships in a new migration
            // (CREATE OR REPLACE FUNCTION, then a recount). The triggers come before the first
            // count: creating them locks copies against writes until this migration commits, so no
            // change falls between the count and the first statement they see.
            migrationBuilder.Sql($"""
                CREATE FUNCTION copies_keep_title_counts() RETURNS trigger LANGUAGE plpgsql AS $$
                {TriggerFunction}
                $$;
                CREATE TRIGGER copies_counts_insert AFTER INSERT ON copies REFERENCING NEW TABLE AS new_rows
                  FOR EACH STATEMENT EXECUTE FUNCTION copies_keep_title_counts();
                CREATE TRIGGER copies_counts_update AFTER UPDATE ON copies REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                  FOR EACH STATEMENT EXECUTE FUNCTION copies_keep_title_counts();
                CREATE TRIGGER copies_counts_delete AFTER DELETE ON copies REFERENCING OLD TABLE AS old_rows
                  FOR EACH STATEMENT EXECUTE FUNCTION copies_keep_title_counts();
                CREATE TRIGGER copies_counts_truncate AFTER TRUNCATE ON copies
                  FOR EACH STATEMENT EXECUTE FUNCTION copies_keep_title_counts();
                UPDATE titles t SET loanable_copies = c.total, copies_on_shelf = c.on_shelf
                FROM (SELECT book_id,
                             count(*) FILTER (WHERE status NOT IN ('withdrawn', 'lost') AND NOT withdraw_on_check_in)::int AS total,
                             count(*) FILTER (WHERE status = 'available')::int AS on_shelf
                      FROM copies WHERE loan_type IN ('standard', 'short-loan') GROUP BY book_id) AS c
                WHERE t.id = c.book_id;
                """);
        }

        /// <summary>The trigger function as this migration created it (see Up).</summary>
        internal const string TriggerFunction = """
            DECLARE
                d record;
            BEGIN
                IF TG_OP = 'TRUNCATE' THEN
                    UPDATE titles SET loanable_copies = 0, copies_on_shelf = 0 WHERE loanable_copies <> 0 OR copies_on_shelf <> 0;
                ELSIF TG_OP = 'INSERT' THEN
                    FOR d IN SELECT book_id, sum(total)::int AS total, sum(on_shelf)::int AS on_shelf
                             FROM (SELECT book_id, +(status NOT IN ('withdrawn', 'lost') AND NOT withdraw_on_check_in)::int AS total,
                                          +(status = 'available')::int AS on_shelf
                                   FROM new_rows WHERE loan_type IN ('standard', 'short-loan')) AS changes
                             GROUP BY book_id HAVING sum(total) <> 0 OR sum(on_shelf) <> 0 ORDER BY book_id LOOP
                        UPDATE titles SET loanable_copies = loanable_copies + d.total, copies_on_shelf = copies_on_shelf + d.on_shelf
                        WHERE id = d.book_id;
                    END LOOP;
                ELSIF TG_OP = 'DELETE' THEN
                    FOR d IN SELECT book_id, sum(total)::int AS total, sum(on_shelf)::int AS on_shelf
                             FROM (SELECT book_id, -(status NOT IN ('withdrawn', 'lost') AND NOT withdraw_on_check_in)::int AS total,
                                          -(status = 'available')::int AS on_shelf
                                   FROM old_rows WHERE loan_type IN ('standard', 'short-loan')) AS changes
                             GROUP BY book_id HAVING sum(total) <> 0 OR sum(on_shelf) <> 0 ORDER BY book_id LOOP
                        UPDATE titles SET loanable_copies = loanable_copies + d.total, copies_on_shelf = copies_on_shelf + d.on_shelf
                        WHERE id = d.book_id;
                    END LOOP;
                ELSE
                    FOR d IN SELECT book_id, sum(total)::int AS total, sum(on_shelf)::int AS on_shelf
                             FROM (SELECT book_id, +(status NOT IN ('withdrawn', 'lost') AND NOT withdraw_on_check_in)::int AS total,
                                          +(status = 'available')::int AS on_shelf
                                   FROM new_rows WHERE loan_type IN ('standard', 'short-loan')
                                   UNION ALL
                                   SELECT book_id, -(status NOT IN ('withdrawn', 'lost') AND NOT withdraw_on_check_in)::int AS total,
                                          -(status = 'available')::int AS on_shelf
                                   FROM old_rows WHERE loan_type IN ('standard', 'short-loan')) AS changes
                             GROUP BY book_id HAVING sum(total) <> 0 OR sum(on_shelf) <> 0 ORDER BY book_id LOOP
                        UPDATE titles SET loanable_copies = loanable_copies + d.total, copies_on_shelf = copies_on_shelf + d.on_shelf
                        WHERE id = d.book_id;
                    END LOOP;
                END IF;
                RETURN NULL;
            END;
            """;

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("""
                DROP TRIGGER copies_counts_insert ON copies;
                DROP TRIGGER copies_counts_update ON copies;
                DROP TRIGGER copies_counts_delete ON copies;
                DROP TRIGGER copies_counts_truncate ON copies;
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
