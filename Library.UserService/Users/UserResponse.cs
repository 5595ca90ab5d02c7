using Library.ServiceDefaults;
using Library.UserService.Data;

namespace Library.UserService.Users;

/// <summary>A user as the API shows it (never the hash, the lockout or the version).</summary>
[OpenApiExample("""{"id":"0197a5b2-7c1e-7000-8000-000000000001","email":"ann.reader@library.example","firstName":"Ann","lastName":"Reader","role":"member","active":true,"createdAt":"2026-12-01T09:30:00+00:00","patronGroupId":"0197a5b2-7c1e-7000-8000-0000000000aa","keepLoanHistory":true}""")]
public sealed record UserResponse(Guid Id, string Email, string FirstName, string LastName, string Role, bool Active, DateTimeOffset CreatedAt, Guid PatronGroupId, bool KeepLoanHistory)
{
    public static UserResponse From(User u) => new(u.Id, u.Email, u.FirstName, u.LastName, u.Role, u.Active, u.CreatedAt, u.PatronGroupId, u.KeepLoanHistory);
}
