using Library.ServiceDefaults;
using Library.UserService.Data;
using Library.UserService.PatronGroups;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace Library.UserService.Users;

/// <summary>
/// Start-up data, run under the migration lock (so once, however many replicas start): the
/// first signing key, the default patron group (PatronGroups:Default), and the first admin from configuration (Library:Admin:Email and
/// Library:Admin:Password, an Aspire secret parameter) when no user has that email yet.
/// </summary>
public static class FirstAdmin
{
    public static async Task SeedAsync(UserDbContext db, IServiceProvider services, CancellationToken ct)
    {
        await services.GetRequiredService<Auth.SigningKeys>().EnsureCurrentAsync(db, ct);
        var defaultGroup = services.GetRequiredService<DefaultPatronGroup>();
        await defaultGroup.EnsureAsync(db, services.GetRequiredService<TimeProvider>(), services.GetRequiredService<ILoggerFactory>().CreateLogger("Library.PatronGroups"), ct);

        var configuration = services.GetRequiredService<IConfiguration>();
        var email = configuration["Library:Admin:Email"];
        var password = configuration["Library:Admin:Password"];
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger("Library.FirstAdmin");
        if (string.IsNullOrWhiteSpace(email) || string.IsNullOrEmpty(password))
        {
            logger.LogInformation("No first admin configured (Library:Admin:Email / Library:Admin:Password)");
            return;
        }

        var normalized = UserRules.NormalizeEmail(email);
        if (await db.Users.AnyAsync(u => u.NormalizedEmail == normalized, ct))
        {
            return;
        }

        var result = await Enrolment.EnrolAsync(
            db, services.GetRequiredService<IPasswordHasher<User>>(), services.GetRequiredService<TimeProvider>(), defaultGroup,
            email, "Library", "Admin", password, Roles.Admin, ct);
        if (result.User is null)
        {
            throw new InvalidOperationException("The configured first admin is invalid: Library:Admin:Email must be an email address and Library:Admin:Password at least 8 characters.");
        }
        logger.LogInformation("Created the first admin {Email}", result.User!.Email);
    }
}
