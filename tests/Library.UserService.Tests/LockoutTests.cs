using System.Net;
using System.Net.Http.Json;

namespace Library.UserService.Tests;

/// <summary>Moves the fixture's clock, so it has a fixture (a service and a database) of its own.</summary>
public sealed class LockoutTests(UserServiceFixture fixture) : IClassFixture<UserServiceFixture>
{
    [Fact]
    public async Task Five_wrong_passwords_lock_the_account_for_fifteen_minutes()
    {
        var ct = TestContext.Current.CancellationToken;
        var (_, email, _) = await fixture.NewMemberAsync();
        using var client = fixture.Client();

        for (var i = 0; i < 5; i++)
        {
            using var wrong = await client.PostAsJsonAsync("/api/auth/login", new { email, password = $"wrong-{i}-password" }, ct);
            Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        }

        // Locked: even the right password is refused, with the same answer as a wrong one.
        using var locked = await client.PostAsJsonAsync("/api/auth/login", new { email, password = "Reader-password-1" }, ct);
        Assert.Equal(HttpStatusCode.Unauthorized, locked.StatusCode);

        fixture.Clock.Advance(TimeSpan.FromMinutes(14));
        using (var stillLocked = await client.PostAsJsonAsync("/api/auth/login", new { email, password = "Reader-password-1" }, ct))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, stillLocked.StatusCode);
        }

        fixture.Clock.Advance(TimeSpan.FromMinutes(1) + TimeSpan.FromSeconds(1));
        using var open = await client.PostAsJsonAsync("/api/auth/login", new { email, password = "Reader-password-1" }, ct);
        Assert.Equal(HttpStatusCode.OK, open.StatusCode);
    }

    [Fact]
    public async Task A_success_resets_the_count_of_failures()
    {
        var ct = TestContext.Current.CancellationToken;
        var (_, email, _) = await fixture.NewMemberAsync();
        using var client = fixture.Client();

        for (var round = 0; round < 2; round++)
        {
            for (var i = 0; i < 4; i++)
            {
                using var wrong = await client.PostAsJsonAsync("/api/auth/login", new { email, password = "wrong-password" }, ct);
                Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
            }
            using var right = await client.PostAsJsonAsync("/api/auth/login", new { email, password = "Reader-password-1" }, ct);
            Assert.Equal(HttpStatusCode.OK, right.StatusCode);
        }
    }
}
