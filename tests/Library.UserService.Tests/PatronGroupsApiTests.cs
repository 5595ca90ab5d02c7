using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Library.EventBus;
using Library.UserService.PatronGroups;
using Microsoft.EntityFrameworkCore;

namespace Library.UserService.Tests;

public sealed class PatronGroupsApiTests(UserServiceFixture fixture) : IClassFixture<UserServiceFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string UniqueName(string prefix = "group") => $"{prefix}-{Guid.NewGuid():N}"[..30];

    private async Task<HttpClient> AdminAsync() => fixture.Client(await fixture.AdminTokenAsync());

    private static async Task<JsonElement> CreatedAsync(HttpClient admin, string name, string? description = null)
    {
        using var response = await admin.PostAsJsonAsync("/api/patron-groups", new { name, description }, Ct);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
    }

    private Task<List<OutboxMessage>> OutboxAsync(string eventName) =>
        fixture.InScopeAsync(db => db.Set<OutboxMessage>().Where(m => m.EventName == eventName).OrderBy(m => m.Sequence).ToListAsync(Ct));

    private static async Task<JsonElement> AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string? errorField = null)
    {
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        if (errorField is not null)
        {
            Assert.True(problem.GetProperty("errors").TryGetProperty(errorField, out _), $"errors.{errorField} in {problem}");
        }
        else
        {
            Assert.False(string.IsNullOrWhiteSpace(problem.GetProperty("detail").GetString()));
        }
        return problem;
    }

    [Fact]
    public async Task Librarians_list_the_groups_with_the_default_one_from_the_start()
    {
        var (_, librarianToken) = await fixture.NewLibrarianAsync();

        var groups = await fixture.Client(librarianToken).GetFromJsonAsync<JsonElement>("/api/patron-groups", Ct);

        var patron = groups.EnumerateArray().Single(g => g.GetProperty("name").GetString() == "patron");
        Assert.Equal(DefaultPatronGroup.InitialId, patron.GetProperty("id").GetGuid());
        Assert.Equal("Readers of the library", patron.GetProperty("description").GetString());
        Assert.Equal(3, patron.EnumerateObject().Count());

        var (_, _, memberToken) = await fixture.NewMemberAsync();
        using var byMember = await fixture.Client(memberToken).GetAsync("/api/patron-groups", Ct);
        Assert.Equal(HttpStatusCode.Forbidden, byMember.StatusCode);
        using var anonymous = await fixture.Client().GetAsync("/api/patron-groups", Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
    }

    [Fact]
    public async Task New_readers_get_the_default_group_whether_they_register_or_are_enrolled()
    {
        var registered = await fixture.RegisterAsync($"reader-{Guid.NewGuid():N}@library.test");
        Assert.Equal(DefaultPatronGroup.InitialId, registered.GetProperty("patronGroupId").GetGuid());
        // Every field a user had before is still there.
        foreach (var field in new[] { "id", "email", "firstName", "lastName", "role", "active", "createdAt" })
        {
            Assert.True(registered.TryGetProperty(field, out _), field);
        }

        var (_, librarianToken) = await fixture.NewLibrarianAsync();
        using var desk = await fixture.Client(librarianToken).PostAsJsonAsync("/api/users", new { email = $"desk-{Guid.NewGuid():N}@library.test", firstName = "Desk", lastName = "Reader", password = "Desk-password-1" }, Ct);
        Assert.Equal(HttpStatusCode.Created, desk.StatusCode);
        Assert.Equal(DefaultPatronGroup.InitialId, (await desk.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("patronGroupId").GetGuid());

        using var admin = await AdminAsync();
        var me = await admin.GetFromJsonAsync<JsonElement>("/api/users/me", Ct);
        Assert.Equal(DefaultPatronGroup.InitialId, me.GetProperty("patronGroupId").GetGuid());

        var registeredEvent = (await OutboxAsync("user.registered"))
            .Select(m => JsonDocument.Parse(m.Payload).RootElement)
            .Single(e => e.GetProperty("userId").GetGuid() == registered.GetProperty("id").GetGuid());
        Assert.Equal(DefaultPatronGroup.InitialId, registeredEvent.GetProperty("patronGroupId").GetGuid());
    }

    [Fact]
    public async Task An_admin_creates_renames_and_deletes_a_group_and_each_change_is_an_event()
    {
        using var admin = await AdminAsync();
        var name = UniqueName("students");

        var created = await CreatedAsync(admin, name, "  Enrolled students  ");
        var id = created.GetProperty("id").GetGuid();
        Assert.Equal(7, id.Version);
        Assert.Equal(name, created.GetProperty("name").GetString());
        Assert.Equal("Enrolled students", created.GetProperty("description").GetString());

        var renamed = UniqueName("pupils");
        using var put = await admin.PutAsJsonAsync($"/api/patron-groups/{id}", new { name = renamed }, Ct);
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        var updated = await put.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(renamed, updated.GetProperty("name").GetString());
        Assert.Equal(JsonValueKind.Null, updated.GetProperty("description").ValueKind);

        using var delete = await admin.DeleteAsync($"/api/patron-groups/{id}", Ct);
        Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        var list = await admin.GetFromJsonAsync<JsonElement>("/api/patron-groups", Ct);
        Assert.DoesNotContain(list.EnumerateArray(), g => g.GetProperty("id").GetGuid() == id);

        JsonElement Mine(List<OutboxMessage> rows) => rows.Select(m => JsonDocument.Parse(m.Payload).RootElement)
            .Single(e => e.GetProperty("patronGroupId").GetGuid() == id);
        var createdEvent = Mine(await OutboxAsync("patron-group.created"));
        Assert.Equal(name, createdEvent.GetProperty("name").GetString());
        Assert.Equal(1, createdEvent.GetProperty("version").GetInt64());
        var updatedEvent = Mine(await OutboxAsync("patron-group.updated"));
        Assert.Equal(renamed, updatedEvent.GetProperty("name").GetString());
        Assert.Equal(2, updatedEvent.GetProperty("version").GetInt64());
        Assert.Equal(3, Mine(await OutboxAsync("patron-group.deleted")).GetProperty("version").GetInt64());
    }

    [Fact]
    public async Task Names_are_unique_whatever_their_case_and_validated()
    {
        using var admin = await AdminAsync();
        var name = UniqueName("Staff");
        var first = await CreatedAsync(admin, name);

        using (var duplicate = await admin.PostAsJsonAsync("/api/patron-groups", new { name = $"  {name.ToUpperInvariant()} " }, Ct))
        {
            await AssertProblemAsync(duplicate, HttpStatusCode.Conflict);
        }
        var other = await CreatedAsync(admin, UniqueName("Other"));
        using (var renameOntoIt = await admin.PutAsJsonAsync($"/api/patron-groups/{other.GetProperty("id").GetGuid()}", new { name = name.ToLowerInvariant() }, Ct))
        {
            await AssertProblemAsync(renameOntoIt, HttpStatusCode.Conflict);
        }
        // Changing only the case of its own name is no conflict.
        using (var ownCase = await admin.PutAsJsonAsync($"/api/patron-groups/{first.GetProperty("id").GetGuid()}", new { name = name.ToUpperInvariant() }, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, ownCase.StatusCode);
        }

        foreach (var bad in new object[] { new { name = "" }, new { name = "   " }, new { name = new string('x', 51) }, new { name = "a\u0000b" }, new { } })
        {
            using var response = await admin.PostAsJsonAsync("/api/patron-groups", bad, Ct);
            await AssertProblemAsync(response, HttpStatusCode.BadRequest, "name");
        }
        using (var longDescription = await admin.PostAsJsonAsync("/api/patron-groups", new { name = UniqueName(), description = new string('d', 501) }, Ct))
        {
            await AssertProblemAsync(longDescription, HttpStatusCode.BadRequest, "description");
        }
        using (var badPut = await admin.PutAsJsonAsync($"/api/patron-groups/{first.GetProperty("id").GetGuid()}", new { name = "" }, Ct))
        {
            await AssertProblemAsync(badPut, HttpStatusCode.BadRequest, "name");
        }
    }

    [Fact]
    public async Task Creating_the_same_name_at_once_gives_one_group_and_conflicts()
    {
        using var admin = await AdminAsync();
        var name = UniqueName("race");

        var answers = await Task.WhenAll(Enumerable.Range(0, 6).Select(async i =>
        {
            using var response = await admin.PostAsJsonAsync("/api/patron-groups", new { name = i % 2 == 0 ? name : name.ToUpperInvariant() }, Ct);
            return response.StatusCode;
        }));

        Assert.Equal(1, answers.Count(s => s == HttpStatusCode.Created));
        Assert.Equal(5, answers.Count(s => s == HttpStatusCode.Conflict));
    }

    [Fact]
    public async Task Unknown_groups_are_404_and_only_admins_change_groups()
    {
        using var admin = await AdminAsync();
        var unknown = Guid.CreateVersion7();
        Assert.Equal(HttpStatusCode.NotFound, (await admin.PutAsJsonAsync($"/api/patron-groups/{unknown}", new { name = UniqueName() }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.DeleteAsync($"/api/patron-groups/{unknown}", Ct)).StatusCode);

        var group = await CreatedAsync(admin, UniqueName());
        var id = group.GetProperty("id").GetGuid();
        var (_, librarianToken) = await fixture.NewLibrarianAsync();
        var (_, _, memberToken) = await fixture.NewMemberAsync();
        foreach (var (client, status) in new[] { (fixture.Client(librarianToken), HttpStatusCode.Forbidden), (fixture.Client(memberToken), HttpStatusCode.Forbidden), (fixture.Client(), HttpStatusCode.Unauthorized) })
        {
            using (client)
            {
                Assert.Equal(status, (await client.PostAsJsonAsync("/api/patron-groups", new { name = UniqueName() }, Ct)).StatusCode);
                Assert.Equal(status, (await client.PutAsJsonAsync($"/api/patron-groups/{id}", new { name = UniqueName() }, Ct)).StatusCode);
                Assert.Equal(status, (await client.DeleteAsync($"/api/patron-groups/{id}", Ct)).StatusCode);
            }
        }
        var list = await admin.GetFromJsonAsync<JsonElement>("/api/patron-groups", Ct);
        Assert.Equal(group.GetProperty("name").GetString(), list.EnumerateArray().Single(g => g.GetProperty("id").GetGuid() == id).GetProperty("name").GetString());
    }

    [Fact]
    public async Task A_group_with_readers_and_the_default_group_cannot_be_deleted()
    {
        using var admin = await AdminAsync();
        var group = await CreatedAsync(admin, UniqueName("busy"));
        var groupId = group.GetProperty("id").GetGuid();
        var (memberId, _, _) = await fixture.NewMemberAsync();
        using (var move = await admin.PutAsJsonAsync($"/api/users/{memberId}/patron-group", new { patronGroupId = groupId }, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, move.StatusCode);
        }

        using (var inUse = await admin.DeleteAsync($"/api/patron-groups/{groupId}", Ct))
        {
            await AssertProblemAsync(inUse, HttpStatusCode.Conflict);
        }
        using (var defaultGroup = await admin.DeleteAsync($"/api/patron-groups/{DefaultPatronGroup.InitialId}", Ct))
        {
            var problem = await AssertProblemAsync(defaultGroup, HttpStatusCode.Conflict);
            Assert.Contains("default", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }
        using (var renameDefault = await admin.PutAsJsonAsync($"/api/patron-groups/{DefaultPatronGroup.InitialId}", new { name = UniqueName() }, Ct))
        {
            await AssertProblemAsync(renameDefault, HttpStatusCode.Conflict);
        }
        using (var describeDefault = await admin.PutAsJsonAsync($"/api/patron-groups/{DefaultPatronGroup.InitialId}", new { name = "patron", description = "Readers of the library" }, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, describeDefault.StatusCode);
        }

        // Once the reader has moved back, the group can go.
        using (var back = await admin.PutAsJsonAsync($"/api/users/{memberId}/patron-group", new { patronGroupId = DefaultPatronGroup.InitialId }, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, back.StatusCode);
        }
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/patron-groups/{groupId}", Ct)).StatusCode);
    }

    [Fact]
    public async Task A_librarian_moves_a_reader_to_a_group_and_that_is_a_UserUpdated_with_a_new_version()
    {
        using var admin = await AdminAsync();
        var groupId = (await CreatedAsync(admin, UniqueName("seniors"))).GetProperty("id").GetGuid();
        var (memberId, memberEmail, memberToken) = await fixture.NewMemberAsync();
        var (_, librarianToken) = await fixture.NewLibrarianAsync();
        using var librarian = fixture.Client(librarianToken);

        using var move = await librarian.PutAsJsonAsync($"/api/users/{memberId}/patron-group", new { patronGroupId = groupId }, Ct);
        Assert.Equal(HttpStatusCode.OK, move.StatusCode);
        var user = await move.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(groupId, user.GetProperty("patronGroupId").GetGuid());
        Assert.Equal(memberEmail, user.GetProperty("email").GetString());
        var fetched = await librarian.GetFromJsonAsync<JsonElement>($"/api/users/{memberId}", Ct);
        Assert.Equal(groupId, fetched.GetProperty("patronGroupId").GetGuid());

        var updated = (await OutboxAsync("user.updated")).Select(m => JsonDocument.Parse(m.Payload).RootElement)
            .Where(e => e.GetProperty("userId").GetGuid() == memberId).ToList();
        var only = Assert.Single(updated);
        Assert.Equal(groupId, only.GetProperty("patronGroupId").GetGuid());
        Assert.Equal(2, only.GetProperty("version").GetInt64());
        Assert.Equal(memberEmail, only.GetProperty("email").GetString());
        Assert.Equal(2, await fixture.InScopeAsync(db => db.Users.Where(u => u.Id == memberId).Select(u => u.Version).SingleAsync(Ct)));

        // The same group again changes nothing and announces nothing.
        using (var again = await librarian.PutAsJsonAsync($"/api/users/{memberId}/patron-group", new { patronGroupId = groupId }, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        }
        Assert.Single(await OutboxAsync("user.updated"), m => JsonDocument.Parse(m.Payload).RootElement.GetProperty("userId").GetGuid() == memberId);

        // A role change keeps announcing the reader's group.
        using (var role = await admin.PutAsJsonAsync($"/api/users/{memberId}/role", new { role = "librarian" }, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, role.StatusCode);
        }
        var afterRole = (await OutboxAsync("user.updated")).Select(m => JsonDocument.Parse(m.Payload).RootElement)
            .Last(e => e.GetProperty("userId").GetGuid() == memberId);
        Assert.Equal(3, afterRole.GetProperty("version").GetInt64());
        Assert.Equal(groupId, afterRole.GetProperty("patronGroupId").GetGuid());

        using var byMember = await fixture.Client(memberToken).PutAsJsonAsync($"/api/users/{memberId}/patron-group", new { patronGroupId = groupId }, Ct);
        Assert.Equal(HttpStatusCode.Forbidden, byMember.StatusCode);
        using var anonymous = await fixture.Client().PutAsJsonAsync($"/api/users/{memberId}/patron-group", new { patronGroupId = groupId }, Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
    }

    [Fact]
    public async Task Moving_a_reader_needs_a_known_reader_and_a_known_group()
    {
        var (memberId, _, _) = await fixture.NewMemberAsync();
        var (_, librarianToken) = await fixture.NewLibrarianAsync();
        using var librarian = fixture.Client(librarianToken);

        using (var missing = await librarian.PutAsJsonAsync($"/api/users/{memberId}/patron-group", new { }, Ct))
        {
            await AssertProblemAsync(missing, HttpStatusCode.BadRequest, "patronGroupId");
        }
        using (var unknownUser = await librarian.PutAsJsonAsync($"/api/users/{Guid.CreateVersion7()}/patron-group", new { patronGroupId = DefaultPatronGroup.InitialId }, Ct))
        {
            Assert.Equal(HttpStatusCode.NotFound, unknownUser.StatusCode);
        }
        using (var unknownGroup = await librarian.PutAsJsonAsync($"/api/users/{memberId}/patron-group", new { patronGroupId = Guid.CreateVersion7() }, Ct))
        {
            await AssertProblemAsync(unknownGroup, HttpStatusCode.BadRequest, "patronGroupId");
        }
        Assert.Equal(DefaultPatronGroup.InitialId, await fixture.InScopeAsync(db => db.Users.Where(u => u.Id == memberId).Select(u => u.PatronGroupId).SingleAsync(Ct)));
    }
}
