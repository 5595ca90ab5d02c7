using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Library.EventBus;
using Microsoft.EntityFrameworkCore;

namespace Library.UserService.Tests;

/// <summary>
/// Consumers keep the event with the highest version. Two changes of one record at once must
/// therefore never announce the same version: the second would be dropped by every consumer
/// while the record itself holds both changes.
/// </summary>
public sealed class ConcurrentChangesTests(UserServiceFixture fixture) : IClassFixture<UserServiceFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<List<JsonElement>> EventsAsync(string eventName, string idField, Guid id) =>
        (await fixture.InScopeAsync(db => db.Set<OutboxMessage>().Where(m => m.EventName == eventName).OrderBy(m => m.Sequence).ToListAsync(Ct)))
            .Select(m => JsonDocument.Parse(m.Payload).RootElement)
            .Where(e => e.GetProperty(idField).GetGuid() == id).ToList();

    [Fact]
    public async Task A_role_and_a_privacy_choice_changed_at_once_each_get_their_own_version_and_the_newest_event_is_the_user()
    {
        var (id, _, memberToken) = await fixture.NewMemberAsync();
        using var admin = fixture.Client(await fixture.AdminTokenAsync());
        using var member = fixture.Client(memberToken);

        // Each request changes something (it flips a value the other kind does not touch), all at once.
        var requests = Enumerable.Range(0, 12).Select(i => i % 2 == 0
            ? admin.PutAsJsonAsync($"/api/users/{id}/role", new { role = i % 4 == 0 ? "librarian" : "member" }, Ct)
            : member.PutAsJsonAsync("/api/users/me/privacy", new { keepLoanHistory = i % 4 == 3 }, Ct));
        foreach (var response in await Task.WhenAll(requests))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            response.Dispose();
        }

        var events = await EventsAsync("user.updated", "userId", id);
        var versions = events.Select(e => e.GetProperty("version").GetInt64()).ToList();
        Assert.NotEmpty(versions);
        Assert.Equal(versions.Count, versions.Distinct().Count());
        var user = await fixture.InScopeAsync(db => db.Users.AsNoTracking().SingleAsync(u => u.Id == id, Ct));
        // Registration announced version 1; every change since is one more, none lost.
        Assert.Equal(1 + versions.Count, user.Version);
        var newest = events.MaxBy(e => e.GetProperty("version").GetInt64());
        Assert.Equal(user.Version, newest.GetProperty("version").GetInt64());
        Assert.Equal(user.Role, newest.GetProperty("role").GetString());
        Assert.Equal(user.KeepLoanHistory, newest.GetProperty("keepLoanHistory").GetBoolean());
    }

    [Fact]
    public async Task A_patron_group_renamed_by_several_admins_at_once_announces_each_name_with_its_own_version()
    {
        using var admin = fixture.Client(await fixture.AdminTokenAsync());
        using var created = await admin.PostAsJsonAsync("/api/patron-groups", new { name = $"race-{Guid.NewGuid():N}"[..30] }, Ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var id = (await created.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetGuid();

        var names = Enumerable.Range(0, 8).Select(i => $"race-{i}-{Guid.NewGuid():N}"[..30]).ToList();
        foreach (var response in await Task.WhenAll(names.Select(name => admin.PutAsJsonAsync($"/api/patron-groups/{id}", new { name }, Ct))))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            response.Dispose();
        }

        var events = await EventsAsync("patron-group.updated", "patronGroupId", id);
        Assert.Equal(names.Count, events.Count);
        Assert.Equal(Enumerable.Range(2, names.Count).Select(v => (long)v), events.Select(e => e.GetProperty("version").GetInt64()).Order());
        var group = await fixture.InScopeAsync(db => db.PatronGroups.AsNoTracking().SingleAsync(g => g.Id == id, Ct));
        Assert.Equal(1 + names.Count, group.Version);
        Assert.Equal(group.Name, events.MaxBy(e => e.GetProperty("version").GetInt64()).GetProperty("name").GetString());
    }
}
