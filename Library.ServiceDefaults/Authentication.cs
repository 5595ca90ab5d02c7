using System.Security.Claims;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.IdentityModel.Tokens;

namespace Library.ServiceDefaults;

/// <summary>Settings of the section <c>Auth</c>, shared by the issuer and every validator.</summary>
public sealed class AuthOptions
{
    public const string SectionName = "Auth";

    /// <summary>The <c>iss</c> of every token the user service issues.</summary>
    public string Issuer { get; set; } = "library";

    /// <summary>The <c>aud</c> of access tokens for readers and staff.</summary>
    public string Audience { get; set; } = "library-api";

    /// <summary>The <c>aud</c> of service tokens (service-to-service calls only).</summary>
    public string InternalAudience { get; set; } = "library-internal";

    /// <summary>
    /// Where the signing keys are published. Default: the user service found by service
    /// discovery (<c>services:userservice:http:0</c>), so no secret is shared between services.
    /// </summary>
    public string MetadataAddress { get; set; } = "http://userservice/.well-known/openid-configuration";

    /// <summary>
    /// Keep validated tokens until their <c>exp</c> (<see cref="CachingJsonWebTokenHandler"/>), so
    /// a reader's token is verified once per process, not once per request. False: every request
    /// verifies its token (kept for A/B measurement).
    /// </summary>
    public bool CacheValidatedTokens { get; set; } = true;

    public const string Algorithm = SecurityAlgorithms.EcdsaSha256;
}

/// <summary>The roles of the API contract, and the policies services put on endpoints.</summary>
public static class Roles
{
    public const string Member = "member";
    public const string Librarian = "librarian";
    public const string Admin = "admin";

    /// <summary>A service token's role (client credentials), never a person's.</summary>
    public const string Service = "service";

    public static readonly IReadOnlyList<string> People = [Member, Librarian, Admin];

    public static bool IsPersonRole(string? role) => role is not null && People.Contains(role);
}

public static class Policies
{
    /// <summary>Any signed-in reader or staff member.</summary>
    public const string Member = "member";

    /// <summary>Librarians and admins.</summary>
    public const string Librarian = "librarian";

    public const string Admin = "admin";

    /// <summary>Another Library service, with a service token (audience library-internal).</summary>
    public const string Service = "service";
}

public static class AuthenticationExtensions
{
    public const string MetadataClient = "library-oidc";

    /// <summary>
    /// Validates bearer tokens against the keys the user service publishes (OpenID discovery +
    /// JWKS, fetched through service discovery): signature, issuer, audience, lifetime (30 s skew)
    /// and the algorithm itself (ES256 only, so <c>none</c> and HMAC-with-the-public-key are
    /// refused). A key ID not seen yet makes it re-read the keys once (rotation). A token that passed
    /// is remembered until it expires (<see cref="AuthOptions.CacheValidatedTokens"/>).
    /// </summary>
    public static IHostApplicationBuilder AddLibraryAuthentication(this IHostApplicationBuilder builder)
    {
        var auth = builder.Configuration.GetSection(AuthOptions.SectionName).Get<AuthOptions>() ?? new AuthOptions();
        builder.Services.Configure<AuthOptions>(builder.Configuration.GetSection(AuthOptions.SectionName));
        builder.Services.AddHttpClient(MetadataClient);

        builder.Services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme)
            .AddJwtBearer(o =>
            {
                o.MapInboundClaims = false;
                if (auth.CacheValidatedTokens)
                {
                    o.TokenHandlers.Clear();
                    o.TokenHandlers.Add(new CachingJsonWebTokenHandler { MapInboundClaims = false });
                }
                o.MetadataAddress = auth.MetadataAddress;
                o.RequireHttpsMetadata = false; // internal traffic; TLS ends at the ingress
                o.RefreshOnIssuerKeyNotFound = true;
                o.RefreshInterval = TimeSpan.FromSeconds(30);
                o.AutomaticRefreshInterval = TimeSpan.FromMinutes(10);
                o.TokenValidationParameters = new TokenValidationParameters
                {
                    ValidIssuer = auth.Issuer,
                    ValidAudiences = [auth.Audience, auth.InternalAudience],
                    ValidAlgorithms = [AuthOptions.Algorithm],
                    ValidateIssuer = true,
                    ValidateAudience = true,
                    ValidateLifetime = true,
                    ValidateIssuerSigningKey = true,
                    RequireSignedTokens = true,
                    RequireExpirationTime = true,
                    ClockSkew = TimeSpan.FromSeconds(30),
                    NameClaimType = "name",
                    RoleClaimType = "role",
                };
            });

        // The metadata is fetched with a client that resolves "http://userservice" through
        // service discovery and retries like every other client.
        builder.Services.AddOptions<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme)
            .Configure<IHttpClientFactory>((o, factory) => o.Backchannel = factory.CreateClient(MetadataClient));

        builder.Services.AddAuthorizationBuilder()
            .AddPolicy(Policies.Member, p => p.RequireAssertion(c => IsPerson(c.User, auth, Roles.Member, Roles.Librarian, Roles.Admin)))
            .AddPolicy(Policies.Librarian, p => p.RequireAssertion(c => IsPerson(c.User, auth, Roles.Librarian, Roles.Admin)))
            .AddPolicy(Policies.Admin, p => p.RequireAssertion(c => IsPerson(c.User, auth, Roles.Admin)))
            .AddPolicy(Policies.Service, p => p.RequireAssertion(c =>
                c.User.HasClaim("aud", auth.InternalAudience) && c.User.HasClaim("role", Roles.Service)));
        return builder;
    }

    /// <summary>A user token (audience library-api) with one of the roles.</summary>
    private static bool IsPerson(ClaimsPrincipal user, AuthOptions auth, params string[] roles) =>
        user.Identity?.IsAuthenticated == true
        && user.HasClaim("aud", auth.Audience)
        && roles.Any(r => user.HasClaim("role", r));

    /// <summary>The caller's user ID (<c>sub</c>), or null for anonymous callers and services.</summary>
    public static Guid? UserId(this ClaimsPrincipal user) =>
        Guid.TryParse(user.FindFirstValue("sub"), out var id) && user.HasClaim(c => c.Type == "role" && Roles.IsPersonRole(c.Value)) ? id : null;

    public static bool IsLibrarian(this ClaimsPrincipal user) => user.HasClaim("role", Roles.Librarian) || user.HasClaim("role", Roles.Admin);

    public static bool IsAdmin(this ClaimsPrincipal user) => user.HasClaim("role", Roles.Admin);
}
