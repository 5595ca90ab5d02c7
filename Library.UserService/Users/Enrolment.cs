using Library.Contracts.Events;
using Library.EventBus;
using Library.UserService.Data;
using Library.UserService.PatronGroups;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Library.UserService.Users;

/// <summary>The user enrolled, or why not: the rules' errors (400), or the email already taken (409).</summary>
public sealed record EnrolmentResult(User? User, Dictionary<string, string[]>? Errors = null, ProblemHttpResult? Conflict = null)
{
    /// <summary>How the enrolment endpoints answer it: 201 with the user, 400 or 409.</summary>
    public Results<Created<UserResponse>, ValidationProblem, ProblemHttpResult> Answer() =>
        Errors is not null ? TypedResults.ValidationProblem(Errors)
        : Conflict is not null ? Conflict
        : TypedResults.Created($"/api/users/{User!.Id}", UserResponse.From(User));
}

/// <summary>Creating a user, the same way for self-registration, the desk and the first admin (in the default patron group).</summary>
public static class Enrolment
{
    public static async Task<EnrolmentResult> EnrolAsync(
        UserDbContext db, IPasswordHasher<User> hasher, TimeProvider time, DefaultPatronGroup defaultGroup,
        string? email, string? firstName, string? lastName, string? password, string role, CancellationToken ct)
    {
        var errors = UserRules.Validate(email, firstName, lastName, password, role);
        if (errors.Count > 0)
        {
            return new(null, Errors: errors);
        }

        var patronGroupId = await defaultGroup.GetIdAsync(db, ct);
        var now = time.GetUtcNow();
        var user = new User
        {
            Email = email!.Trim(),
            NormalizedEmail = UserRules.NormalizeEmail(email),
            FirstName = firstName!.Trim(),
            LastName = lastName!.Trim(),
            Role = role,
            PatronGroupId = patronGroupId,
            PasswordHash = "",
            CreatedAt = now,
            UpdatedAt = now,
        };
        user.PasswordHash = hasher.HashPassword(user, password!);
        db.Users.Add(user);
        db.AddEvent(UserEvents.Registered(user));
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException ex) when (ex.InnerException is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation })
        {
            return new(null, Conflict: EmailTaken());
        }
        return new(user, null);
    }

    public static ProblemHttpResult EmailTaken() => TypedResults.Problem(
        statusCode: StatusCodes.Status409Conflict,
        title: "Email already registered",
        detail: "A user with this email address already exists.");
}
