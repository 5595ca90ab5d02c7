using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Grpc.Core;
using Grpc.Net.Client;
using Library.Contracts.Users;
using Library.UserService.Auth;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Library.UserService.Tests;

/// <summary>
/// Forged and broken tokens, built with the service's real signing key where that is the point
/// (a valid signature on the wrong claims), all refused by the service's own validation, which
/// reads the keys from the published JWKS like every other service.
/// </summary>
public sealed class TokenTests(UserServiceFixture fixture) : IClassFixture<UserServiceFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<SigningCredentials> RealKeyAsync() =>
        await fixture.Host.Services.GetRequiredService<SigningKeys>().CurrentAsync(Ct);

    private static string Sign(SigningCredentials credentials, string issuer = "library", string audience = "library-api",
        DateTime? expires = null, string role = "member", string? sub = null)
    {
        var now = DateTime.UtcNow;
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = audience,
            IssuedAt = (expires ?? now.AddMinutes(15)).AddMinutes(-15),
            NotBefore = (expires ?? now.AddMinutes(15)).AddMinutes(-15),
            Expires = expires ?? now.AddMinutes(15),
            Claims = new Dictionary<string, object> { ["sub"] = sub ?? Guid.CreateVersion7().ToString(), ["role"] = role, ["email"] = "x@library.test", ["name"] = "X" },
            SigningCredentials = credentials,
        });
    }

    private static string B64(string json) => Base64UrlEncoder.Encode(Encoding.UTF8.GetBytes(json));

    private async Task AssertRefused(string token)
    {
        using var response = await fixture.Client(token).GetAsync("/api/users/me", Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task A_genuine_token_is_accepted()
    {
        var (id, _, _) = await fixture.NewMemberAsync();
        using var response = await fixture.Client(Sign(await RealKeyAsync(), sub: id.ToString())).GetAsync("/api/users/me", Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task An_expired_token_is_refused() =>
        await AssertRefused(Sign(await RealKeyAsync(), expires: DateTime.UtcNow.AddMinutes(-2)));

    [Fact]
    public async Task A_token_from_another_issuer_is_refused() =>
        await AssertRefused(Sign(await RealKeyAsync(), issuer: "https://evil.example"));

    [Fact]
    public async Task A_token_for_another_audience_is_refused() =>
        await AssertRefused(Sign(await RealKeyAsync(), audience: "someone-else"));

    [Fact]
    public async Task A_tampered_payload_is_refused()
    {
        var (_, _, token) = await fixture.NewMemberAsync();
        var parts = token.Split('.');
        var payload = JsonDocument.Parse(Base64UrlEncoder.Decode(parts[1])).RootElement;
        var forged = payload.EnumerateObject().ToDictionary(p => p.Name, p => (object)p.Value);
        forged["role"] = "admin";
        await AssertRefused($"{parts[0]}.{B64(JsonSerializer.Serialize(forged))}.{parts[2]}");
    }

    [Fact]
    public async Task An_unsigned_token_with_alg_none_is_refused()
    {
        var (_, _, token) = await fixture.NewMemberAsync();
        var payload = token.Split('.')[1];
        await AssertRefused($"{B64("{\"alg\":\"none\",\"typ\":\"JWT\"}")}.{payload}.");
    }

    [Fact]
    public async Task A_token_signed_with_HS256_using_the_public_key_is_refused()
    {
        var (_, _, token) = await fixture.NewMemberAsync();
        var jwks = await fixture.Client().GetFromJsonAsync<JsonElement>("/.well-known/jwks.json", Ct);
        var jwk = jwks.GetProperty("keys")[0];
        var header = B64($"{{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"{jwk.GetProperty("kid").GetString()}\"}}");
        var payload = token.Split('.')[1];
        // The classic confusion attack: the public key (as published) used as an HMAC secret.
        using var hmac = new HMACSHA256(Encoding.UTF8.GetBytes(jwk.GetRawText()));
        var signature = Base64UrlEncoder.Encode(hmac.ComputeHash(Encoding.ASCII.GetBytes($"{header}.{payload}")));
        await AssertRefused($"{header}.{payload}.{signature}");
    }

    [Fact]
    public async Task A_token_signed_by_an_unknown_key_is_refused()
    {
        using var stranger = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        await AssertRefused(Sign(new SigningCredentials(new ECDsaSecurityKey(stranger) { KeyId = "unknown-key" }, "ES256")));
    }

    [Fact]
    public async Task Discovery_publishes_the_issuer_and_the_public_keys_only()
    {
        using var client = fixture.Client();
        var discovery = await client.GetFromJsonAsync<JsonElement>("/.well-known/openid-configuration", Ct);
        Assert.Equal("library", discovery.GetProperty("issuer").GetString());

        var jwks = await client.GetFromJsonAsync<JsonElement>(discovery.GetProperty("jwks_uri").GetString(), Ct);
        var key = jwks.GetProperty("keys")[0];
        Assert.Equal("EC", key.GetProperty("kty").GetString());
        Assert.Equal("P-256", key.GetProperty("crv").GetString());
        Assert.Equal("ES256", key.GetProperty("alg").GetString());
        Assert.False(key.TryGetProperty("d", out _)); // never the private part
    }

    [Fact]
    public async Task Client_credentials_give_a_service_token_and_wrong_secrets_get_nothing()
    {
        var token = await ServiceTokenAsync();
        var jwt = new JsonWebToken(token);
        Assert.Equal(["library-internal"], jwt.Audiences);
        Assert.Equal("service", jwt.GetClaim("role").Value);

        using var client = fixture.Client();
        using var wrong = await client.PostAsync("/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = UserServiceFixture.ClientId,
            ["client_secret"] = "guess",
        }), Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        Assert.Equal("invalid_client", (await wrong.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("error").GetString());

        using var password = await client.PostAsync("/connect/token", new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "password" }), Ct);
        Assert.Equal(HttpStatusCode.BadRequest, password.StatusCode);

        // A service token is no person: it opens no user endpoint.
        using var me = await fixture.Client(token).GetAsync("/api/users/me", Ct);
        Assert.Equal(HttpStatusCode.Forbidden, me.StatusCode);
    }

    [Fact]
    public async Task The_gRPC_look_up_answers_a_service_token_and_refuses_a_user_token()
    {
        var (id, email, userToken) = await fixture.NewMemberAsync();
        // gRPC-Web over the service's plain HTTP/1.1 port, as the lending service calls it.
        using var channel = GrpcChannel.ForAddress(fixture.Host.Address, new GrpcChannelOptions
        {
            HttpHandler = new global::Grpc.Net.Client.Web.GrpcWebHandler(global::Grpc.Net.Client.Web.GrpcWebMode.GrpcWeb, new HttpClientHandler()),
            HttpVersion = HttpVersion.Version11,
            HttpVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        });
        var users = new Library.Contracts.Users.Users.UsersClient(channel);
        var serviceToken = await ServiceTokenAsync();

        var reply = await users.GetUserAsync(new GetUserRequest { Id = id.ToString() },
            new Metadata { { "Authorization", $"Bearer {serviceToken}" } }, cancellationToken: Ct);
        Assert.Equal(email, reply.Email);
        Assert.True(reply.Active);
        Assert.Equal(Library.UserService.PatronGroups.DefaultPatronGroup.InitialId.ToString(), reply.PatronGroupId);

        var refused = await Assert.ThrowsAsync<RpcException>(() => users.GetUserAsync(new GetUserRequest { Id = id.ToString() },
            new Metadata { { "Authorization", $"Bearer {userToken}" } }, cancellationToken: Ct).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, refused.StatusCode);

        var anonymous = await Assert.ThrowsAsync<RpcException>(() => users.GetUserAsync(new GetUserRequest { Id = id.ToString() }, cancellationToken: Ct).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, anonymous.StatusCode);

        var missing = await Assert.ThrowsAsync<RpcException>(() => users.GetUserAsync(new GetUserRequest { Id = Guid.CreateVersion7().ToString() },
            new Metadata { { "Authorization", $"Bearer {serviceToken}" } }, cancellationToken: Ct).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
    }

    private async Task<string> ServiceTokenAsync()
    {
        using var client = fixture.Client();
        using var response = await client.PostAsync("/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = UserServiceFixture.ClientId,
            ["client_secret"] = UserServiceFixture.ClientSecret,
        }), Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("access_token").GetString()!;
    }
}
