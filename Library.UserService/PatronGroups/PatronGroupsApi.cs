using Library.Contracts.Events;
using Library.EventBus;
using Library.ServiceDefaults;
using Library.UserService.Data;
using Library.UserService.Users;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Library.UserService.PatronGroups;

public sealed record PatronGroupRequest(string? Name, string? Description);
public sealed record ChangePatronGroupRequest(Guid? PatronGroupId);

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
        var groups = app.MapGroup("/api/patron-groups").WithTags("Patron groups");
        groups.MapGet("/", List).RequireAuthorization(Policies.Librarian);
        groups.MapGet("/{id:guid}", Get).RequireAuthorization(Policies.Librarian);
        groups.MapPost("/", Create).RequireAuthorization(Policies.Admin);
        groups.MapPut("/{id:guid}", Update).RequireAuthorization(Policies.Admin);
        groups.MapDelete("/{id:guid}", Delete).RequireAuthorization(Policies.Admin);

        app.MapPut("/api/users/{id:guid}/patron-group", ChangeUserGroup).WithTags("Users").RequireAuthorization(Policies.Librarian);
        return app;
    }

    private static async Task<IResult> List(UserDbContext db, CancellationToken ct)
    {
        var groups = await db.PatronGroups.AsNoTracking().OrderBy(g => g.NormalizedName).ToListAsync(ct);
        return Results.Ok(groups.Select(PatronGroupResponse.From).ToList());
    }

    private static async Task<IResult> Get(Guid id, UserDbContext db, CancellationToken ct)
    {
        var group = await db.PatronGroups.AsNoTracking().SingleOrDefaultAsync(g => g.Id == id, ct);
        return group is null ? Results.NotFound() : Results.Ok(PatronGroupResponse.From(group));
    }

    private static async Task<IResult> Create(PatronGroupRequest request, UserDbContext db, TimeProvider time, CancellationToken ct)
    {
        var errors = PatronGroupRules.Validate(request.Name, request.Description);
        if (errors.Count > 0)
        {
            return Results.ValidationProblem(errors);
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
        return Results.Created($"/api/patron-groups/{group.Id}", PatronGroupResponse.From(group));
    }

    private static async Task<IResult> Update(Guid id, PatronGroupRequest request, UserDbContext db, DefaultPatronGroup defaultGroup, TimeProvider time, CancellationToken ct)
    {
        var errors = PatronGroupRules.Validate(request.Name, request.Description);
        if (errors.Count > 0)
        {
            return Results.ValidationProblem(errors);
        }
        var group = await db.PatronGroups.SingleOrDefaultAsync(g => g.Id == id, ct);
        if (group is null)
        {
            return Results.NotFound();
        }
        var name = request.Name!.Trim();
        var normalized = PatronGroup.Normalize(name);
        if (defaultGroup.Is(group) && normalized != defaultGroup.NormalizedName)
        {
            return Results.Problem(
                statusCode: StatusCodes.Status409Conflict,
                title: "Default patron group",
                detail: $"'{group.Name}' is the default group new readers get (PatronGroups:Default); it cannot be renamed. Change the configuration first.");
        }
        var description = PatronGroupRules.CleanDescription(request.Description);
        if (group.Name == name && group.Description == description)
        {
            return Results.Ok(PatronGroupResponse.From(group));
        }
        group.Name = name;
        group.NormalizedName = normalized;
        group.Description = description;
        group.Version++;
        group.UpdatedAt = time.GetUtcNow();
        db.AddEvent(new PatronGroupUpdated(group.Id, group.Name, group.Version));
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException ex) when (IsUniqueViolation(ex))
        {
            return NameTaken(name);
        }
        return Results.Ok(PatronGroupResponse.From(group));
    }

    /// <summary>Only a group no user is in, and never the default one.</summary>
    private static async Task<IResult> Delete(Guid id, UserDbContext db, DefaultPatronGroup defaultGroup, CancellationToken ct)
    {
        var group = await db.PatronGroups.SingleOrDefaultAsync(g => g.Id == id, ct);
        if (group is null)
        {
            return Results.NotFound();
        }
        if (defaultGroup.Is(group))
        {
            return Results.Problem(
                statusCode: StatusCodes.Status409Conflict,
                title: "Default patron group",
                detail: $"'{group.Name}' is the default group new readers get (PatronGroups:Default); it cannot be deleted.");
        }
        if (await db.Users.AnyAsync(u => u.PatronGroupId == id, ct))
        {
            return GroupInUse(group.Name);
        }
        db.PatronGroups.Remove(group);
        db.AddEvent(new PatronGroupDeleted(group.Id, group.Version + 1));
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException ex) when (ex.InnerException is PostgresException { SqlState: PostgresErrorCodes.ForeignKeyViolation })
        {
            // A reader was put in the group after the check above.
            return GroupInUse(group.Name);
        }
        return Results.NoContent();
    }

    private static async Task<IResult> ChangeUserGroup(Guid id, ChangePatronGroupRequest request, UserDbContext db, TimeProvider time, CancellationToken ct)
    {
        if (request.PatronGroupId is not { } groupId)
        {
            return Results.ValidationProblem(new Dictionary<string, string[]> { ["patronGroupId"] = ["patronGroupId is required."] });
        }
        var user = await db.Users.SingleOrDefaultAsync(u => u.Id == id, ct);
        if (user is null)
        {
            return Results.NotFound();
        }
        if (user.PatronGroupId == groupId)
        {
            return Results.Ok(UserResponse.From(user));
        }
        if (!await db.PatronGroups.AnyAsync(g => g.Id == groupId, ct))
        {
            return UnknownGroup(groupId);
        }
        user.PatronGroupId = groupId;
        user.Version++;
        user.UpdatedAt = time.GetUtcNow();
        db.AddEvent(UserEvents.Updated(user));
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException ex) when (ex.InnerException is PostgresException { SqlState: PostgresErrorCodes.ForeignKeyViolation })
        {
            // The group was deleted after the check above.
            return UnknownGroup(groupId);
        }
        return Results.Ok(UserResponse.From(user));
    }

    private static bool IsUniqueViolation(DbUpdateException ex) =>
        ex.InnerException is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation };

    private static IResult NameTaken(string name) => Results.Problem(
        statusCode: StatusCodes.Status409Conflict,
        title: "Patron group name taken",
        detail: $"A patron group named '{name}' already exists (names are compared without regard to case).");

    private static IResult GroupInUse(string name) => Results.Problem(
        statusCode: StatusCodes.Status409Conflict,
        title: "Patron group in use",
        detail: $"Readers are in the patron group '{name}'; move them to another group before deleting it.");

    private static IResult UnknownGroup(Guid groupId) => Results.ValidationProblem(
        new Dictionary<string, string[]> { ["patronGroupId"] = [$"There is no patron group {groupId}."] });
}
