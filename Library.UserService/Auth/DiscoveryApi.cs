using System.Security.Cryptography;
using System.Text;
using Library.ServiceDefaults;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace Library.UserService.Auth;

/// <summary>
/// What other services need to trust and call: the OpenID discovery document and the public
/// keys (JWKS) that validate every token, and the client-credentials grant that issues service
/// tokens. Internal: the gateway routes none of these.
/// </summary>
public static class DiscoveryApi
{
    private static readonly string[] GrantTypes = ["client_credentials"];
    private static readonly string[] SigningAlgorithms = [AuthOptions.Algorithm];
    private static readonly string[] ClientAuthMethods = ["client_secret_post", "client_secret_basic"];

    public static IEndpointRouteBuilder MapDiscovery(this IEndpointRouteBuilder app)
    {
        // Not part of the public API (the gateway routes none of it): out of the documents.
        var group = app.MapGroup("").WithTags("Discovery").AllowAnonymous().ExcludeFromDescription();
        group.MapGet("/.well-known/openid-configuration", Discovery);
        group.MapGet("/.well-known/jwks.json", Jwks);
        group.MapPost("/connect/token", Token).DisableAntiforgery();
        return app;
    }

    private static IResult Discovery(HttpRequest request, IOptions<AuthOptions> auth)
    {
        var self = $"{request.Scheme}://{request.Host}";
        return Results.Json(new Dictionary<string, object>
        {
            ["issuer"] = auth.Value.Issuer,
            ["jwks_uri"] = $"{self}/.well-known/jwks.json",
            ["token_endpoint"] = $"{self}/connect/token",
            ["grant_types_supported"] = GrantTypes,
            ["id_token_signing_alg_values_supported"] = SigningAlgorithms,
            ["token_endpoint_auth_methods_supported"] = ClientAuthMethods,
        });
    }

    private static async Task<IResult> Jwks(SigningKeys keys, HttpResponse response, CancellationToken ct)
    {
        var published = await keys.PublishedAsync(ct);
        response.Headers.CacheControl = "public, max-age=60";
        return Results.Json(new
        {
            keys = published.Select(k =>
            {
                var jwk = JsonWebKeyConverter.ConvertFromECDsaSecurityKey(k.Key);
                return new Dictionary<string, string>
                {
                    ["kty"] = jwk.Kty,
                    ["crv"] = jwk.Crv,
                    ["x"] = jwk.X,
                    ["y"] = jwk.Y,
                    ["kid"] = k.Id,
                    ["use"] = "sig",
                    ["alg"] = AuthOptions.Algorithm,
                };
            }),
        });
    }

    /// <summary>RFC 6749 client credentials: a short-lived token with audience library-internal.</summary>
    private static async Task<IResult> Token(HttpRequest request, TokenIssuer tokens, IOptions<IssuerOptions> options, CancellationToken ct)
    {
        if (!request.HasFormContentType)
        {
            return OAuthError(StatusCodes.Status400BadRequest, "invalid_request", "Send application/x-www-form-urlencoded.");
        }
        var form = await request.ReadFormAsync(ct);
        if (form["grant_type"] != "client_credentials")
        {
            return OAuthError(StatusCodes.Status400BadRequest, "unsupported_grant_type", "Only client_credentials is supported here.");
        }

        var (clientId, secret) = ClientCredentials(request, form);
        if (clientId is null || secret is null
            || !options.Value.Clients.TryGetValue(clientId, out var client)
            || string.IsNullOrEmpty(client.Secret)
            || !CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(secret)), SHA256.HashData(Encoding.UTF8.GetBytes(client.Secret))))
        {
            return OAuthError(StatusCodes.Status401Unauthorized, "invalid_client", "Unknown client or wrong secret.");
        }

        return Results.Json(new Dictionary<string, object>
        {
            ["access_token"] = await tokens.ServiceTokenAsync(clientId, ct),
            ["token_type"] = "Bearer",
            ["expires_in"] = (int)options.Value.ServiceTokenLifetime.TotalSeconds,
        });
    }

    private static (string? Id, string? Secret) ClientCredentials(HttpRequest request, IFormCollection form)
    {
        var header = request.Headers.Authorization.ToString();
        if (header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(header[6..].Trim()));
                var colon = decoded.IndexOf(':', StringComparison.Ordinal);
                if (colon > 0)
                {
                    return (Uri.UnescapeDataString(decoded[..colon]), Uri.UnescapeDataString(decoded[(colon + 1)..]));
                }
            }
            catch (FormatException)
            {
                return (null, null);
            }
        }
        return (form["client_id"].FirstOrDefault(), form["client_secret"].FirstOrDefault());
    }

    private static IResult OAuthError(int status, string error, string description) =>
        Results.Json(new { error, error_description = description }, statusCode: status);
}
