using Microsoft.AspNetCore.Identity;

namespace Library.UserService.Auth;

/// <summary>The user service's own part of the <c>Auth</c> section (the issuer's settings).</summary>
public sealed class IssuerOptions
{
    public TimeSpan AccessTokenLifetime { get; set; } = TimeSpan.FromMinutes(15);
    public TimeSpan ServiceTokenLifetime { get; set; } = TimeSpan.FromMinutes(5);
    public TimeSpan RefreshTokenLifetime { get; set; } = TimeSpan.FromDays(14);

    /// <summary>A signing key signs this long before a new one replaces it.</summary>
    public TimeSpan KeyRotation { get; set; } = TimeSpan.FromDays(30);

    /// <summary>
    /// The work factor of a new password hash: PBKDF2-HMAC-SHA512 iterations (Identity's
    /// <c>PasswordHasher</c>, whose default is 100,000; at least 1,000). Every hash keeps its own
    /// count, so a change needs no migration: a hash made with fewer is remade at its owner's next
    /// log-in. An operator raises it as machines get faster; the tests lower it (a hash each
    /// registration and log-in was a good part of their CPU).
    /// </summary>
    public int PasswordIterations { get; set; } = new PasswordHasherOptions().IterationCount;

    public int MaxFailedLogins { get; set; } = 5;
    public TimeSpan Lockout { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>Service clients allowed the client-credentials grant: id -> secret.</summary>
    public Dictionary<string, ClientOptions> Clients { get; set; } = [];
}

public sealed class ClientOptions
{
    public string Secret { get; set; } = "";
}
