using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Library.EventBus;
using Microsoft.EntityFrameworkCore;

namespace Library.UserService.Tests;

public sealed class PrivacyTests(UserServiceFixture fixture) : IClassFixture<UserServiceFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<List<JsonElement>> EventsAsync(string eventName, Guid userId) =>
        (await fixture.InScopeAsync(db => db.Set<OutboxMessage>().Where(m => m.EventName == eventName).OrderBy(m => m.Sequence).ToListAsync(Ct)))
            .Select(m => JsonDocument.Parse(m.Payload).RootElement)
            .Where(e => e.GetProperty("userId").GetGuid() == userId).ToList();

    [Fact]
    public async Task A_reader_turns_their_loan_history_off_and_on_and_each_change_is_announced_with_a_new_version()
    {
        var (id, _, token) = await fixture.NewMemberAsync();
        using var client = fixture.Client(token);

        var me = await client.GetFromJsonAsync<JsonElement>("/api/users/me", Ct);
        Assert.True(me.GetProperty("keepLoanHistory").GetBoolean());
        var registered = Assert.Single(await EventsAsync("user.registered", id));
        Assert.True(registered.GetProperty("keepLoanHistory").GetBoolean());

        using var off = await client.PutAsJsonAsync("/api/users/me/privacy", new { keepLoanHistory = false }, Ct);
        Assert.Equal(HttpStatusCode.OK, off.StatusCode);
        Assert.False((await off.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("keepLoanHistory").GetBoolean());
        Assert.False((await client.GetFromJsonAsync<JsonElement>("/api/users/me", Ct)).GetProperty("keepLoanHistory").GetBoolean());
        Assert.False(await fixture.InScopeAsync(db => db.Users.Where(u => u.Id == id).Select(u => u.KeepLoanHistory).SingleAsync(Ct)));

        var updated = Assert.Single(await EventsAsync("user.updated", id));
        Assert.False(updated.GetProperty("keepLoanHistory").GetBoolean());
        Assert.Equal(2, updated.GetProperty("version").GetInt64());

        // The same choice again changes and announces nothing.
        using var again = await client.PutAsJsonAsync("/api/users/me/privacy", new { keepLoanHistory = false }, Ct);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Single(await EventsAsync("user.updated", id));

        using var on = await client.PutAsJsonAsync("/api/users/me/privacy", new { keepLoanHistory = true }, Ct);
        Assert.True((await on.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("keepLoanHistory").GetBoolean());
        var both = await EventsAsync("user.updated", id);
        Assert.Equal([false, true], both.Select(e => e.GetProperty("keepLoanHistory").GetBoolean()));
        Assert.Equal(3, both[1].GetProperty("version").GetInt64());
    }

    [Fact]
    public async Task Other_user_changes_carry_the_readers_choice_too()
    {
        var (id, _, token) = await fixture.NewMemberAsync();
        using var off = await fixture.Client(token).PutAsJsonAsync("/api/users/me/privacy", new { keepLoanHistory = false }, Ct);
        Assert.Equal(HttpStatusCode.OK, off.StatusCode);

        using var admin = fixture.Client(await fixture.AdminTokenAsync());
        using var role = await admin.PutAsJsonAsync($"/api/users/{id}/role", new { role = "librarian" }, Ct);
        Assert.Equal(HttpStatusCode.OK, role.StatusCode);

        var last = (await EventsAsync("user.updated", id)).Last();
        Assert.Equal("librarian", last.GetProperty("role").GetString());
        Assert.False(last.GetProperty("keepLoanHistory").GetBoolean());
    }

    [Fact]
    public async Task A_missing_or_wrong_choice_is_a_400_and_anonymous_callers_get_401()
    {
        var (id, _, token) = await fixture.NewMemberAsync();
        using var client = fixture.Client(token);

        using var missing = await client.PutAsJsonAsync("/api/users/me/privacy", new { }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        Assert.Contains("keepLoanHistory", await missing.Content.ReadAsStringAsync(Ct));
        using var wrongType = await client.PutAsync("/api/users/me/privacy", new StringContent("""{"keepLoanHistory":"perhaps"}""", System.Text.Encoding.UTF8, "application/json"), Ct);
        Assert.Equal(HttpStatusCode.BadRequest, wrongType.StatusCode);
        Assert.Equal("application/problem+json", wrongType.Content.Headers.ContentType?.MediaType);

        using var anonymous = await fixture.Client().PutAsJsonAsync("/api/users/me/privacy", new { keepLoanHistory = false }, Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);

        Assert.True(await fixture.InScopeAsync(db => db.Users.Where(u => u.Id == id).Select(u => u.KeepLoanHistory).SingleAsync(Ct)));
        Assert.Empty(await EventsAsync("user.updated", id));
    }
}
