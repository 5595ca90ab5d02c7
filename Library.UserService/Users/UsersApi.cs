using System.ComponentModel.DataAnnotations;
using System.Security.Claims;
using Library.Contracts.Events;
using Library.EventBus;
using Library.ServiceDefaults;
using Library.UserService.Auth;
using Library.UserService.Data;
using Library.UserService.PatronGroups;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace Library.UserService.Users;

/// <summary>Enrolment at the desk: the details a reader registers with (<see cref="RegisterRequest"/>, the same rules) and, for an admin, a role.</summary>
public sealed class CreateUserRequest : RegisterRequest
{
    /// <summary>member when not given; librarian or admin only by an admin (403 otherwise).</summary>
    [MaxLength(UserRules.MaxRoleLength, ErrorMessage = UserRules.RoleMessage)]
    [AllowedValues(null, Roles.Member, Roles.Librarian, Roles.Admin, ErrorMessage = UserRules.RoleMessage)]
    public string? Role { get; init; }
}

public sealed class ChangeRoleRequest
{
    [Required(ErrorMessage = UserRules.RoleMessage)]
    [MaxLength(UserRules.MaxRoleLength, ErrorMessage = UserRules.RoleMessage)]
    [AllowedValues(Roles.Member, Roles.Librarian, Roles.Admin, ErrorMessage = UserRules.RoleMessage)]
    public string? Role { get; init; }
}

public sealed class PrivacyRequest
{
    [Required(ErrorMessage = "keepLoanHistory is required (true or false).")]
    public bool? KeepLoanHistory { get; init; }
}

public static class UsersApi
{
    public static IEndpointRouteBuilder MapUsers(this IEndpointRouteBuilder app)
    {
        // Everyone here is signed in; librarians and admins need more, endpoint by endpoint.
        var users = app.MapGroup("/api/users").WithTags("Users").RequireAuthorization(Policies.Member);
        users.MapGet("/me", Me)
            .WithName("GetMyProfile")
            .WithSummary("The caller's own profile")
            .WithDescription("Any signed-in person. 404 when the account no longer exists.");
        users.MapPut("/me/privacy", ChangePrivacy)
            .WithName("ChangeMyPrivacy")
            .WithSummary("Keep or drop the caller's loan history")
            .WithDescription("Any signed-in person. With keepLoanHistory false, the lending service anonymises the reader's returned loans from then on.");
        users.MapPost("/", Create)
            .RequireAuthorization(Policies.Librarian)
            .WithName("EnrolUser")
            .WithSummary("Enrol a person at the desk")
            .WithDescription("Librarians (members only) and admins (any role). 403 when a librarian gives another role; 400 for bad details; 409 when the email is taken.")
            .ProducesProblem(StatusCodes.Status409Conflict);
        users.MapGet("/", List)
            .RequireAuthorization(Policies.Librarian)
            .WithName("ListUsers")
            .WithSummary("Search users, a page at a time")
            .WithDescription("Librarians and admins. search matches a part of the email, first or last name, case-insensitively; role filters by role.");
        users.MapGet("/{id:guid}", Get)
            .WithName("GetUser")
            .WithSummary("A user's profile")
            .WithDescription("Librarians see anyone; a member only themself (403 for anyone else, known or not). 404 for an unknown ID.");
        users.MapPut("/{id:guid}/role", ChangeRole)
            .RequireAuthorization(Policies.Admin)
            .WithName("ChangeUserRole")
            .WithSummary("Change a user's role")
            .WithDescription("Admins. 409 for the caller's own role (another admin must do it); 404 for an unknown ID.")
            .ProducesProblem(StatusCodes.Status409Conflict);
        users.MapPost("/{id:guid}/deactivate", Deactivate)
            .RequireAuthorization(Policies.Admin)
            .WithName("DeactivateUser")
            .WithSummary("Deactivate a user")
            .WithDescription("Admins. The user can no longer log in or refresh; every refresh token is revoked. 409 for the caller's own account; 404 for an unknown ID.")
            .ProducesProblem(StatusCodes.Status409Conflict);
        return app;
    }

