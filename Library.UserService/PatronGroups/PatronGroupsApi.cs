using System.ComponentModel.DataAnnotations;
using Library.Contracts.Events;
using Library.EventBus;
using Library.ServiceDefaults;
using Library.UserService.Data;
using Library.UserService.Users;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Library.UserService.PatronGroups;

/// <summary>
/// A patron group's name and description, within the columns' limits. Blank names, control
/// characters and the trimming are <see cref="PatronGroupRules"/>' (no annotation says them).
/// </summary>
public sealed class PatronGroupRequest
{
    [Required(ErrorMessage = "name is required.")]
    [MaxLength(PatronGroup.MaxNameLength, ErrorMessage = PatronGroupRules.NameTooLong)]
    public string? Name { get; init; }

    [MaxLength(PatronGroup.MaxDescriptionLength, ErrorMessage = PatronGroupRules.DescriptionTooLong)]
    public string? Description { get; init; }
}

public sealed class ChangePatronGroupRequest
{
    [Required(ErrorMessage = "patronGroupId is required.")]
    public Guid? PatronGroupId { get; init; }
}

/// <summary>A patron group as the API shows it.</summary>
public sealed record PatronGroupResponse(Guid Id, string Name, string? Description)
{
    public static PatronGroupResponse From(PatronGroup g) => new(g.Id, g.Name, g.Description);
}

/// <summary>
/// Patron groups: librarians list them and put readers in them; admins create, rename and
/// delete them. Every change is announced through the outbox in the same transaction.
/// </summary>
public static class PatronGroupsApi
{
    public static IEndpointRouteBuilder MapPatronGroups(this IEndpointRouteBuilder app)
    {
        var groups = app.MapGroup("/api/patron-groups").WithTags("Patron groups").RequireAuthorization(Policies.Librarian);
        groups.MapGet("/", List)
            .WithName("ListPatronGroups")
            .WithSummary("Every patron group")
            .WithDescription("Librarians and admins.");
        groups.MapGet("/{id:guid}", Get)
            .WithName("GetPatronGroup")
            .WithSummary("A patron group")
            .WithDescription("Librarians and admins. 404 for an unknown ID.");
        var admin = groups.MapGroup("").RequireAuthorization(Policies.Admin);
        admin.MapPost("/", Create)
            .WithName("CreatePatronGroup")
            .WithSummary("Create a patron group")
            .WithDescription("Admins. 409 when another group has the name (compared without regard to case).")
            .ProducesProblem(StatusCodes.Status409Conflict);
        admin.MapPut("/{id:guid}", Update)
            .WithName("UpdatePatronGroup")
            .WithSummary("Rename or describe a patron group")
            .WithDescription("Admins. 409 when another group has the name, or to rename the default group; 404 for an unknown ID.")
            .ProducesProblem(StatusCodes.Status409Conflict);
        admin.MapDelete("/{id:guid}", Delete)
            .WithName("DeletePatronGroup")
            .WithSummary("Delete a patron group")
            .WithDescription("Admins. Only a group no reader is in, never the default one (409); 404 for an unknown ID.")
            .ProducesProblem(StatusCodes.Status409Conflict);

        app.MapGroup("/api/users").WithTags("Users").RequireAuthorization(Policies.Librarian)
            .MapPut("/{id:guid}/patron-group", ChangeUserGroup)
            .WithName("ChangeUserPatronGroup")
            .WithSummary("Put a reader in a patron group")
            .WithDescription("Librarians and admins. 400 for an unknown group; 404 for an unknown user.");
        return app;
    }

    private static async Task<Ok<List<PatronGroupResponse>>> List(UserDbContext db, CancellationToken ct)
    {
        var groups = await db.PatronGroups.AsNoTracking().OrderBy(g => g.NormalizedName).ToListAsync(ct);
        return TypedResults.Ok(groups.Select(PatronGroupResponse.From).ToList());
    }

    private static async Task<Results<Ok<PatronGroupResponse>, NotFound>> Get(Guid id, UserDbContext db, CancellationToken ct)
    {
        var group = await db.PatronGroups.AsNoTracking().SingleOrDefaultAsync(g => g.Id == id, ct);
        return group is null ? TypedResults.NotFound() : TypedResults.Ok(PatronGroupResponse.From(group));
    }

