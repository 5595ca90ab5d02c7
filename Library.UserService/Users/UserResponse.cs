using Library.UserService.Data;

namespace Library.UserService.Users;

/// <summary>A user as the API shows it (never the hash, the lockout or the version).</summary>
public sealed record UserResponse(Guid Id, string Email, string FirstName, string LastName, string Role, bool Active, DateTimeOffset CreatedAt, Guid PatronGroupId, bool KeepLoanHistory)
{
    public static UserResponse From(User u) => new(u.Id, u.Email, u.FirstName, u.LastName, u.Role, u.Active, u.CreatedAt, u.PatronGroupId, u.KeepLoanHistory);
}
