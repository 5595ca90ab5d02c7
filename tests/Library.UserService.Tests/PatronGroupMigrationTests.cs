using System.Net.Http.Json;
using System.Text.Json;
using Library.EventBus;
using Library.TestSupport;
using Library.UserService.Data;
using Library.UserService.PatronGroups;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Library.UserService.Tests;

public sealed class PatronGroupMigrationTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The last migration before patron groups: what a running database has.</summary>
    private const string BeforeGroups = "20261123084522_AddAuth";

    [Fact]
    public async Task Upgrading_a_database_with_readers_in_place_puts_every_reader_in_the_default_group()
    {
        await using var database = await TestDatabase.CreateAsync("userdb");
        var options = new DbContextOptionsBuilder<UserDbContext>()
            .UseNpgsql(database.ConnectionString)
            .UseSnakeCaseNamingConvention()
            .Options;
        await using var db = new UserDbContext(options);
        var migrator = db.GetService<IMigrator>();

        await migrator.MigrateAsync(BeforeGroups, Ct);
        var ids = Enumerable.Range(0, 3).Select(_ => Guid.CreateVersion7()).ToList();
        foreach (var (id, i) in ids.Select((id, i) => (id, i)))
        {
            await db.Database.ExecuteSqlAsync($"""
                INSERT INTO users (id, email, normalized_email, first_name, last_name, role, active, password_hash, created_at, updated_at, version, failed_logins)
                VALUES ({id}, {$"old-{i}@library.test"}, {$"old-{i}@library.test"}, 'Old', {$"Reader{i}"}, 'member', true, 'x', now(), now(), 1, 0)
                """, Ct);
        }

        await migrator.MigrateAsync(null, Ct);

        Assert.Empty(await db.Database.GetPendingMigrationsAsync(Ct));
        var users = await db.Users.AsNoTracking().Where(u => ids.Contains(u.Id)).ToListAsync(Ct);
        Assert.Equal(3, users.Count);
        Assert.All(users, u => Assert.Equal(DefaultPatronGroup.InitialId, u.PatronGroupId));
        var group = await db.PatronGroups.AsNoTracking().SingleAsync(Ct);
        Assert.Equal(("patron", "patron", "Readers of the library", 1L), (group.Name, group.NormalizedName, group.Description, group.Version));
        Assert.Equal("NO", await database.ScalarAsync<string>(
            "SELECT is_nullable FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'patron_group_id'"));
        await Assert.ThrowsAsync<Npgsql.PostgresException>(() =>
            db.Database.ExecuteSqlRawAsync("UPDATE users SET patron_group_id = NULL", Ct));
    }
}

/// <summary>The user service with another default group than the migration's "patron".</summary>
public sealed class ReaderDefaultFixture : UserServiceFixture
{
    protected override IReadOnlyDictionary<string, string?> ExtraSettings => new Dictionary<string, string?>
    {
        ["PatronGroups:Default"] = "Reader",
    };
}

public sealed class ConfiguredDefaultGroupTests(ReaderDefaultFixture fixture) : IClassFixture<ReaderDefaultFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_configured_default_group_is_created_at_start_announced_and_given_to_new_readers()
    {
        var group = await fixture.InScopeAsync(db => db.PatronGroups.AsNoTracking().SingleAsync(g => g.NormalizedName == "reader", Ct));
        Assert.Equal("Reader", group.Name);
        Assert.Equal("Readers of the library", group.Description);

        // The first admin, enrolled at start, is in it too.
        using var admin = fixture.Client(await fixture.AdminTokenAsync());
        Assert.Equal(group.Id, (await admin.GetFromJsonAsync<JsonElement>("/api/users/me", Ct)).GetProperty("patronGroupId").GetGuid());
        var registered = await fixture.RegisterAsync($"reader-{Guid.NewGuid():N}@library.test");
        Assert.Equal(group.Id, registered.GetProperty("patronGroupId").GetGuid());

        var created = await fixture.InScopeAsync(db => db.Set<OutboxMessage>().Where(m => m.EventName == "patron-group.created").ToListAsync(Ct));
        var announced = JsonDocument.Parse(Assert.Single(created).Payload).RootElement;
        Assert.Equal(group.Id, announced.GetProperty("patronGroupId").GetGuid());
        Assert.Equal("Reader", announced.GetProperty("name").GetString());

        using var deleteDefault = await admin.DeleteAsync($"/api/patron-groups/{group.Id}", Ct);
        Assert.Equal(System.Net.HttpStatusCode.Conflict, deleteDefault.StatusCode);
    }
}
