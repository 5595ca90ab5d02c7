using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Library.UserService.Auth;
using Library.UserService.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;

namespace Library.UserService.Tests;

/// <summary>A user service whose signing key is due for rotation after five (fake) seconds.</summary>
public sealed class RotatingKeysFixture : UserServiceFixture
{
    protected override IReadOnlyDictionary<string, string?> ExtraSettings => new Dictionary<string, string?>
    {
        ["Auth:KeyRotation"] = "00:00:05",
    };
}

public sealed class KeyRotationTests(RotatingKeysFixture fixture) : IClassFixture<RotatingKeysFixture>
{
    [Fact]
    public async Task After_a_rotation_new_tokens_use_the_new_key_and_old_tokens_still_validate()
    {
        var ct = TestContext.Current.CancellationToken;
        var (_, email, oldToken) = await fixture.NewMemberAsync();
        var oldKid = new JsonWebToken(oldToken).Kid;

        // Six seconds on, the key is due: the next signing (after the minute-long key cache, which
        // the test skips) creates its successor. Validators check lifetimes on the real clock, and
        // six seconds ahead is inside their 30 s skew.
        fixture.Clock.Advance(TimeSpan.FromSeconds(6));
        fixture.Host.Services.GetRequiredService<SigningKeys>().Invalidate();
        var newToken = await fixture.AccessTokenAsync(email, "Reader-password-1");
        var newKid = new JsonWebToken(newToken).Kid;
        Assert.NotEqual(oldKid, newKid);

        var jwks = await fixture.Client().GetFromJsonAsync<JsonElement>("/.well-known/jwks.json", ct);
        var published = jwks.GetProperty("keys").EnumerateArray().Select(k => k.GetProperty("kid").GetString()).ToList();
        Assert.Contains(oldKid, published);
        Assert.Contains(newKid, published);

        // Both validate: the validator re-reads the keys when it meets a key ID it does not know.
        Assert.Equal(HttpStatusCode.OK, (await fixture.Client(newToken).GetAsync("/api/users/me", ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await fixture.Client(oldToken).GetAsync("/api/users/me", ct)).StatusCode);

        var keys = await fixture.InScopeAsync(db => db.SigningKeys.OrderBy(k => k.CreatedAt).ToListAsync(ct));
        Assert.Equal(2, keys.Count);
        Assert.NotNull(keys[0].RetiredAt);
        Assert.Null(keys[1].RetiredAt);
    }

    [Fact]
    public async Task A_password_hashed_with_fewer_iterations_is_rehashed_at_the_next_login()
    {
        var ct = TestContext.Current.CancellationToken;
        var (id, email, _) = await fixture.NewMemberAsync();
        var weak = new PasswordHasher<User>(Options.Create(new PasswordHasherOptions { IterationCount = UserServiceFixture.PasswordIterations / 2 }));
        var weakHash = weak.HashPassword(null!, "Reader-password-1");
        await fixture.InScopeAsync(db => db.Users.Where(u => u.Id == id).ExecuteUpdateAsync(s => s.SetProperty(u => u.PasswordHash, weakHash), ct));

        await fixture.LoginAsync(email, "Reader-password-1");

        var stored = await fixture.InScopeAsync(db => db.Users.Where(u => u.Id == id).Select(u => u.PasswordHash).SingleAsync(ct));
        Assert.NotEqual(weakHash, stored);
        Assert.Equal(UserServiceFixture.PasswordIterations, IterationsOf(stored));
        var current = fixture.Host.Services.GetRequiredService<IPasswordHasher<User>>();
        Assert.Equal(PasswordVerificationResult.Success, current.VerifyHashedPassword(null!, stored, "Reader-password-1"));
        await fixture.LoginAsync(email, "Reader-password-1");
    }

    [Fact]
    public async Task A_new_password_is_hashed_with_the_configured_work_factor_and_the_default_is_identitys()
    {
        var ct = TestContext.Current.CancellationToken;
        var (id, _, _) = await fixture.NewMemberAsync();
        var stored = await fixture.InScopeAsync(db => db.Users.Where(u => u.Id == id).Select(u => u.PasswordHash).SingleAsync(ct));
        Assert.Equal(UserServiceFixture.PasswordIterations, IterationsOf(stored));
        // Unset, the work factor is Identity's own default: 100,000 iterations of PBKDF2-HMAC-SHA512.
        Assert.Equal(100_000, new Library.UserService.Auth.IssuerOptions().PasswordIterations);
    }

    /// <summary>The iteration count an Identity V3 hash carries (format marker, PRF, then the count, big-endian).</summary>
    private static int IterationsOf(string hash)
    {
        var bytes = Convert.FromBase64String(hash);
        Assert.Equal(0x01, bytes[0]);
        return System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(5, 4));
    }
}
