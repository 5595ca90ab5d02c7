using Library.Contracts.Events;
using Library.EventBus;
using Library.UserService.Data;
using Library.UserService.PatronGroups;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Library.UserService.Users;

public sealed record EnrolmentResult(User? User, IResult? Problem);

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
            return new(null, Results.ValidationProblem(errors));
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
            return new(null, EmailTaken());
        }
        return new(user, null);
    }

    public static IResult EmailTaken() => Results.Problem(
        statusCode: StatusCodes.Status409Conflict,
        title: "Email already registered",
        detail: "A user with this email address already exists.");
}