    private static async Task<Results<Ok<UserResponse>, NotFound>> Me(ClaimsPrincipal caller, UserDbContext db, CancellationToken ct)
    {
        var user = await db.Users.AsNoTracking().SingleOrDefaultAsync(u => u.Id == caller.UserId(), ct);
        return user is null ? TypedResults.NotFound() : TypedResults.Ok(UserResponse.From(user));
    }

    /// <summary>
    /// The reader's own privacy choice. Announced (UserUpdated, same transaction) only when it
    /// changes: the lending service anonymises the reader's returned loans from then on.
    /// </summary>
    private static Task<Results<Ok<UserResponse>, NotFound>> ChangePrivacy(PrivacyRequest request, ClaimsPrincipal caller, UserDbContext db, TimeProvider time, ILogger<PrivacyRequest> logger, CancellationToken ct) =>
        db.RetryOnConflictAsync(async Task<Results<Ok<UserResponse>, NotFound>> (token) =>
        {
            var keep = request.KeepLoanHistory!.Value;
            var user = await db.Users.SingleOrDefaultAsync(u => u.Id == caller.UserId(), token);
            if (user is null)
            {
                return TypedResults.NotFound();
            }
            if (user.KeepLoanHistory != keep)
            {
                user.KeepLoanHistory = keep;
                Touch(user, time);
                db.AddEvent(UserEvents.Updated(user));
                await db.SaveChangesAsync(token);
                logger.LogInformation("User {UserId} set keepLoanHistory to {KeepLoanHistory}", user.Id, keep);
            }
            return TypedResults.Ok(UserResponse.From(user));
        }, ct);

    /// <summary>Enrolment at the desk; only an admin may give a role other than member.</summary>
    private static async Task<Results<Created<UserResponse>, ValidationProblem, ProblemHttpResult>> Create(CreateUserRequest request, ClaimsPrincipal caller, UserDbContext db, IPasswordHasher<User> hasher, TimeProvider time, DefaultPatronGroup defaultGroup, CancellationToken ct)
    {
        var role = request.Role ?? Roles.Member;
        if (role != Roles.Member && !caller.IsAdmin())
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden", detail: "Only an admin may enrol a librarian or an admin.");
        }

