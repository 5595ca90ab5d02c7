using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;

namespace Library.UserService.Tests;

public sealed class AuthTests(UserServiceFixture fixture) : IClassFixture<UserServiceFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<JsonElement> Problem(HttpResponseMessage response)
    {
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.True(problem.TryGetProperty("traceId", out _));
        return problem;
    }

    [Fact]
    public async Task Registering_creates_a_member_with_a_normalised_email()
    {
        using var client = fixture.Client();
        var email = $"  New.Reader-{Guid.NewGuid():N}@Library.Test ";

        using var response = await client.PostAsJsonAsync("/api/auth/register", new { email, firstName = "Ada", lastName = "Lovelace", password = "correct-horse" }, Ct);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var user = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(email.Trim(), user.GetProperty("email").GetString());
        Assert.Equal("member", user.GetProperty("role").GetString());
        Assert.True(user.GetProperty("active").GetBoolean());
        Assert.Equal($"/api/users/{user.GetProperty("id").GetGuid()}", response.Headers.Location?.OriginalString);
        Assert.False(user.TryGetProperty("passwordHash", out _));
        // Logging in with the email in another case and spacing works: it is one account.
        await fixture.LoginAsync(email.Trim().ToUpperInvariant(), "correct-horse");
    }

    [Fact]
    public async Task Registering_as_admin_through_the_body_still_makes_a_member()
    {
        using var client = fixture.Client();
        var email = $"sneaky-{Guid.NewGuid():N}@library.test";

        using var response = await client.PostAsJsonAsync("/api/auth/register",
            new { email, firstName = "Eve", lastName = "Sneaky", password = "Sneaky-password-1", role = "admin", active = false, id = Guid.Empty }, Ct);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var user = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal("member", user.GetProperty("role").GetString());
        Assert.True(user.GetProperty("active").GetBoolean());
        Assert.NotEqual(Guid.Empty, user.GetProperty("id").GetGuid());
    }

    [Fact]
    public async Task An_email_taken_in_any_case_is_a_409_and_creates_nothing()
    {
        var email = $"taken-{Guid.NewGuid():N}@library.test";
        await fixture.RegisterAsync(email);
        using var client = fixture.Client();

        using var response = await client.PostAsJsonAsync("/api/auth/register", new { email = email.ToUpperInvariant(), firstName = "B", lastName = "C", password = "Another-password-1" }, Ct);

        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        await Problem(response);
        Assert.Equal(1, await fixture.InScopeAsync(db => db.Users.CountAsync(u => u.NormalizedEmail == email, Ct)));
    }

    [Theory]
    [InlineData("not-an-email", "Password-1", "email")]
    [InlineData("Ann <ann@library.test>", "Password-1", "email")]
    [InlineData("ann@library.test", "short", "password")]
    [InlineData("ann@library.test", "", "password")]
    public async Task Bad_email_or_weak_password_is_a_400_naming_the_field_and_creates_nothing(string email, string password, string field)
    {
        using var client = fixture.Client();
        var before = await fixture.InScopeAsync(db => db.Users.CountAsync(Ct));

        using var response = await client.PostAsJsonAsync("/api/auth/register", new { email, firstName = "Ann", lastName = "Reader", password }, Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.True((await Problem(response)).GetProperty("errors").TryGetProperty(field, out _));
        Assert.Equal(before, await fixture.InScopeAsync(db => db.Users.CountAsync(Ct)));
    }

    [Theory]
    [InlineData("{ \"email\": ")]
    [InlineData("{ \"email\": 42, \"password\": [] }")]
    [InlineData("[]")]
    public async Task Malformed_json_is_a_400_problem(string body)
    {
        using var client = fixture.Client();
        using var content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");

        using var response = await client.PostAsync("/api/auth/register", content, Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        await Problem(response);
    }

    [Fact]
    public async Task Login_answers_a_token_pair_with_the_contract_claims()
    {
        var (id, email, _) = await fixture.NewMemberAsync();

        var pair = await fixture.LoginAsync(email, "Reader-password-1");

        Assert.Equal("Bearer", pair.GetProperty("tokenType").GetString());
        Assert.Equal(900, pair.GetProperty("expiresIn").GetInt32());
        Assert.False(string.IsNullOrEmpty(pair.GetProperty("refreshToken").GetString()));
        var jwt = new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(pair.GetProperty("accessToken").GetString());
        Assert.Equal("ES256", jwt.Alg);
        Assert.False(string.IsNullOrEmpty(jwt.Kid));
        Assert.Equal(id.ToString(), jwt.Subject);
        Assert.Equal(email, jwt.GetClaim("email").Value);
        Assert.Equal("Ann Reader", jwt.GetClaim("name").Value);
        Assert.Equal("member", jwt.GetClaim("role").Value);
        Assert.Equal("library", jwt.Issuer);
        Assert.Equal(["library-api"], jwt.Audiences);
        Assert.Equal(TimeSpan.FromMinutes(15), jwt.ValidTo - jwt.IssuedAt);
    }

    [Fact]
    public async Task Unknown_email_and_wrong_password_get_the_same_401()
    {
        var (_, email, _) = await fixture.NewMemberAsync();
        using var client = fixture.Client();

        using var unknown = await client.PostAsJsonAsync("/api/auth/login", new { email = $"nobody-{Guid.NewGuid():N}@library.test", password = "Reader-password-1" }, Ct);
        using var wrong = await client.PostAsJsonAsync("/api/auth/login", new { email, password = "Wrong-password-1" }, Ct);

        Assert.Equal(HttpStatusCode.Unauthorized, unknown.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        var a = await Problem(unknown);
        var b = await Problem(wrong);
        Assert.Equal(a.GetProperty("title").GetString(), b.GetProperty("title").GetString());
        Assert.Equal(a.GetProperty("detail").GetString(), b.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Refresh_rotates_the_pair_and_the_old_refresh_token_stops_working()
    {
        var (_, email, _) = await fixture.NewMemberAsync();
        var first = await fixture.LoginAsync(email, "Reader-password-1");
        using var client = fixture.Client();

        using var refreshed = await client.PostAsJsonAsync("/api/auth/refresh", new { refreshToken = first.GetProperty("refreshToken").GetString() }, Ct);
        Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);
        var second = await refreshed.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.NotEqual(first.GetProperty("refreshToken").GetString(), second.GetProperty("refreshToken").GetString());

        using var me = fixture.Client(second.GetProperty("accessToken").GetString());
        Assert.Equal(HttpStatusCode.OK, (await me.GetAsync("/api/users/me", Ct)).StatusCode);

        // Only the hash is stored.
        var raw = second.GetProperty("refreshToken").GetString()!;
        Assert.False(await fixture.InScopeAsync(db => db.RefreshTokens.AnyAsync(t => t.TokenHash == raw, Ct)));
    }

    [Fact]
    public async Task Reusing_a_spent_refresh_token_revokes_its_whole_family()
    {
        var (_, email, _) = await fixture.NewMemberAsync();
        var stolen = (await fixture.LoginAsync(email, "Reader-password-1")).GetProperty("refreshToken").GetString();
        using var client = fixture.Client();

        // The rightful owner refreshes first...
        using var owner = await client.PostAsJsonAsync("/api/auth/refresh", new { refreshToken = stolen }, Ct);
        var ownersNext = (await owner.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("refreshToken").GetString();
        // ...then the thief replays the spent token: refused, and the family is burnt.
        using var thief = await client.PostAsJsonAsync("/api/auth/refresh", new { refreshToken = stolen }, Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, thief.StatusCode);

        using var ownerAgain = await client.PostAsJsonAsync("/api/auth/refresh", new { refreshToken = ownersNext }, Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, ownerAgain.StatusCode);
        // A fresh log-in still works.
        await fixture.LoginAsync(email, "Reader-password-1");
    }

    [Fact]
    public async Task Logout_revokes_the_refresh_token()
    {
        var (_, email, _) = await fixture.NewMemberAsync();
        var pair = await fixture.LoginAsync(email, "Reader-password-1");
        using var client = fixture.Client(pair.GetProperty("accessToken").GetString());

        using var logout = await client.PostAsJsonAsync("/api/auth/logout", new { refreshToken = pair.GetProperty("refreshToken").GetString() }, Ct);
        Assert.Equal(HttpStatusCode.NoContent, logout.StatusCode);

        using var refresh = await fixture.Client().PostAsJsonAsync("/api/auth/refresh", new { refreshToken = pair.GetProperty("refreshToken").GetString() }, Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, refresh.StatusCode);
    }

    [Fact]
    public async Task Logout_needs_a_signed_in_user_and_cannot_revoke_someone_elses_token()
    {
        var (_, victimEmail, _) = await fixture.NewMemberAsync();
        var victim = await fixture.LoginAsync(victimEmail, "Reader-password-1");
        var (_, _, attackerToken) = await fixture.NewMemberAsync();
        var victimRefresh = victim.GetProperty("refreshToken").GetString();

        using var anonymous = await fixture.Client().PostAsJsonAsync("/api/auth/logout", new { refreshToken = victimRefresh }, Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        using var attacker = await fixture.Client(attackerToken).PostAsJsonAsync("/api/auth/logout", new { refreshToken = victimRefresh }, Ct);
        Assert.Equal(HttpStatusCode.NoContent, attacker.StatusCode);

        using var stillWorks = await fixture.Client().PostAsJsonAsync("/api/auth/refresh", new { refreshToken = victimRefresh }, Ct);
        Assert.Equal(HttpStatusCode.OK, stillWorks.StatusCode);
    }

    [Fact]
    public async Task A_deactivated_user_is_refused_at_login_and_on_refresh()
    {
        var (id, email, _) = await fixture.NewMemberAsync();
        var pair = await fixture.LoginAsync(email, "Reader-password-1");
        using var admin = fixture.Client(await fixture.AdminTokenAsync());

        using var deactivate = await admin.PostAsync($"/api/users/{id}/deactivate", null, Ct);
        Assert.Equal(HttpStatusCode.OK, deactivate.StatusCode);
        Assert.False((await deactivate.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("active").GetBoolean());

        using var client = fixture.Client();
        using var login = await client.PostAsJsonAsync("/api/auth/login", new { email, password = "Reader-password-1" }, Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, login.StatusCode);
        using var refresh = await client.PostAsJsonAsync("/api/auth/refresh", new { refreshToken = pair.GetProperty("refreshToken").GetString() }, Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, refresh.StatusCode);
    }

    [Fact]
    public async Task Registration_and_deactivation_publish_their_events_through_the_outbox()
    {
        var (id, _, _) = await fixture.NewMemberAsync();
        using var admin = fixture.Client(await fixture.AdminTokenAsync());
        using var _ = await admin.PostAsync($"/api/users/{id}/deactivate", null, Ct);

        var rows = await fixture.InScopeAsync(db => db.Set<Library.EventBus.OutboxMessage>().OrderBy(m => m.Sequence).ToListAsync(Ct));
        var mine = rows.Where(m => JsonDocument.Parse(m.Payload).RootElement.TryGetProperty("userId", out var user) && user.GetGuid() == id).ToList();
        Assert.Equal(["user.registered", "user.deactivated"], mine.Select(m => m.EventName));
        var deactivated = JsonDocument.Parse(mine[1].Payload).RootElement;
        Assert.Equal(2, deactivated.GetProperty("version").GetInt64());
    }
}
