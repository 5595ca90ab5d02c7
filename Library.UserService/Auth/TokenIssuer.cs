using System.Security.Cryptography;
using Library.ServiceDefaults;
using Library.UserService.Data;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Library.UserService.Auth;

[OpenApiExample("""{"accessToken":"eyJhbGciOiJFUzI1NiIsImtpZCI6IjAxOTc...","refreshToken":"q3Zk9c1mXyV0a2h2b3F6...","expiresIn":900,"tokenType":"Bearer"}""")]
public sealed record TokenPair(string AccessToken, string RefreshToken, int ExpiresIn, string TokenType = "Bearer");

/// <summary>Signs access tokens (people) and service tokens (other services).</summary>
public sealed class TokenIssuer(SigningKeys keys, IOptions<AuthOptions> auth, IOptions<IssuerOptions> issuer, TimeProvider time)
{
    private readonly JsonWebTokenHandler _handler = new() { SetDefaultTimesOnTokenCreation = false };

    public async Task<string> AccessTokenAsync(User user, CancellationToken ct) =>
        await SignAsync(auth.Value.Audience, issuer.Value.AccessTokenLifetime, new Dictionary<string, object>
        {
            ["sub"] = user.Id.ToString(),
            ["email"] = user.Email,
            ["name"] = $"{user.FirstName} {user.LastName}",
            ["role"] = user.Role,
        }, ct);

    public async Task<string> ServiceTokenAsync(string clientId, CancellationToken ct) =>
        await SignAsync(auth.Value.InternalAudience, issuer.Value.ServiceTokenLifetime, new Dictionary<string, object>
        {
            ["sub"] = clientId,
            ["client_id"] = clientId,
            ["role"] = Roles.Service,
        }, ct);

    private async Task<string> SignAsync(string audience, TimeSpan lifetime, Dictionary<string, object> claims, CancellationToken ct)
    {
        var now = time.GetUtcNow().UtcDateTime;
        claims["jti"] = Guid.NewGuid().ToString("N");
        return _handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = auth.Value.Issuer,
            Audience = audience,
            IssuedAt = now,
            NotBefore = now,
            Expires = now + lifetime,
            Claims = claims,
            SigningCredentials = await keys.CurrentAsync(ct),
        });
    }

    /// <summary>A new opaque refresh token and the hash under which it is stored.</summary>
    public static (string Token, string Hash) NewRefreshToken()
    {
        var token = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));
        return (token, Hash(token));
    }

    public static string Hash(string refreshToken) =>
        Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(refreshToken)));
}
