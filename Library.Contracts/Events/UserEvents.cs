using Library.EventBus;

namespace Library.Contracts.Events;

// Published by the user service. Each carries the reader's whole state and its version, so a
// consumer (the lending service's replica of readers) keeps the newest and ignores the rest.
// PatronGroupId and KeepLoanHistory came later: optional, so a message published before them still
// deserializes (a reader keeps their loan history unless they say otherwise).

[EventName("user.registered")]
public sealed record UserRegistered(Guid UserId, string Email, string FirstName, string LastName, string Role, bool Active, long Version, Guid? PatronGroupId = null, bool KeepLoanHistory = true)
    : IntegrationEvent, IVersionedEvent;

[EventName("user.updated")]
public sealed record UserUpdated(Guid UserId, string Email, string FirstName, string LastName, string Role, bool Active, long Version, Guid? PatronGroupId = null, bool KeepLoanHistory = true)
    : IntegrationEvent, IVersionedEvent;

[EventName("user.deactivated")]
public sealed record UserDeactivated(Guid UserId, long Version) : IntegrationEvent, IVersionedEvent;

// Patron groups (the kinds of reader circulation rules are written for), owned by the user
// service. Created and updated carry the group's whole state; its version orders them.

[EventName("patron-group.created")]
public sealed record PatronGroupCreated(Guid PatronGroupId, string Name, long Version) : IntegrationEvent, IVersionedEvent;

[EventName("patron-group.updated")]
public sealed record PatronGroupUpdated(Guid PatronGroupId, string Name, long Version) : IntegrationEvent, IVersionedEvent;

[EventName("patron-group.deleted")]
public sealed record PatronGroupDeleted(Guid PatronGroupId, long Version) : IntegrationEvent, IVersionedEvent;