        var result = await Enrolment.EnrolAsync(db, hasher, time, defaultGroup, request.Email, request.FirstName, request.LastName, request.Password, role, ct);
        return result.Answer();
    }

    private static async Task<Results<Ok<PagedList<UserResponse>>, ValidationProblem>> List(
        UserDbContext db,
        [MaxLength(200, ErrorMessage = "search must have at most 200 characters.")] string? search,
        [MaxLength(UserRules.MaxRoleLength, ErrorMessage = UserRules.RoleMessage)]
        [AllowedValues(null, Roles.Member, Roles.Librarian, Roles.Admin, ErrorMessage = UserRules.RoleMessage)] string? role,
        [Range(1, PageRequest.MaxPage, ErrorMessage = PageRequest.PageMessage)] int? page,
        [Range(1, PageRequest.MaxPageSize, ErrorMessage = PageRequest.PageSizeMessage)] int? pageSize,
        CancellationToken ct)
    {
        var paging = new PageRequest(page ?? 1, pageSize ?? PageRequest.DefaultPageSize);
        // No annotation says "no control characters" (PostgreSQL cannot compare NUL).
        if (TextInput.HasControlCharacters(search))
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["search"] = TextInput.ControlCharactersError("search") });
        }

        var query = db.Users.AsNoTracking();
        if (!string.IsNullOrWhiteSpace(search))
        {
            // A part of the email, first or last name, case-insensitive; % and _ match themselves.
            var pattern = "%" + search.Trim().Replace(@"\", @"\\", StringComparison.Ordinal).Replace("%", @"\%", StringComparison.Ordinal).Replace("_", @"\_", StringComparison.Ordinal) + "%";
            query = query.Where(u => EF.Functions.ILike(u.Email, pattern) || EF.Functions.ILike(u.FirstName, pattern) || EF.Functions.ILike(u.LastName, pattern));
        }
        if (role is not null)
        {
            query = query.Where(u => u.Role == role);
        }

        var total = await query.LongCountAsync(ct);
        var users = await query.OrderBy(u => u.LastName).ThenBy(u => u.FirstName).ThenBy(u => u.Id)
            .Skip(paging.Skip).Take(paging.PageSize).ToListAsync(ct);
        return TypedResults.Ok(new PagedList<UserResponse>(users.Select(UserResponse.From).ToList(), paging.Page, paging.PageSize, total));
    }

    /// <summary>A librarian sees anyone; a member sees only themself (403 for anyone else, known or not).</summary>
    private static async Task<Results<Ok<UserResponse>, NotFound, ProblemHttpResult>> Get(Guid id, ClaimsPrincipal caller, UserDbContext db, CancellationToken ct)
    {
        if (!caller.IsLibrarian() && caller.UserId() != id)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden", detail: "Members may only see their own profile.");
        }
        var user = await db.Users.AsNoTracking().SingleOrDefaultAsync(u => u.Id == id, ct);
        return user is null ? TypedResults.NotFound() : TypedResults.Ok(UserResponse.From(user));
    }

    private static async Task<Results<Ok<UserResponse>, NotFound, ProblemHttpResult>> ChangeRole(Guid id, ChangeRoleRequest request, ClaimsPrincipal caller, UserDbContext db, TimeProvider time, CancellationToken ct)
    {
        if (caller.UserId() == id)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Own role", detail: "An admin cannot change their own role; ask another admin.");
        }

        return await db.RetryOnConflictAsync(async Task<Results<Ok<UserResponse>, NotFound, ProblemHttpResult>> (token) =>
        {
            var user = await db.Users.SingleOrDefaultAsync(u => u.Id == id, token);
            if (user is null)
            {
                return TypedResults.NotFound();
            }
            if (user.Role != request.Role)
            {
                user.Role = request.Role!;
                Touch(user, time);
                db.AddEvent(UserEvents.Updated(user));
                await db.SaveChangesAsync(token);
            }
            return TypedResults.Ok(UserResponse.From(user));
        }, ct);
    }

    /// <summary>A deactivated user can neither log in nor refresh; every refresh token is revoked.</summary>
    private static async Task<Results<Ok<UserResponse>, NotFound, ProblemHttpResult>> Deactivate(Guid id, ClaimsPrincipal caller, UserDbContext db, TimeProvider time, CancellationToken ct)
    {
        if (caller.UserId() == id)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Own account", detail: "An admin cannot deactivate their own account.");
        }
        return await db.RetryOnConflictAsync(async Task<Results<Ok<UserResponse>, NotFound, ProblemHttpResult>> (attempt) =>
        {
            var user = await db.Users.SingleOrDefaultAsync(u => u.Id == id, attempt);
            if (user is null)
            {
                return TypedResults.NotFound();
            }
            if (user.Active)
            {
                var now = time.GetUtcNow();
                await db.Database.CreateExecutionStrategy().ExecuteAsync(async token =>
                {
                    await using var transaction = await db.Database.BeginTransactionAsync(token);
                    user.Active = false;
                    Touch(user, time);
                    db.AddEvent(new UserDeactivated(user.Id, user.Version));
                    await db.SaveChangesAsync(token);
                    await db.RefreshTokens.Where(t => t.UserId == id && t.RevokedAt == null)
                        .ExecuteUpdateAsync(s => s.SetProperty(t => t.RevokedAt, now), token);
                    await transaction.CommitFinishedAsync();
                }, attempt);
            }
            return TypedResults.Ok(UserResponse.From(user));
        }, ct);
    }

    private static void Touch(User user, TimeProvider time)
    {
        user.Version++;
        user.UpdatedAt = time.GetUtcNow();
    }
}
