using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Library.BookService.Data.Migrations
{
    /// <inheritdoc />
    public partial class SearchHeadlineIndex : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            // HAND-WRITTEN (not in the EF model, like search_vector): the title, subtitle and author
            // part of search_vector (weights A and B), GIN-indexed, so a broad search takes its
            // candidates from the matches whose headline holds the query without reading the others
            // (CatalogQuery.BoundedRankedPage; bench/README.md, search at scale, eighth pass). An
            // expression index: PostgreSQL keeps it with every write of search_vector, nothing else
            // to maintain. 2.6 MB at 100,000 titles (the whole vector's index: 16 MB).
            migrationBuilder.Sql("CREATE INDEX ix_books_search_headline ON books USING gin (ts_filter(search_vector, '{a,b}'));");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("DROP INDEX IF EXISTS ix_books_search_headline;");
        }
    }
}
