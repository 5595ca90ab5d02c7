using Library.EventBus;

namespace Library.Contracts.Events;

// Published by the user service. Each carries the reader's whole state and its version, so a
// consumer (the lending service's replica of readers) keeps the newest and ignores the rest.

[EventName("user.registered")]
public sealed record UserRegistered(Guid UserId, string Email, string FirstName, string LastName, string Role, bool Active, long Version)
    : IntegrationEvent, IVersionedEvent;

[EventName("user.updated")]
public sealed record UserUpdated(Guid UserId, string Email, string FirstName, string LastName, string Role, bool Active, long Version)
    : IntegrationEvent, IVersionedEvent;

[EventName("user.deactivated")]
public sealed record UserDeactivated(Guid UserId, long Version) : IntegrationEvent, IVersionedEvent;
