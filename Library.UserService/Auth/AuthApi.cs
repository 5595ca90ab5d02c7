using System.Security.Claims;
using Library.ServiceDefaults;
using Library.UserService.Data;
using Library.UserService.PatronGroups;
using Library.UserService.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Library.UserService.Auth;

public sealed record RegisterRequest(string? Email, string? FirstName, string? LastName, string? Password);
public sealed record LoginRequest(string? Email, string? Password);
public sealed record RefreshRequest(string? RefreshToken);

public static class AuthApi
{
    public static IEndpointRouteBuilder MapAuth(this IEndpointRouteBuilder app)
    {
        var auth = app.MapGroup("/api/auth").WithTags("Auth");
        auth.MapPost("/register", Register).AllowAnonymous();
        auth.MapPost("/login", Login).AllowAnonymous();
        auth.MapPost("/refresh", Refresh).AllowAnonymous();
        auth.MapPost("/logout", Logout).RequireAuthorization(Policies.Member);
        return app;
    }

    /// <summary>Self-registration: always a member, whatever else the body says.</summary>
    private static async Task<IResult> Register(RegisterRequest request, UserDbContext db, IPasswordHasher<User> hasher, TimeProvider time, DefaultPatronGroup defaultGroup, CancellationToken ct)
    {
        var result = await Enrolment.EnrolAsync(db, hasher, time, defaultGroup, request.Email, request.FirstName, request.LastName, request.Password, Roles.Member, ct);
        return result.Problem ?? Results.Created($"/api/users/{result.User!.Id}", UserResponse.From(result.User));
    }

    private static async Task<IResult> Login(
        LoginRequest request, UserDbContext db, IPasswordHasher<User> hasher, TokenIssuer tokens,
        IOptions<IssuerOptions> options, TimeProvider time, DummyPassword dummy, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(request.Email) || string.IsNullOrEmpty(request.Password))
        {
            return Results.ValidationProblem(new Dictionary<string, string[]> { ["credentials"] = ["Email and password are required."] });
        }

        var email = UserRules.NormalizeEmail(request.Email);
        // No account has an email with a control character (enrolment refuses them), and NUL
        // cannot even be compared in PostgreSQL: such an email is simply unknown.
        var user = TextInput.HasControlCharacters(email) ? null : await db.Users.SingleOrDefaultAsync(u => u.NormalizedEmail == email, ct);
        if (user is null)
        {
            // Spend the same time as a real check, so timing does not tell which emails exist.
            hasher.VerifyHashedPassword(dummy.User, dummy.Hash, request.Password);
            return InvalidCredentials();
        }

        var now = time.GetUtcNow();
        var verdict = hasher.VerifyHashedPassword(user, user.PasswordHash, request.Password);
        if (user.LockedUntil > now || !user.Active)
        {
            return InvalidCredentials();
        }

        if (verdict == PasswordVerificationResult.Failed)
        {
            // One atomic update: concurrent failures all count, and the fifth locks.
            var max = options.Value.MaxFailedLogins;
            var lockUntil = now + options.Value.Lockout;
            await db.Users.Where(u => u.Id == user.Id).ExecuteUpdateAsync(s => s
                .SetProperty(u => u.LockedUntil, u => u.FailedLogins + 1 >= max ? lockUntil : u.LockedUntil)
                .SetProperty(u => u.FailedLogins, u => u.FailedLogins + 1 >= max ? 0 : u.FailedLogins + 1), ct);
            return InvalidCredentials();
        }

