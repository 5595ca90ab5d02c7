using System.Net.Mail;
using Library.ServiceDefaults;

namespace Library.UserService.Users;

/// <summary>What a valid enrolment looks like: the rules, with no I/O.</summary>
public static class UserRules
{
    public const int MinPasswordLength = 8;
    public const int MaxPasswordLength = 128;
    public const int MaxNameLength = 100;
    public const int MaxEmailLength = 254;
    public const int MaxRoleLength = 20;

    // The messages of the contract's 400 answers, shared by the request records' annotations
    // (checked by the framework before a handler runs) and the rules below (enrolment by the
    // first-admin seeding, which has no request).
    public const string EmailMessage = "A valid email address is required.";
    public const string PasswordTooShort = "The password must have at least 8 characters.";
    public const string PasswordTooLong = "The password must have at most 128 characters.";
    public const string FirstNameRequired = "firstName is required.";
    public const string FirstNameTooLong = "firstName must have at most 100 characters.";
    public const string LastNameRequired = "lastName is required.";
    public const string LastNameTooLong = "lastName must have at most 100 characters.";
    public const string RoleMessage = "The role must be one of: member, librarian, admin.";

    /// <summary>Trimmed and lower-cased: what uniqueness and log-in compare.</summary>
    public static string NormalizeEmail(string email) => email.Trim().ToLowerInvariant();

    public static Dictionary<string, string[]> Validate(string? email, string? firstName, string? lastName, string? password, string? role = null)
    {
        var errors = new Dictionary<string, string[]>();
        if (!IsValidEmail(email))
        {
            errors["email"] = ["A valid email address is required."];
        }
        CheckName(errors, "firstName", firstName);
        CheckName(errors, "lastName", lastName);
        if (password is null || password.Length < MinPasswordLength)
        {
            errors["password"] = [$"The password must have at least {MinPasswordLength} characters."];
        }
        else if (password.Length > MaxPasswordLength)
        {
            errors["password"] = [$"The password must have at most {MaxPasswordLength} characters."];
        }
        if (role is not null && !Roles.IsPersonRole(role))
        {
            errors["role"] = [$"The role must be one of: {string.Join(", ", Roles.People)}."];
        }
        return errors;
    }

    public static bool IsValidEmail(string? email)
    {
        if (string.IsNullOrWhiteSpace(email) || email.Trim().Length > MaxEmailLength)
        {
            return false;
        }
        var trimmed = email.Trim();
        // MailAddress accepts display names ("Ann <a@b.c>"); an address must be only itself.
        return MailAddress.TryCreate(trimmed, out var address)
            && address.Address == trimmed
            && address.Host.Contains('.', StringComparison.Ordinal)
            && !trimmed.Any(c => char.IsWhiteSpace(c) || char.IsControl(c));
    }

    private static void CheckName(Dictionary<string, string[]> errors, string field, string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            errors[field] = [$"{field} is required."];
        }
        else if (value.Trim().Length > MaxNameLength)
        {
            errors[field] = [$"{field} must have at most {MaxNameLength} characters."];
        }
        else if (TextInput.HasControlCharacters(value))
        {
            errors[field] = TextInput.ControlCharactersError(field);
        }
    }
}
