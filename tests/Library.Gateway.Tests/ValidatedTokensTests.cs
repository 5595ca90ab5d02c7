using System.Security.Cryptography;
using Library.ServiceDefaults;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Library.Gateway.Tests;

/// <summary>
/// The bearer scheme's memory of validated tokens (<see cref="CachingJsonWebTokenHandler"/>): a
/// hit answers only what a full validation would, now. Pure logic: real ES256 keys and tokens, the
/// parameters the services use, a clock the test moves for the hits.
/// </summary>
public sealed class ValidatedTokensTests : IDisposable
{
    private readonly ECDsa _ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly ECDsa _otherEc = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly ECDsaSecurityKey _key;
    private readonly ECDsaSecurityKey _other;
    private readonly MovableClock _clock = new();

    public ValidatedTokensTests()
    {
        _key = new ECDsaSecurityKey(_ec) { KeyId = "k1" };
        _other = new ECDsaSecurityKey(_otherEc) { KeyId = "k2" };
    }

    public void Dispose()
    {
        _ec.Dispose();
        _otherEc.Dispose();
    }

    private sealed class MovableClock : TimeProvider
    {
        public TimeSpan Offset { get; set; }

        public override DateTimeOffset GetUtcNow() => DateTimeOffset.UtcNow + Offset;
    }

    private static TokenValidationParameters Parameters(params SecurityKey[] keys) => new()
    {
        ValidIssuer = "library",
        ValidAudiences = ["library-api", "library-internal"],
        ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256],
        ValidateIssuer = true,
        ValidateAudience = true,
        ValidateLifetime = true,
        ValidateIssuerSigningKey = true,
        RequireSignedTokens = true,
        RequireExpirationTime = true,
        ClockSkew = TimeSpan.FromSeconds(30),
        IssuerSigningKeys = keys,
        NameClaimType = "name",
        RoleClaimType = "role",
    };

    private static string Token(SecurityKey key, string role = "member", TimeSpan? lifetime = null)
    {
        var now = DateTime.UtcNow;
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = "library",
            Audience = "library-api",
            IssuedAt = now,
            NotBefore = now,
            Expires = now + (lifetime ?? TimeSpan.FromMinutes(15)),
            Claims = new Dictionary<string, object> { ["sub"] = Guid.NewGuid().ToString(), ["role"] = role },
            SigningCredentials = new SigningCredentials(key, SecurityAlgorithms.EcdsaSha256),
        });
    }

    [Fact]
    public async Task A_token_seen_before_is_answered_from_memory_with_an_identity_of_its_own()
    {
        var handler = new CachingJsonWebTokenHandler(time: _clock) { MapInboundClaims = false };
        var token = Token(_key, "librarian");

        var first = await handler.ValidateTokenAsync(token, Parameters(_key));
        var second = await handler.ValidateTokenAsync(token, Parameters(_key));

        Assert.True(first.IsValid);
        Assert.True(second.IsValid);
        Assert.Equal(1, handler.Hits);
        Assert.NotSame(first.ClaimsIdentity, second.ClaimsIdentity);
        Assert.Equal(first.ClaimsIdentity.Claims.Select(c => (c.Type, c.Value)), second.ClaimsIdentity.Claims.Select(c => (c.Type, c.Value)));
        Assert.Equal("librarian", second.ClaimsIdentity.FindFirst("role")?.Value);
        Assert.Equal("role", second.ClaimsIdentity.RoleClaimType);
        Assert.Equal(first.SecurityToken.ValidTo, second.SecurityToken.ValidTo);
        // A change to one request's identity does not reach the next one.
        second.ClaimsIdentity.AddClaim(new System.Security.Claims.Claim("role", "admin"));
        var third = await handler.ValidateTokenAsync(token, Parameters(_key));
        Assert.DoesNotContain(third.ClaimsIdentity.Claims, c => c.Value == "admin");
    }

    [Fact]
    public async Task A_remembered_token_past_its_expiry_and_skew_is_not_answered_from_memory()
    {
        var handler = new CachingJsonWebTokenHandler(time: _clock) { MapInboundClaims = false };
        var token = Token(_key, lifetime: TimeSpan.FromMinutes(1));
        Assert.True((await handler.ValidateTokenAsync(token, Parameters(_key))).IsValid);

        _clock.Offset = TimeSpan.FromSeconds(60 + 15); // within the 30 s skew: still valid
        Assert.True((await handler.ValidateTokenAsync(token, Parameters(_key))).IsValid);
        Assert.Equal(1, handler.Hits);

        _clock.Offset = TimeSpan.FromSeconds(60 + 31); // past it (exp is in whole seconds, never later than asked): the hit is refused, a full validation runs
        await handler.ValidateTokenAsync(token, Parameters(_key));
        Assert.Equal(1, handler.Hits);
    }

    [Fact]
    public async Task A_remembered_token_whose_key_was_dropped_is_refused()
    {
        var handler = new CachingJsonWebTokenHandler(time: _clock) { MapInboundClaims = false };
        var token = Token(_key);
        Assert.True((await handler.ValidateTokenAsync(token, Parameters(_key, _other))).IsValid);

        var afterRotation = await handler.ValidateTokenAsync(token, Parameters(_other));

        Assert.False(afterRotation.IsValid);
        Assert.IsType<SecurityTokenSignatureKeyNotFoundException>(afterRotation.Exception, exactMatch: false);
        Assert.Equal(0, handler.Hits);
    }

    [Fact]
    public async Task Refusals_are_not_remembered_and_a_tampered_copy_of_a_remembered_token_is_refused()
    {
        var handler = new CachingJsonWebTokenHandler(time: _clock) { MapInboundClaims = false };
        var token = Token(_key);
        var stranger = Token(new ECDsaSecurityKey(_otherEc) { KeyId = "k1" }); // the right key ID, the wrong key
        Assert.True((await handler.ValidateTokenAsync(token, Parameters(_key))).IsValid);

        Assert.False((await handler.ValidateTokenAsync(stranger, Parameters(_key))).IsValid);
        Assert.False((await handler.ValidateTokenAsync(stranger, Parameters(_key))).IsValid);
        var parts = token.Split('.');
        var tampered = $"{parts[0]}.{Base64UrlEncoder.Encode(Base64UrlEncoder.Decode(parts[1]).Replace("member", "admin", StringComparison.Ordinal))}.{parts[2]}";
        Assert.False((await handler.ValidateTokenAsync(tampered, Parameters(_key))).IsValid);
        Assert.Equal(0, handler.Hits);
    }

    [Fact]
    public async Task It_keeps_no_more_tokens_than_its_capacity()
    {
        var handler = new CachingJsonWebTokenHandler(capacity: 2, time: _clock) { MapInboundClaims = false };
        var tokens = Enumerable.Range(0, 3).Select(_ => Token(_key)).ToList();
        foreach (var token in tokens)
        {
            Assert.True((await handler.ValidateTokenAsync(token, Parameters(_key))).IsValid);
        }
        foreach (var token in tokens)
        {
            Assert.True((await handler.ValidateTokenAsync(token, Parameters(_key))).IsValid);
        }
        // The first two are kept; the third, arriving when the memory was full of live tokens, was not.
        Assert.Equal(2, handler.Hits);
    }
}
