using Library.LendingService.Data;
using Library.TestSupport;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Library.LendingService.Tests;

/// <summary>A running library upgrades in place: a database with loans and holds from before copies keeps them all.</summary>
public sealed class UpgradeTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The last migration before copies: what a running database has.</summary>
    private const string BeforeCopies = "20261123092301_HoldQueueOrder";

    [Fact]
    public async Task Titles_get_their_copies_every_loan_and_hold_keeps_its_copy_and_availability_is_unchanged()
    {
        await using var database = await TestDatabase.CreateAsync("lendingdb");
        var options = new DbContextOptionsBuilder<LendingDbContext>().UseNpgsql(database.ConnectionString).UseSnakeCaseNamingConvention().Options;
        await using var db = new LendingDbContext(options);
        var migrator = db.GetService<IMigrator>();
        await migrator.MigrateAsync(BeforeCopies, Ct);

        // Title A: 3 copies, 1 out, 1 set aside for a ready hold, 1 on the shelf, one reader waiting,
        // one loan returned long ago. Title B: stock lowered to 1 while 2 were out. Title C: deleted.
        Guid a = Guid.CreateVersion7(), b = Guid.CreateVersion7(), c = Guid.CreateVersion7(), reader = Guid.CreateVersion7();
        var now = DateTimeOffset.UtcNow;
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO readers (id, email, first_name, last_name, active, version) VALUES ({reader}, 'old@library.test', 'Old', 'Reader', TRUE, 1);
            INSERT INTO titles (id, name, total_copies, on_loan, held, availability_version, catalog_version, deleted) VALUES
              ({a}, 'Title A', 3, 1, 1, 7, 1, FALSE), ({b}, 'Title B', 1, 2, 0, 3, 2, FALSE), ({c}, 'Title C', 2, 0, 0, 1, 3, TRUE);
            INSERT INTO loans (id, book_id, user_id, days, borrowed_at, due_at, returned_at, renewals) VALUES
              ({Guid.CreateVersion7()}, {a}, {reader}, 14, {now.AddDays(-3)}, {now.AddDays(11)}, NULL, 0),
              ({Guid.CreateVersion7()}, {a}, {reader}, 14, {now.AddDays(-60)}, {now.AddDays(-46)}, {now.AddDays(-50)}, 0),
              ({Guid.CreateVersion7()}, {b}, {reader}, 14, {now.AddDays(-2)}, {now.AddDays(12)}, NULL, 0),
              ({Guid.CreateVersion7()}, {b}, {reader}, 14, {now.AddDays(-1)}, {now.AddDays(13)}, NULL, 1);
            INSERT INTO holds (id, book_id, user_id, status, placed_at, ready_until) VALUES
              ({Guid.CreateVersion7()}, {a}, {reader}, 'ready', {now.AddDays(-5)}, {now.AddDays(2)}),
              ({Guid.CreateVersion7()}, {a}, {Guid.CreateVersion7()}, 'waiting', {now.AddDays(-4)}, NULL);
            """, Ct);

        await migrator.MigrateAsync(null, Ct);

        Assert.Empty(await db.Database.GetPendingMigrationsAsync(Ct));
        var copies = await db.Copies.AsNoTracking().ToListAsync(Ct);
        var ofA = copies.Where(x => x.BookId == a).Select(x => x.Status).Order().ToList();
        Assert.Equal(["available", "awaiting-pickup", "checked-out"], ofA);
        var ofB = copies.Where(x => x.BookId == b).OrderBy(x => x.Barcode).ToList();
        Assert.Equal(["checked-out", "checked-out"], ofB.Select(x => x.Status));
        Assert.Equal(1, ofB.Count(x => x.WithdrawOnCheckIn)); // the stock was 1: one of the two goes at check-in
        Assert.DoesNotContain(copies, x => x.BookId == c);
        Assert.All(copies, x => Assert.Matches("^LIB[0-9]{8}$", x.Barcode));
        Assert.Equal(copies.Count, copies.Select(x => x.Barcode).Distinct().Count());

        var loans = await db.Loans.AsNoTracking().ToListAsync(Ct);
        Assert.Equal(4, loans.Count);
        Assert.All(loans.Where(l => l.ReturnedAt == null), l => Assert.NotNull(l.CopyId));
        Assert.Null(loans.Single(l => l.ReturnedAt != null).CopyId);
        var ready = await db.Holds.AsNoTracking().SingleAsync(h => h.Status == HoldStatus.Ready, Ct);
        Assert.Equal("awaiting-pickup", copies.Single(x => x.Id == ready.CopyId).Status);

        // Availability as the title's counters had it: A on the shelf 3 - 1 - 1 = 1, B none.
        Assert.Equal(1, copies.Count(x => x.BookId == a && x.Status == "available"));
        Assert.Equal(0, copies.Count(x => x.BookId == b && x.Status == "available"));
        // The counts each title keeps from then on start from its copies (A: 3 loanable, 1 on the
        // shelf; B: 1, the other marked for withdrawal; C: none), and follow a copy added after.
        async Task<List<(Guid, int, int)>> KeptAsync() => (await db.Titles.AsNoTracking().ToListAsync(Ct))
            .Select(t => (t.Id, t.LoanableCopies, t.CopiesOnShelf)).OrderBy(t => t.Id).ToList();
        Assert.Equal(new[] { (a, 3, 1), (b, 1, 0), (c, 0, 0) }.OrderBy(t => t.Item1), await KeptAsync());
        // New copies made after the upgrade get the next generated barcodes, no clash.
        Assert.Equal(1, await db.Database.ExecuteSqlAsync($"""
            INSERT INTO copies (id, book_id, barcode, loan_type, status, withdraw_on_check_in, created_at, updated_at)
            VALUES (uuid_v7(), {a}, next_copy_barcode(), 'standard', 'available', FALSE, now(), now())
            """, Ct));
        Assert.Equal(new[] { (a, 4, 2), (b, 1, 0), (c, 0, 0) }.OrderBy(t => t.Item1), await KeptAsync());
    }
    /// <summary>
    /// The count trigger a database runs is the one its migration created (frozen there);
    /// <see cref="Copies.Shelf.CountsTriggerSql"/> is the code's definition. They must not part: a
    /// change to the definition ships in a new migration. And a TRUNCATE of copies zeroes the counts.
    /// </summary>
    [Fact]
    public async Task The_databases_count_trigger_is_the_one_the_code_defines_and_a_truncate_zeroes_the_counts()
    {
        await using var database = await TestDatabase.CreateAsync("lendingdb");
        var options = new DbContextOptionsBuilder<LendingDbContext>().UseNpgsql(database.ConnectionString).UseSnakeCaseNamingConvention().Options;
        await using var db = new LendingDbContext(options);
        await db.Database.MigrateAsync(Ct);
        static string Words(string sql) => string.Join(' ', sql.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
        var running = await database.ScalarAsync<string>("SELECT prosrc FROM pg_proc WHERE proname = 'copies_keep_title_counts'");
        Assert.Equal(Words(Copies.Shelf.CountsTriggerSql()), Words(running!));

        var title = Guid.CreateVersion7();
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO titles (id, name, availability_version, catalog_version, deleted) VALUES ({title}, 'Truncated', 0, 1, FALSE);
            INSERT INTO copies (id, book_id, barcode, loan_type, status, withdraw_on_check_in, created_at, updated_at)
            SELECT uuid_v7(), {title}, next_copy_barcode(), 'standard', 'available', FALSE, now(), now() FROM generate_series(1, 3);
            """, Ct);
        Assert.Equal(3L, await database.ScalarAsync<long>($"SELECT copies_on_shelf FROM titles WHERE id = '{title}'"));
        await db.Database.ExecuteSqlRawAsync("TRUNCATE copies CASCADE", Ct);
        Assert.Equal(0L, await database.ScalarAsync<long>($"SELECT loanable_copies + copies_on_shelf FROM titles WHERE id = '{title}'"));
    }
}