    private static async Task<Results<Created<PatronGroupResponse>, ValidationProblem, ProblemHttpResult>> Create(PatronGroupRequest request, UserDbContext db, TimeProvider time, CancellationToken ct)
    {
        var errors = PatronGroupRules.Validate(request.Name, request.Description);
        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }
        var now = time.GetUtcNow();
        var group = new PatronGroup
        {
            Name = request.Name!.Trim(),
            NormalizedName = PatronGroup.Normalize(request.Name),
            Description = PatronGroupRules.CleanDescription(request.Description),
            CreatedAt = now,
            UpdatedAt = now,
        };
        db.PatronGroups.Add(group);
        db.AddEvent(new PatronGroupCreated(group.Id, group.Name, group.Version));
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException ex) when (IsUniqueViolation(ex))
        {
            return NameTaken(group.Name);
        }
        return TypedResults.Created($"/api/patron-groups/{group.Id}", PatronGroupResponse.From(group));
    }

    private static async Task<Results<Ok<PatronGroupResponse>, ValidationProblem, NotFound, ProblemHttpResult>> Update(Guid id, PatronGroupRequest request, UserDbContext db, DefaultPatronGroup defaultGroup, TimeProvider time, CancellationToken ct)
    {
        return await db.RetryOnConflictAsync(async Task<Results<Ok<PatronGroupResponse>, ValidationProblem, NotFound, ProblemHttpResult>> (token) =>
        {
            var errors = PatronGroupRules.Validate(request.Name, request.Description);
            if (errors.Count > 0)
            {
                return TypedResults.ValidationProblem(errors);
            }
            var group = await db.PatronGroups.SingleOrDefaultAsync(g => g.Id == id, token);
            if (group is null)
            {
                return TypedResults.NotFound();
            }
            var name = request.Name!.Trim();
            var normalized = PatronGroup.Normalize(name);
            if (defaultGroup.Is(group) && normalized != defaultGroup.NormalizedName)
            {
                return TypedResults.Problem(
                    statusCode: StatusCodes.Status409Conflict,
                    title: "Default patron group",
                    detail: $"'{group.Name}' is the default group new readers get (PatronGroups:Default); it cannot be renamed. Change the configuration first.");
            }
            var description = PatronGroupRules.CleanDescription(request.Description);
            if (group.Name == name && group.Description == description)
            {
                return TypedResults.Ok(PatronGroupResponse.From(group));
            }
            group.Name = name;
            group.NormalizedName = normalized;
            group.Description = description;
            group.Version++;
            group.UpdatedAt = time.GetUtcNow();
            db.AddEvent(new PatronGroupUpdated(group.Id, group.Name, group.Version));
            try
            {
                await db.SaveChangesAsync(token);
            }
            catch (DbUpdateException ex) when (IsUniqueViolation(ex))
            {
                return NameTaken(name);
            }
            return TypedResults.Ok(PatronGroupResponse.From(group));
        }, ct);
    }

    /// <summary>Only a group no user is in, and never the default one.</summary>
    private static async Task<Results<NoContent, NotFound, ProblemHttpResult>> Delete(Guid id, UserDbContext db, DefaultPatronGroup defaultGroup, CancellationToken ct)
    {
        return await db.RetryOnConflictAsync(async Task<Results<NoContent, NotFound, ProblemHttpResult>> (token) =>
        {
            var group = await db.PatronGroups.SingleOrDefaultAsync(g => g.Id == id, token);
            if (group is null)
            {
                return TypedResults.NotFound();
            }
            if (defaultGroup.Is(group))
            {
                return TypedResults.Problem(
                    statusCode: StatusCodes.Status409Conflict,
                    title: "Default patron group",
                    detail: $"'{group.Name}' is the default group new readers get (PatronGroups:Default); it cannot be deleted.");
            }
            if (await db.Users.AnyAsync(u => u.PatronGroupId == id, token))
            {
                return GroupInUse(group.Name);
            }
            db.PatronGroups.Remove(group);
            db.AddEvent(new PatronGroupDeleted(group.Id, group.Version + 1));
            try
            {
                await db.SaveChangesAsync(token);
            }
            catch (DbUpdateException ex) when (ex.InnerException is PostgresException { SqlState: PostgresErrorCodes.ForeignKeyViolation })
            {
                // A reader was put in the group after the check above.
                return GroupInUse(group.Name);
            }
            return TypedResults.NoContent();
        }, ct);
    }

    private static async Task<Results<Ok<UserResponse>, ValidationProblem, NotFound>> ChangeUserGroup(Guid id, ChangePatronGroupRequest request, UserDbContext db, TimeProvider time, CancellationToken ct)
    {
        return await db.RetryOnConflictAsync(async Task<Results<Ok<UserResponse>, ValidationProblem, NotFound>> (token) =>
        {
            var groupId = request.PatronGroupId!.Value;
            var user = await db.Users.SingleOrDefaultAsync(u => u.Id == id, token);
            if (user is null)
            {
                return TypedResults.NotFound();
            }
            if (user.PatronGroupId == groupId)
            {
                return TypedResults.Ok(UserResponse.From(user));
            }
            if (!await db.PatronGroups.AnyAsync(g => g.Id == groupId, token))
            {
                return UnknownGroup(groupId);
            }
            user.PatronGroupId = groupId;
            user.Version++;
            user.UpdatedAt = time.GetUtcNow();
            db.AddEvent(UserEvents.Updated(user));
            try
            {
                await db.SaveChangesAsync(token);
            }
            catch (DbUpdateException ex) when (ex.InnerException is PostgresException { SqlState: PostgresErrorCodes.ForeignKeyViolation })
            {
                // The group was deleted after the check above.
                return UnknownGroup(groupId);
            }
            return TypedResults.Ok(UserResponse.From(user));
        }, ct);
    }

    private static bool IsUniqueViolation(DbUpdateException ex) =>
        ex.InnerException is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation };

    private static ProblemHttpResult NameTaken(string name) => TypedResults.Problem(
        statusCode: StatusCodes.Status409Conflict,
        title: "Patron group name taken",
        detail: $"A patron group named '{name}' already exists (names are compared without regard to case).");

    private static ProblemHttpResult GroupInUse(string name) => TypedResults.Problem(
        statusCode: StatusCodes.Status409Conflict,
        title: "Patron group in use",
        detail: $"Readers are in the patron group '{name}'; move them to another group before deleting it.");

    private static ValidationProblem UnknownGroup(Guid groupId) => TypedResults.ValidationProblem(
        new Dictionary<string, string[]> { ["patronGroupId"] = [$"There is no patron group {groupId}."] });
}
