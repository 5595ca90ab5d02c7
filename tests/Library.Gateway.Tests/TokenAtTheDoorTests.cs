extern alias UserService;

using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using System.Security.Cryptography;
using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using UserServiceProgram = UserService::Program;

namespace Library.Gateway.Tests;

public sealed class TokenAtTheDoorTests(RoutingFixture fixture) : IClassFixture<RoutingFixture>
{
    private static string B64(string json) => Base64UrlEncoder.Encode(Encoding.UTF8.GetBytes(json));

    private string? _publicJwk;

    /// <summary>A well-signed token (the issuer's real key) with one claim wrong.</summary>
    private string SignedByTheRealKey(string issuer = "library", string audience = "library-api", DateTime? expires = null)
    {
        var keys = fixture.Issuer.Host.Services.GetRequiredService<UserService::Library.UserService.Auth.SigningKeys>();
        var end = expires ?? DateTime.UtcNow.AddMinutes(10);
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = audience,
            IssuedAt = end.AddMinutes(-15),
            NotBefore = end.AddMinutes(-15),
            Expires = end,
            Claims = new Dictionary<string, object> { ["sub"] = Guid.NewGuid().ToString(), ["role"] = "admin" },
            SigningCredentials = keys.CurrentAsync(CancellationToken.None).GetAwaiter().GetResult(),
        });
    }

    private string Forged(string kind)
    {
        var parts = fixture.Token.Split('.');
        switch (kind)
        {
            case "tampered":
                var payload = Encoding.UTF8.GetString(Base64UrlEncoder.DecodeBytes(parts[1])).Replace("\"admin\"", "\"root\"", StringComparison.Ordinal);
                return $"{parts[0]}.{B64(payload)}.{parts[2]}";
            case "alg-none":
                return $"{B64("{\"alg\":\"none\",\"typ\":\"JWT\"}")}.{parts[1]}.";
            case "hs256-public-key":
                // The public key, as published, used as an HMAC secret.
                var jwk = _publicJwk ??= new HttpClient { BaseAddress = fixture.Issuer.Host.Address }
                    .GetFromJsonAsync<JsonElement>("/.well-known/jwks.json").GetAwaiter().GetResult().GetProperty("keys")[0].GetRawText();
                var header = B64("{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
                using (var hmac = new HMACSHA256(Encoding.UTF8.GetBytes(jwk)))
                {
                    return $"{header}.{parts[1]}.{Base64UrlEncoder.Encode(hmac.ComputeHash(Encoding.ASCII.GetBytes($"{header}.{parts[1]}")))}";
                }
            case "expired":
                return SignedByTheRealKey(expires: DateTime.UtcNow.AddMinutes(-2));
            case "wrong-issuer":
                return SignedByTheRealKey(issuer: "https://evil.example");
            case "wrong-audience":
                return SignedByTheRealKey(audience: "library-internal-but-not-really");
            case "unknown-key":
                using (var stranger = ECDsa.Create(ECCurve.NamedCurves.nistP256))
                {
                    return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
                    {
                        Issuer = "library",
                        Audience = "library-api",
                        Expires = DateTime.UtcNow.AddMinutes(10),
                        Claims = new Dictionary<string, object> { ["sub"] = Guid.NewGuid().ToString(), ["role"] = "admin" },
                        SigningCredentials = new SigningCredentials(new ECDsaSecurityKey(stranger) { KeyId = "stranger" }, "ES256"),
                    });
                }
            case "garbage":
                return "not-a-jwt";
            default:
                throw new ArgumentOutOfRangeException(nameof(kind));
        }
    }

    [Theory]
    [InlineData("tampered")]
    [InlineData("alg-none")]
    [InlineData("hs256-public-key")]
    [InlineData("expired")]
    [InlineData("wrong-issuer")]
    [InlineData("wrong-audience")]
    [InlineData("unknown-key")]
    [InlineData("garbage")]
    public async Task A_forged_token_is_a_401_at_the_gateway_and_never_reaches_the_service(string kind)
    {
        var before = fixture.Lending.Received.Count;
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/loans");
        request.Headers.Authorization = new("Bearer", Forged(kind));

        using var response = await fixture.Client.SendAsync(request, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal(before, fixture.Lending.Received.Count);
    }

    [Fact]
    public async Task A_genuine_token_signed_the_same_way_passes()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/loans");
        request.Headers.Authorization = new("Bearer", SignedByTheRealKey());
        using var response = await fixture.Client.SendAsync(request, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Anonymous_requests_pass_through_for_the_service_to_judge()
    {
        using var response = await fixture.Client.GetAsync("/api/books?search=x", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}
