using Library.Contracts.Events;
using Library.UserService.Data;

namespace Library.UserService.Users;

/// <summary>
/// The user events carry the reader's whole state: built in one place, so a field added to the
/// user (the patron group, the privacy choice) reaches every event that announces them.
/// </summary>
public static class UserEvents
{
    public static UserRegistered Registered(User u) =>
        new(u.Id, u.Email, u.FirstName, u.LastName, u.Role, u.Active, u.Version, u.PatronGroupId, u.KeepLoanHistory);

    public static UserUpdated Updated(User u) =>
        new(u.Id, u.Email, u.FirstName, u.LastName, u.Role, u.Active, u.Version, u.PatronGroupId, u.KeepLoanHistory);
}
