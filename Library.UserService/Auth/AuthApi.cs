using System.ComponentModel.DataAnnotations;
using System.Security.Claims;
using Library.ServiceDefaults;
using Library.UserService.Data;
using Library.UserService.PatronGroups;
using Library.UserService.Users;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Library.UserService.Auth;

/// <summary>
/// A new reader's details. The limits are the columns' (users.email 254, first/last name 100);
/// what no annotation says (a name of spaces or control characters, an address MailAddress
/// refuses) is <see cref="UserRules"/>'s, checked by the enrolment.
/// </summary>
[OpenApiExample("""{"email":"ann.reader@library.example","firstName":"Ann","lastName":"Reader","password":"correct-horse-battery"}""")]
public class RegisterRequest
{
    [Required(ErrorMessage = UserRules.EmailMessage)]
    [MaxLength(UserRules.MaxEmailLength, ErrorMessage = UserRules.EmailMessage)]
    [EmailAddress(ErrorMessage = UserRules.EmailMessage)]
    public string? Email { get; init; }

    [Required(ErrorMessage = UserRules.FirstNameRequired)]
    [MaxLength(UserRules.MaxNameLength, ErrorMessage = UserRules.FirstNameTooLong)]
    public string? FirstName { get; init; }

    [Required(ErrorMessage = UserRules.LastNameRequired)]
    [MaxLength(UserRules.MaxNameLength, ErrorMessage = UserRules.LastNameTooLong)]
    public string? LastName { get; init; }

    [Required(ErrorMessage = UserRules.PasswordTooShort)]
    [MinLength(UserRules.MinPasswordLength, ErrorMessage = UserRules.PasswordTooShort)]
    [MaxLength(UserRules.MaxPasswordLength, ErrorMessage = UserRules.PasswordTooLong)]
    public string? Password { get; init; }
}

/// <summary>
/// Credentials. Missing ones are one "credentials" error (the handler's: the contract names
/// neither field); only the lengths are declared, so an oversized body is refused unread.
/// </summary>
[OpenApiExample("""{"email":"ann.reader@library.example","password":"correct-horse-battery"}""")]
public sealed class LoginRequest
{
    [MaxLength(UserRules.MaxEmailLength, ErrorMessage = UserRules.EmailMessage)]
    public string? Email { get; init; }

    [MaxLength(UserRules.MaxPasswordLength, ErrorMessage = UserRules.PasswordTooLong)]
    public string? Password { get; init; }
}

/// <summary>A refresh token as login and refresh hand it out (86 characters of base64url).</summary>
public sealed class RefreshRequest
{
    public const string Message = "A refresh token is required.";

    [Required(ErrorMessage = Message)]
    [MaxLength(200, ErrorMessage = Message)]
    public string? RefreshToken { get; init; }
}

public static class AuthApi
{
    public static IEndpointRouteBuilder MapAuth(this IEndpointRouteBuilder app)
    {
        var auth = app.MapGroup("/api/auth").WithTags("Auth");
        var anonymous = auth.MapGroup("").AllowAnonymous();
        anonymous.MapPost("/register", Register)
            .WithName("Register")
            .WithSummary("Register as a reader")
            .WithDescription("Anyone. Creates a member (never another role, whatever the body says). 400 for a bad email, a name missing or too long, a password under 8 or over 128 characters; 409 when the email is taken.")
            .ProducesProblem(StatusCodes.Status409Conflict);
        anonymous.MapPost("/login", Login)
            .WithName("LogIn")
            .WithSummary("Log in")
            .WithDescription("Anyone. Answers an access token (15 minutes) and a refresh token. 401 for a wrong email or password, a locked or deactivated account: the same answer for each, so it tells nothing about which emails exist.")
            .ProducesProblem(StatusCodes.Status401Unauthorized);
        anonymous.MapPost("/refresh", Refresh)
            .WithName("RefreshTokens")
            .WithSummary("Trade a refresh token for a new pair")
            .WithDescription("Anyone holding a refresh token. The token is spent; presenting it again revokes its whole family (every token of that log-in). 401 for an unknown, expired, revoked or spent token.")
            .ProducesProblem(StatusCodes.Status401Unauthorized);
        auth.MapPost("/logout", Logout)
            .RequireAuthorization(Policies.Member)
            .WithName("LogOut")
            .WithSummary("Log out")
            .WithDescription("Any signed-in person. Revokes the log-in the refresh token belongs to, if it is the caller's; 204 either way.");
        return app;
    }

    /// <summary>Self-registration: always a member, whatever else the body says.</summary>
    private static async Task<Results<Created<UserResponse>, ValidationProblem, ProblemHttpResult>> Register(RegisterRequest request, UserDbContext db, IPasswordHasher<User> hasher, TimeProvider time, DefaultPatronGroup defaultGroup, CancellationToken ct)
    {
        var result = await Enrolment.EnrolAsync(db, hasher, time, defaultGroup, request.Email, request.FirstName, request.LastName, request.Password, Roles.Member, ct);
        return result.Answer();
    }

    private static async Task<Results<Ok<TokenPair>, ValidationProblem, ProblemHttpResult>> Login(
        LoginRequest request, UserDbContext db, IPasswordHasher<User> hasher, TokenIssuer tokens,
        IOptions<IssuerOptions> options, TimeProvider time, DummyPassword dummy, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(request.Email) || string.IsNullOrEmpty(request.Password))
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["credentials"] = ["Email and password are required."] });
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
        return TypedResults.Ok(pair);
    }

    private static async Task<Results<Ok<TokenPair>, ProblemHttpResult>> Refresh(RefreshRequest request, UserDbContext db, TokenIssuer tokens, IOptions<IssuerOptions> options, TimeProvider time, ILoggerFactory loggers, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var hash = TokenIssuer.Hash(request.RefreshToken!);
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
        return TypedResults.Ok(pair);
    }

    private static async Task<NoContent> Logout(RefreshRequest request, ClaimsPrincipal caller, UserDbContext db, TimeProvider time, CancellationToken ct)
    {
        var hash = TokenIssuer.Hash(request.RefreshToken!);
        var userId = caller.UserId();
        // Only the caller's own token, and the whole log-in it belongs to.
        var familyId = await db.RefreshTokens.Where(t => t.TokenHash == hash && t.UserId == userId).Select(t => (Guid?)t.FamilyId).SingleOrDefaultAsync(ct);
        if (familyId is { } family)
        {
            await RevokeFamilyAsync(db, family, time.GetUtcNow(), ct);
        }
        return TypedResults.NoContent();
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

    private static ProblemHttpResult InvalidCredentials() => TypedResults.Problem(
        statusCode: StatusCodes.Status401Unauthorized,
        title: "Invalid credentials",
        detail: "The email or password is wrong, or the account is locked or deactivated.");

    private static ProblemHttpResult InvalidRefreshToken() => TypedResults.Problem(
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
