using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Library.LendingService.Data.Migrations
{
    /// <inheritdoc />
    public partial class CopiesRulesCalendar : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<Guid>(
                name: "patron_group_id",
                table: "readers",
                type: "uuid",
                nullable: true);

            migrationBuilder.AddColumn<Guid>(
                name: "copy_id",
                table: "loans",
                type: "uuid",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "rule_index",
                table: "loans",
                type: "integer",
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "rule_version",
                table: "loans",
                type: "bigint",
                nullable: true);

            migrationBuilder.AddColumn<Guid>(
                name: "copy_id",
                table: "holds",
                type: "uuid",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "circulation_settings",
                columns: table => new
                {
                    kind = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    version = table.Column<long>(type: "bigint", nullable: false),
                    document = table.Column<string>(type: "jsonb", nullable: false),
                    changed_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    changed_by = table.Column<Guid>(type: "uuid", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_circulation_settings", x => new { x.kind, x.version });
                });

            migrationBuilder.CreateTable(
                name: "copies",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "uuid", nullable: false),
                    book_id = table.Column<Guid>(type: "uuid", nullable: false),
                    barcode = table.Column<string>(type: "character varying(32)", maxLength: 32, nullable: false),
                    call_number = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: true),
                    location = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: true),
                    loan_type = table.Column<string>(type: "character varying(32)", maxLength: 32, nullable: false),
                    status = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    withdraw_on_check_in = table.Column<bool>(type: "boolean", nullable: false),
                    created_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    updated_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_copies", x => x.id);
                    table.CheckConstraint("ck_copies_barcode", "barcode ~ '^[A-Za-z0-9-]{1,32}$'");
                    table.CheckConstraint("ck_copies_loan_type", "loan_type IN ('standard', 'short-loan', 'reference')");
                    table.CheckConstraint("ck_copies_status", "status IN ('available', 'checked-out', 'awaiting-pickup', 'missing', 'in-repair', 'withdrawn', 'lost')");
                    table.ForeignKey(
                        name: "fk_copies_titles_book_id",
                        column: x => x.book_id,
                        principalTable: "titles",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Restrict);
                });

            migrationBuilder.CreateTable(
                name: "patron_groups",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "uuid", nullable: false),
                    name = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    version = table.Column<long>(type: "bigint", nullable: false),
                    deleted = table.Column<bool>(type: "boolean", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_patron_groups", x => x.id);
                });

            migrationBuilder.CreateIndex(
                name: "ix_loans_copy_id_open",
                table: "loans",
                column: "copy_id",
                unique: true,
                filter: "returned_at IS NULL");

            migrationBuilder.CreateIndex(
                name: "ix_holds_copy_id_ready",
                table: "holds",
                column: "copy_id",
                unique: true,
                filter: "status = 'ready'");

            migrationBuilder.CreateIndex(
                name: "ix_copies_book_id_status",
                table: "copies",
                columns: new[] { "book_id", "status" });

            migrationBuilder.AddForeignKey(
                name: "fk_holds_copies_copy_id",
                table: "holds",
                column: "copy_id",
                principalTable: "copies",
                principalColumn: "id",
                onDelete: ReferentialAction.Restrict);

            migrationBuilder.AddForeignKey(
                name: "fk_loans_copies_copy_id",
                table: "loans",
                column: "copy_id",
                principalTable: "copies",
                principalColumn: "id",
                onDelete: ReferentialAction.Restrict);

            // uuid_v7(): time-ordered IDs as the services make them (PostgreSQL 15 has only v4).
            migrationBuilder.Sql("""
                CREATE FUNCTION uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
                  SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING
                    substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
                $$;
                """);
            // Generated barcodes (the stock raised, or copies made by this migration): LIB and a
            // number, skipping any a librarian already gave by hand.
            migrationBuilder.Sql("""
                CREATE SEQUENCE copy_barcodes;
                CREATE FUNCTION next_copy_barcode() RETURNS text LANGUAGE plpgsql VOLATILE AS $$
                DECLARE candidate text;
                BEGIN
                  LOOP
                    candidate := 'LIB' || lpad(nextval('copy_barcodes')::text, 8, '0');
                    EXIT WHEN NOT EXISTS (SELECT 1 FROM copies WHERE lower(barcode) = lower(candidate));
                  END LOOP;
                  RETURN candidate;
                END $$;
                """);
            migrationBuilder.Sql("CREATE UNIQUE INDEX ix_copies_barcode ON copies (lower(barcode));");
            // The copy status transitions, from the same table the code checks (CopyStatus.Transitions).
            migrationBuilder.Sql($"""
                CREATE FUNCTION copies_check_status_transition() RETURNS trigger LANGUAGE plpgsql AS $$
                {Library.LendingService.Copies.CopyStatus.TransitionCheckSql()}
                $$;
                CREATE TRIGGER copies_status_transition BEFORE UPDATE OF status ON copies
                  FOR EACH ROW EXECUTE FUNCTION copies_check_status_transition();
                """);

            // Upgrade in place: every title gets copies for what it had. Each open loan gets a copy
            // checked out to it (marked for withdrawal at check-in where the stock had been lowered
            // below the loans), each ready hold a copy set aside, and the rest of the stock copies
            // on the shelf; availability is what it was.
            migrationBuilder.Sql("""
                CREATE TEMPORARY TABLE migrated_loans ON COMMIT DROP AS
                  SELECT l.id AS loan_id, uuid_v7() AS copy_id, l.book_id, l.borrowed_at,
                         row_number() OVER (PARTITION BY l.book_id ORDER BY l.borrowed_at, l.id) AS n
                  FROM loans l WHERE l.returned_at IS NULL;
                INSERT INTO copies (id, book_id, barcode, loan_type, status, withdraw_on_check_in, created_at, updated_at)
                  SELECT m.copy_id, m.book_id, next_copy_barcode(), 'standard', 'checked-out', m.n > t.total_copies, m.borrowed_at, now()
                  FROM migrated_loans m JOIN titles t ON t.id = m.book_id ORDER BY m.book_id, m.n;
                UPDATE loans SET copy_id = m.copy_id FROM migrated_loans m WHERE loans.id = m.loan_id;

                CREATE TEMPORARY TABLE migrated_holds ON COMMIT DROP AS
                  SELECT h.id AS hold_id, uuid_v7() AS copy_id, h.book_id,
                         (SELECT count(*) FROM loans l WHERE l.book_id = h.book_id AND l.returned_at IS NULL)
                           + row_number() OVER (PARTITION BY h.book_id ORDER BY h.sequence) AS n
                  FROM holds h WHERE h.status = 'ready';
                INSERT INTO copies (id, book_id, barcode, loan_type, status, withdraw_on_check_in, created_at, updated_at)
                  SELECT m.copy_id, m.book_id, next_copy_barcode(), 'standard', 'awaiting-pickup', m.n > t.total_copies, now(), now()
                  FROM migrated_holds m JOIN titles t ON t.id = m.book_id ORDER BY m.book_id, m.n;
                UPDATE holds SET copy_id = m.copy_id FROM migrated_holds m WHERE holds.id = m.hold_id;

                INSERT INTO copies (id, book_id, barcode, loan_type, status, withdraw_on_check_in, created_at, updated_at)
                  SELECT uuid_v7(), t.id, next_copy_barcode(), 'standard', 'available', FALSE, now(), now()
                  FROM titles t
                  CROSS JOIN LATERAL generate_series(1, greatest(0, t.total_copies
                    - (SELECT count(*) FROM loans l WHERE l.book_id = t.id AND l.returned_at IS NULL)
                    - (SELECT count(*) FROM holds h WHERE h.book_id = t.id AND h.status = 'ready'))::int)
                  WHERE NOT t.deleted
                  ORDER BY t.id;
                """);

            migrationBuilder.DropCheckConstraint(
                name: "ck_titles_held",
                table: "titles");

            migrationBuilder.DropCheckConstraint(
                name: "ck_titles_on_loan",
                table: "titles");

            migrationBuilder.DropCheckConstraint(
                name: "ck_titles_total",
                table: "titles");

            migrationBuilder.DropColumn(
                name: "held",
                table: "titles");

            migrationBuilder.DropColumn(
                name: "on_loan",
                table: "titles");

            migrationBuilder.DropColumn(
                name: "total_copies",
                table: "titles");

        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            // Going back loses the copies (titles get a total of 0: the catalog's next stock change sets it).
            migrationBuilder.Sql("""
                DROP TRIGGER copies_status_transition ON copies;
                DROP FUNCTION copies_check_status_transition();
                DROP FUNCTION next_copy_barcode();
                DROP SEQUENCE copy_barcodes;
                DROP FUNCTION uuid_v7();
                """);
            migrationBuilder.DropForeignKey(
                name: "fk_holds_copies_copy_id",
                table: "holds");

            migrationBuilder.DropForeignKey(
                name: "fk_loans_copies_copy_id",
                table: "loans");

            migrationBuilder.DropTable(
                name: "circulation_settings");

            migrationBuilder.DropTable(
                name: "copies");

            migrationBuilder.DropTable(
                name: "patron_groups");

            migrationBuilder.DropIndex(
                name: "ix_loans_copy_id_open",
                table: "loans");

            migrationBuilder.DropIndex(
                name: "ix_holds_copy_id_ready",
                table: "holds");

            migrationBuilder.DropColumn(
                name: "patron_group_id",
                table: "readers");

            migrationBuilder.DropColumn(
                name: "copy_id",
                table: "loans");

            migrationBuilder.DropColumn(
                name: "rule_index",
                table: "loans");

            migrationBuilder.DropColumn(
                name: "rule_version",
                table: "loans");

            migrationBuilder.DropColumn(
                name: "copy_id",
                table: "holds");

            migrationBuilder.AddColumn<int>(
                name: "held",
                table: "titles",
                type: "integer",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.AddColumn<int>(
                name: "on_loan",
                table: "titles",
                type: "integer",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.AddColumn<int>(
                name: "total_copies",
                table: "titles",
                type: "integer",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.AddCheckConstraint(
                name: "ck_titles_held",
                table: "titles",
                sql: "held >= 0");

            migrationBuilder.AddCheckConstraint(
                name: "ck_titles_on_loan",
                table: "titles",
                sql: "on_loan >= 0");

            migrationBuilder.AddCheckConstraint(
                name: "ck_titles_total",
                table: "titles",
                sql: "total_copies >= 0");
        }
    }
}
