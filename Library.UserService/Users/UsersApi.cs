using System.Security.Claims;
using Library.Contracts.Events;
using Library.EventBus;
using Library.ServiceDefaults;
using Library.UserService.Auth;
using Library.UserService.Data;
using Library.UserService.PatronGroups;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace Library.UserService.Users;

public sealed record CreateUserRequest(string? Email, string? FirstName, string? LastName, string? Password, string? Role);
public sealed record ChangeRoleRequest(string? Role);
public sealed record PrivacyRequest(bool? KeepLoanHistory);

public static class UsersApi
{
    public static IEndpointRouteBuilder MapUsers(this IEndpointRouteBuilder app)
    {
        var users = app.MapGroup("/api/users").WithTags("Users");
        users.MapGet("/me", Me).RequireAuthorization(Policies.Member);
        users.MapPut("/me/privacy", ChangePrivacy).RequireAuthorization(Policies.Member);
        users.MapPost("/", Create).RequireAuthorization(Policies.Librarian);
        users.MapGet("/", List).RequireAuthorization(Policies.Librarian);
        users.MapGet("/{id:guid}", Get).RequireAuthorization(Policies.Member);
        users.MapPut("/{id:guid}/role", ChangeRole).RequireAuthorization(Policies.Admin);
        users.MapPost("/{id:guid}/deactivate", Deactivate).RequireAuthorization(Policies.Admin);
        return app;
    }

    private static async Task<IResult> Me(ClaimsPrincipal caller, UserDbContext db, CancellationToken ct)
    {
        var user = await db.Users.AsNoTracking().SingleOrDefaultAsync(u => u.Id == caller.UserId(), ct);
        return user is null ? Results.NotFound() : Results.Ok(UserResponse.From(user));
    }

    /// <summary>
    /// The reader's own privacy choice. Announced (UserUpdated, same transaction) only when it
    /// changes: the lending service anonymises the reader's returned loans from then on.
    /// </summary>
    private static async Task<IResult> ChangePrivacy(PrivacyRequest request, ClaimsPrincipal caller, UserDbContext db, TimeProvider time, ILogger<PrivacyRequest> logger, CancellationToken ct)
    {
        if (request.KeepLoanHistory is not { } keep)
        {
            return Results.ValidationProblem(new Dictionary<string, string[]> { ["keepLoanHistory"] = ["keepLoanHistory is required (true or false)."] });
        }
        var user = await db.Users.SingleOrDefaultAsync(u => u.Id == caller.UserId(), ct);
        if (user is null)
        {
            return Results.NotFound();
        }
        if (user.KeepLoanHistory != keep)
        {
            user.KeepLoanHistory = keep;
            Touch(user, time);
            db.AddEvent(UserEvents.Updated(user));
            await db.SaveChangesAsync(ct);
            logger.LogInformation("User {UserId} set keepLoanHistory to {KeepLoanHistory}", user.Id, keep);
        }
        return Results.Ok(UserResponse.From(user));
    }

    /// <summary>Enrolment at the desk; only an admin may give a role other than member.</summary>
    private static async Task<IResult> Create(CreateUserRequest request, ClaimsPrincipal caller, UserDbContext db, IPasswordHasher<User> hasher, TimeProvider time, DefaultPatronGroup defaultGroup, CancellationToken ct)
    {
        var role = request.Role ?? Roles.Member;
        if (Roles.IsPersonRole(role) && role != Roles.Member && !caller.IsAdmin())
        {
            return Results.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden", detail: "Only an admin may enrol a librarian or an admin.");
        }

        var result = await Enrolment.EnrolAsync(db, hasher, time, defaultGroup, request.Email, request.FirstName, request.LastName, request.Password, role, ct);
        return result.Problem ?? Results.Created($"/api/users/{result.User!.Id}", UserResponse.From(result.User));
    }

    private static async Task<IResult> List(UserDbContext db, string? search, string? role, int? page, int? pageSize, CancellationToken ct)
    {
        if (!PageRequest.TryCreate(page, pageSize, out var paging, out var problem))
        {
            return problem!;
        }
        if (role is not null && !Roles.IsPersonRole(role))
        {
            return Results.ValidationProblem(new Dictionary<string, string[]> { ["role"] = [$"The role must be one of: {string.Join(", ", Roles.People)}."] });
        }
        if (search is { Length: > 200 })
        {
            return Results.ValidationProblem(new Dictionary<string, string[]> { ["search"] = ["search must have at most 200 characters."] });
        }
        if (TextInput.HasControlCharacters(search))
        {
            return Results.ValidationProblem(new Dictionary<string, string[]> { ["search"] = TextInput.ControlCharactersError("search") });
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
        return Results.Ok(new PagedList<UserResponse>(users.Select(UserResponse.From).ToList(), paging.Page, paging.PageSize, total));
    }

    /// <summary>A librarian sees anyone; a member sees only themself (403 for anyone else, known or not).</summary>
    private static async Task<IResult> Get(Guid id, ClaimsPrincipal caller, UserDbContext db, CancellationToken ct)
    {
        if (!caller.IsLibrarian() && caller.UserId() != id)
        {
            return Results.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden", detail: "Members may only see their own profile.");
        }
        var user = await db.Users.AsNoTracking().SingleOrDefaultAsync(u => u.Id == id, ct);
        return user is null ? Results.NotFound() : Results.Ok(UserResponse.From(user));
    }

    private static async Task<IResult> ChangeRole(Guid id, ChangeRoleRequest request, ClaimsPrincipal caller, UserDbContext db, TimeProvider time, CancellationToken ct)
    {
        if (!Roles.IsPersonRole(request.Role))
        {
            return Results.ValidationProblem(new Dictionary<string, string[]> { ["role"] = [$"The role must be one of: {string.Join(", ", Roles.People)}."] });
        }
        if (caller.UserId() == id)
        {
            return Results.Problem(statusCode: StatusCodes.Status409Conflict, title: "Own role", detail: "An admin cannot change their own role; ask another admin.");
        }

        var user = await db.Users.SingleOrDefaultAsync(u => u.Id == id, ct);
        if (user is null)
        {
            return Results.NotFound();
        }
        if (user.Role != request.Role)
        {
            user.Role = request.Role!;
            Touch(user, time);
            db.AddEvent(UserEvents.Updated(user));
            await db.SaveChangesAsync(ct);
        }
        return Results.Ok(UserResponse.From(user));
    }

    /// <summary>A deactivated user can neither log in nor refresh; every refresh token is revoked.</summary>
    private static async Task<IResult> Deactivate(Guid id, ClaimsPrincipal caller, UserDbContext db, TimeProvider time, CancellationToken ct)
    {
        if (caller.UserId() == id)
        {
            return Results.Problem(statusCode: StatusCodes.Status409Conflict, title: "Own account", detail: "An admin cannot deactivate their own account.");
        }
        var user = await db.Users.SingleOrDefaultAsync(u => u.Id == id, ct);
        if (user is null)
        {
            return Results.NotFound();
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
                await transaction.CommitAsync(token);
            }, ct);
        }
        return Results.Ok(UserResponse.From(user));
    }

    private static void Touch(User user, TimeProvider time)
    {
        user.Version++;
        user.UpdatedAt = time.GetUtcNow();
    }
}