        user.FailedLogins = 0;
        user.LockedUntil = null;
        if (verdict == PasswordVerificationResult.SuccessRehashNeeded)
        {
            // The work factor rose since this hash was made.
            user.PasswordHash = hasher.HashPassword(user, request.Password);
        }
        var pair = await IssueAsync(db, tokens, options.Value, time, user, familyId: Guid.CreateVersion7(), ct);
        await db.SaveChangesAsync(ct);
        return Results.Ok(pair);
    }

    private static async Task<IResult> Refresh(RefreshRequest request, UserDbContext db, TokenIssuer tokens, IOptions<IssuerOptions> options, TimeProvider time, ILoggerFactory loggers, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(request.RefreshToken) || request.RefreshToken.Length > 200)
        {
            return Results.ValidationProblem(new Dictionary<string, string[]> { ["refreshToken"] = ["A refresh token is required."] });
        }

        var now = time.GetUtcNow();
        var hash = TokenIssuer.Hash(request.RefreshToken);
        var token = await db.RefreshTokens.AsNoTracking().SingleOrDefaultAsync(t => t.TokenHash == hash, ct);
        if (token is null || token.RevokedAt is not null || token.ExpiresAt <= now)
        {
            return InvalidRefreshToken();
        }

        // Spend it: only one request can, even when two race with the same token.
        var spent = await db.RefreshTokens
            .Where(t => t.Id == token.Id && t.UsedAt == null && t.RevokedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(t => t.UsedAt, now), ct);
        if (spent == 0)
        {
            // Presented again after use: stolen or replayed. Both holders lose the family.
            await RevokeFamilyAsync(db, token.FamilyId, now, ct);
            loggers.CreateLogger("Library.Auth").LogWarning("Refresh token reuse for user {UserId}: family {FamilyId} revoked", token.UserId, token.FamilyId);
            return InvalidRefreshToken();
        }

        var user = await db.Users.SingleAsync(u => u.Id == token.UserId, ct);
        if (!user.Active)
        {
            await RevokeFamilyAsync(db, token.FamilyId, now, ct);
            return InvalidRefreshToken();
        }

        var pair = await IssueAsync(db, tokens, options.Value, time, user, token.FamilyId, ct);
        await db.SaveChangesAsync(ct);
        return Results.Ok(pair);
    }

    private static async Task<IResult> Logout(RefreshRequest request, ClaimsPrincipal caller, UserDbContext db, TimeProvider time, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(request.RefreshToken) || request.RefreshToken.Length > 200)
        {
            return Results.ValidationProblem(new Dictionary<string, string[]> { ["refreshToken"] = ["A refresh token is required."] });
        }

        var hash = TokenIssuer.Hash(request.RefreshToken);
        var userId = caller.UserId();
        // Only the caller's own token, and the whole log-in it belongs to.
        var familyId = await db.RefreshTokens.Where(t => t.TokenHash == hash && t.UserId == userId).Select(t => (Guid?)t.FamilyId).SingleOrDefaultAsync(ct);
        if (familyId is { } family)
        {
            await RevokeFamilyAsync(db, family, time.GetUtcNow(), ct);
        }
        return Results.NoContent();
    }

    private static async Task<TokenPair> IssueAsync(UserDbContext db, TokenIssuer tokens, IssuerOptions options, TimeProvider time, User user, Guid familyId, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var (refresh, hash) = TokenIssuer.NewRefreshToken();
        db.RefreshTokens.Add(new RefreshToken
        {
            UserId = user.Id,
            FamilyId = familyId,
            TokenHash = hash,
            CreatedAt = now,
            ExpiresAt = now + options.RefreshTokenLifetime,
        });
        var access = await tokens.AccessTokenAsync(user, ct);
        return new TokenPair(access, refresh, (int)options.AccessTokenLifetime.TotalSeconds);
    }

    internal static Task<int> RevokeFamilyAsync(UserDbContext db, Guid familyId, DateTimeOffset now, CancellationToken ct) =>
        db.RefreshTokens.Where(t => t.FamilyId == familyId && t.RevokedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(t => t.RevokedAt, now), ct);

    private static IResult InvalidCredentials() => Results.Problem(
        statusCode: StatusCodes.Status401Unauthorized,
        title: "Invalid credentials",
        detail: "The email or password is wrong, or the account is locked or deactivated.");

    private static IResult InvalidRefreshToken() => Results.Problem(
        statusCode: StatusCodes.Status401Unauthorized,
        title: "Invalid refresh token",
        detail: "The refresh token is unknown, expired, revoked or already used. Log in again.");
}

/// <summary>A hash to verify against when the email is unknown (same cost as a real check).</summary>
public sealed class DummyPassword
{
    public DummyPassword(IPasswordHasher<User> hasher)
    {
        User = new User { Email = "", NormalizedEmail = "", FirstName = "", LastName = "", Role = Roles.Member, PasswordHash = "" };
        Hash = hasher.HashPassword(User, Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16)));
    }

    public User User { get; }
    public string Hash { get; }
}
