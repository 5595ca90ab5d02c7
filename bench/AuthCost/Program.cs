// Measures, in one process, the two costs that bound the auth path:
//  - password hashing as the user service does it (ASP.NET Core Identity's PasswordHasher, V3:
//    PBKDF2-HMAC-SHA512, default iterations): verifications per second on 1 thread and on all cores;
//  - validating an ES256 access token (JsonWebTokenHandler with the service's parameters), and the
//    same token again through the services' CachingJsonWebTokenHandler (remembered: a hit), in
//    alternating turns, with their ratio.
// Prints one line per figure. `AuthCost SECONDS tokens` measures the tokens only.
using System.Diagnostics;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Identity;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

var seconds = args.Length > 0 ? double.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 5;
var hasher = new PasswordHasher<object>();
var hash = hasher.HashPassword(new object(), "Reader-password-1");

double Rate(int threads)
{
    long count = 0;
    var until = Stopwatch.StartNew();
    Parallel.For(0, threads, _ =>
    {
        while (until.Elapsed.TotalSeconds < seconds)
        {
            hasher.VerifyHashedPassword(new object(), hash, "Reader-password-1");
            Interlocked.Increment(ref count);
        }
    });
    return count / until.Elapsed.TotalSeconds;
}

if (args.Length < 2 || args[1] != "tokens")
{
    var single = Rate(1);
    var all = Rate(Environment.ProcessorCount);
    Console.WriteLine($"password-verify threads=1 per_s={single:F1} ms_each={1000 / single:F1}");
    Console.WriteLine($"password-verify threads={Environment.ProcessorCount} per_s={all:F1}");
}

using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
var key = new ECDsaSecurityKey(ecdsa) { KeyId = "bench" };
var handler = new JsonWebTokenHandler();
var token = handler.CreateToken(new SecurityTokenDescriptor
{
    Issuer = "library",
    Audience = "library-api",
    Expires = DateTime.UtcNow.AddMinutes(15),
    Claims = new Dictionary<string, object> { ["sub"] = Guid.NewGuid().ToString(), ["role"] = "member", ["email"] = "a@b.c", ["name"] = "A B" },
    SigningCredentials = new SigningCredentials(key, SecurityAlgorithms.EcdsaSha256),
});
var parameters = new TokenValidationParameters
{
    NameClaimType = "name",
    RoleClaimType = "role",
    ValidIssuer = "library",
    ValidAudience = "library-api",
    ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256],
    IssuerSigningKey = key,
    ClockSkew = TimeSpan.FromSeconds(30),
};
var remembering = new Library.ServiceDefaults.CachingJsonWebTokenHandler() { MapInboundClaims = false };
handler.MapInboundClaims = false;
for (var i = 0; i < 2000; i++)
{
    await handler.ValidateTokenAsync(token, parameters);
    await remembering.ValidateTokenAsync(token, parameters);
}

// Microseconds per validation over a turn of SECONDS / 6; the bearer handler clones the
// parameters per request, so each call gets a clone here too.
async Task<double> Turn(JsonWebTokenHandler h)
{
    var clock = Stopwatch.StartNew();
    var validations = 0;
    while (clock.Elapsed.TotalSeconds < seconds / 6)
    {
        var result = await h.ValidateTokenAsync(token, parameters.Clone());
        if (!result.IsValid || result.ClaimsIdentity.FindFirst("role")?.Value != "member")
        {
            throw new InvalidOperationException("the token did not validate", result.Exception);
        }
        validations++;
    }
    return clock.Elapsed.TotalMilliseconds * 1000 / validations;
}
var full = new List<double>();
var hit = new List<double>();
for (var round = 0; round < 3; round++)
{
    full.Add(await Turn(handler));
    hit.Add(await Turn(remembering));
}
Console.WriteLine($"es256-validate threads=1 per_s={1e6 / full.Min():F0} us_each={full.Min():F1} turns_us={string.Join('/', full.Select(v => v.ToString("F1")))}");
Console.WriteLine($"es256-remembered threads=1 per_s={1e6 / hit.Min():F0} us_each={hit.Min():F1} turns_us={string.Join('/', hit.Select(v => v.ToString("F1")))} hits={remembering.Hits}");
Console.WriteLine($"remembered/validate ratio={hit.Min() / full.Min():F3}");
