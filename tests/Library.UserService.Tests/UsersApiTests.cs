using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;

namespace Library.UserService.Tests;

public sealed class UsersApiTests(UserServiceFixture fixture) : IClassFixture<UserServiceFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Me_answers_the_callers_profile_and_needs_a_token()
    {
        var (id, email, token) = await fixture.NewMemberAsync();

        var me = await fixture.Client(token).GetFromJsonAsync<JsonElement>("/api/users/me", Ct);
        Assert.Equal(id, me.GetProperty("id").GetGuid());
        Assert.Equal(email, me.GetProperty("email").GetString());

        using var anonymous = await fixture.Client().GetAsync("/api/users/me", Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
    }

    [Fact]
    public async Task A_librarian_enrols_members_but_only_an_admin_enrols_staff()
    {
        var (_, librarianToken) = await fixture.NewLibrarianAsync();
        using var librarian = fixture.Client(librarianToken);

        using var member = await librarian.PostAsJsonAsync("/api/users", new { email = $"desk-{Guid.NewGuid():N}@library.test", firstName = "Desk", lastName = "Reader", password = "Desk-password-1" }, Ct);
        Assert.Equal(HttpStatusCode.Created, member.StatusCode);
        Assert.Equal("member", (await member.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("role").GetString());

        using var staff = await librarian.PostAsJsonAsync("/api/users", new { email = $"staff-{Guid.NewGuid():N}@library.test", firstName = "S", lastName = "T", password = "Staff-password-1", role = "librarian" }, Ct);
        Assert.Equal(HttpStatusCode.Forbidden, staff.StatusCode);

        using var admin = fixture.Client(await fixture.AdminTokenAsync());
        using var byAdmin = await admin.PostAsJsonAsync("/api/users", new { email = $"staff-{Guid.NewGuid():N}@library.test", firstName = "S", lastName = "T", password = "Staff-password-1", role = "librarian" }, Ct);
        Assert.Equal(HttpStatusCode.Created, byAdmin.StatusCode);

        using var badRole = await admin.PostAsJsonAsync("/api/users", new { email = $"x-{Guid.NewGuid():N}@library.test", firstName = "S", lastName = "T", password = "Staff-password-1", role = "service" }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, badRole.StatusCode);

        var (_, _, memberToken) = await fixture.NewMemberAsync();
        using var byMember = await fixture.Client(memberToken).PostAsJsonAsync("/api/users", new { email = $"m-{Guid.NewGuid():N}@library.test", firstName = "S", lastName = "T", password = "Staff-password-1" }, Ct);
        Assert.Equal(HttpStatusCode.Forbidden, byMember.StatusCode);
    }

    [Fact]
    public async Task Desk_enrolment_checks_a_readers_details_as_registration_does_and_enrols_nobody_on_bad_input()
    {
        var (_, librarianToken) = await fixture.NewLibrarianAsync();
        using var librarian = fixture.Client(librarianToken);
        var email = $"bad-{Guid.NewGuid():N}@library.test";

        using var response = await librarian.PostAsJsonAsync("/api/users", new { email = "not-an-address", firstName = new string('F', 101), lastName = "", password = "short", role = "service" }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var errors = (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("errors");
        Assert.Equal(["email", "firstName", "lastName", "password", "role"], errors.EnumerateObject().Select(e => e.Name).Order());

        // The same rules as registration, field by field: one bad field is enough to enrol nobody.
        using var longName = await librarian.PostAsJsonAsync("/api/users", new { email, firstName = "Desk", lastName = new string('L', 101), password = "Desk-password-1" }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, longName.StatusCode);
        using var register = await fixture.Client().PostAsJsonAsync("/api/auth/register", new { email, firstName = "Desk", lastName = new string('L', 101), password = "Desk-password-1" }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, register.StatusCode);
        Assert.Equal(
            (await register.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("errors").GetRawText(),
            (await longName.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("errors").GetRawText());
        Assert.False(await fixture.InScopeAsync(db => db.Users.AnyAsync(u => u.NormalizedEmail == email, Ct)));
    }

    [Fact]
    public async Task Librarians_search_users_by_part_of_a_name_or_email_case_insensitively_in_pages()
    {
        var tag = Guid.NewGuid().ToString("N")[..10];
        for (var i = 0; i < 3; i++)
        {
            await fixture.RegisterAsync($"{tag}-{i}@library.test", firstName: "Zed", lastName: $"Searchable{i}");
        }
        await fixture.RegisterAsync($"other-{Guid.NewGuid():N}@library.test", firstName: "Mo", lastName: $"X{tag.ToUpperInvariant()}Y");
        var (_, librarianToken) = await fixture.NewLibrarianAsync();
        using var librarian = fixture.Client(librarianToken);

        var page1 = await librarian.GetFromJsonAsync<JsonElement>($"/api/users?search={tag.ToUpperInvariant()}&page=1&pageSize=2", Ct);
        var page2 = await librarian.GetFromJsonAsync<JsonElement>($"/api/users?search={tag}&page=2&pageSize=2", Ct);

        Assert.Equal(4, page1.GetProperty("totalCount").GetInt64());
        var ids = page1.GetProperty("items").EnumerateArray().Concat(page2.GetProperty("items").EnumerateArray())
            .Select(u => u.GetProperty("id").GetGuid()).ToList();
        Assert.Equal(4, ids.Distinct().Count());

        var byRole = await librarian.GetFromJsonAsync<JsonElement>("/api/users?role=admin", Ct);
        Assert.All(byRole.GetProperty("items").EnumerateArray(), u => Assert.Equal("admin", u.GetProperty("role").GetString()));

        // Wildcards in the search match themselves, not everything.
        var percent = await librarian.GetFromJsonAsync<JsonElement>("/api/users?search=%25", Ct);
        Assert.Equal(0, percent.GetProperty("totalCount").GetInt64());

        using var badRole = await librarian.GetAsync("/api/users?role=superuser", Ct);
        Assert.Equal(HttpStatusCode.BadRequest, badRole.StatusCode);
        using var badSize = await librarian.GetAsync("/api/users?pageSize=1000", Ct);
        Assert.Equal(HttpStatusCode.BadRequest, badSize.StatusCode);

        var (_, _, memberToken) = await fixture.NewMemberAsync();
        using var byMember = await fixture.Client(memberToken).GetAsync("/api/users", Ct);
        Assert.Equal(HttpStatusCode.Forbidden, byMember.StatusCode);
    }

    [Fact]
    public async Task A_member_sees_their_own_profile_only_and_a_librarian_sees_anyones()
    {
        var (id, _, token) = await fixture.NewMemberAsync();
        var (otherId, _, _) = await fixture.NewMemberAsync();
        using var member = fixture.Client(token);

        Assert.Equal(HttpStatusCode.OK, (await member.GetAsync($"/api/users/{id}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await member.GetAsync($"/api/users/{otherId}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await member.GetAsync($"/api/users/{Guid.CreateVersion7()}", Ct)).StatusCode);

        var (_, librarianToken) = await fixture.NewLibrarianAsync();
        using var librarian = fixture.Client(librarianToken);
        Assert.Equal(HttpStatusCode.OK, (await librarian.GetAsync($"/api/users/{otherId}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await librarian.GetAsync($"/api/users/{Guid.CreateVersion7()}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await librarian.GetAsync("/api/users/not-a-guid", Ct)).StatusCode);
    }

    [Fact]
    public async Task Only_an_admin_changes_roles_and_never_their_own()
    {
        var (id, email, memberToken) = await fixture.NewMemberAsync();
        using var admin = fixture.Client(await fixture.AdminTokenAsync());

        using var promoted = await admin.PutAsJsonAsync($"/api/users/{id}/role", new { role = "librarian" }, Ct);
        Assert.Equal(HttpStatusCode.OK, promoted.StatusCode);
        Assert.Equal("librarian", (await promoted.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("role").GetString());
        // The next token carries the new role.
        var jwt = new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(await fixture.AccessTokenAsync(email, "Reader-password-1"));
        Assert.Equal("librarian", jwt.GetClaim("role").Value);

        Assert.Equal(HttpStatusCode.BadRequest, (await admin.PutAsJsonAsync($"/api/users/{id}/role", new { role = "root" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.PutAsJsonAsync($"/api/users/{Guid.CreateVersion7()}/role", new { role = "member" }, Ct)).StatusCode);

        var adminId = (await admin.GetFromJsonAsync<JsonElement>("/api/users/me", Ct)).GetProperty("id").GetGuid();
        Assert.Equal(HttpStatusCode.Conflict, (await admin.PutAsJsonAsync($"/api/users/{adminId}/role", new { role = "member" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await admin.PostAsync($"/api/users/{adminId}/deactivate", null, Ct)).StatusCode);

        // A member (or librarian) cannot change a role, their own included.
        using var member = fixture.Client(memberToken);
        Assert.Equal(HttpStatusCode.Forbidden, (await member.PutAsJsonAsync($"/api/users/{id}/role", new { role = "admin" }, Ct)).StatusCode);
        var (_, librarianToken) = await fixture.NewLibrarianAsync();
        Assert.Equal(HttpStatusCode.Forbidden, (await fixture.Client(librarianToken).PostAsync($"/api/users/{id}/deactivate", null, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.PostAsync($"/api/users/{Guid.CreateVersion7()}/deactivate", null, Ct)).StatusCode);
    }

    [Fact]
    public async Task The_first_admin_comes_from_configuration_once()
    {
        var me = await fixture.Client(await fixture.AdminTokenAsync()).GetFromJsonAsync<JsonElement>("/api/users/me", Ct);
        Assert.Equal("admin", me.GetProperty("role").GetString());
        Assert.Equal(UserServiceFixture.AdminEmail, me.GetProperty("email").GetString());
    }
    [Theory]
    [InlineData("text/plain")]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData("application/xml")]
    public async Task Desk_enrolment_with_another_content_type_than_json_is_a_415_problem_and_enrols_nobody(string contentType)
    {
        // POST /api/users shares its route with GET /api/users: the wrong type once fell through to a 404.
        var (_, librarianToken) = await fixture.NewLibrarianAsync();
        var email = $"typed-{Guid.NewGuid():N}@library.test";
        using var body = new StringContent($$"""{"email":"{{email}}","firstName":"T","lastName":"Y","password":"Typed-password-1"}""");
        body.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(contentType);

        using var response = await fixture.Client(librarianToken).PostAsync("/api/users", body, Ct);

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(415, (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("status").GetInt32());
        var found = await fixture.Client(librarianToken).GetFromJsonAsync<JsonElement>($"/api/users?search={Uri.EscapeDataString(email)}", Ct);
        Assert.Equal(0, found.GetProperty("totalCount").GetInt64());
    }
}
