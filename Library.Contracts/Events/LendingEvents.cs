using Library.EventBus;

namespace Library.Contracts.Events;

// Published by the lending service, the one authority on who has which copy.

[EventName("loan.created")]
public sealed record LoanCreated(Guid LoanId, Guid BookId, Guid UserId, DateTimeOffset BorrowedAt, DateTimeOffset DueAt) : IntegrationEvent;

[EventName("loan.returned")]
public sealed record LoanReturned(Guid LoanId, Guid BookId, Guid UserId, DateTimeOffset ReturnedAt) : IntegrationEvent;

/// <summary>
/// A title's availability after any change to it. Version grows with every change of that title,
/// so the catalog's read model keeps the newest whatever the delivery order.
/// </summary>
[EventName("book.availability-changed")]
public sealed record BookAvailabilityChanged(Guid BookId, int TotalCopies, int AvailableCopies, DateTimeOffset? NextAvailableAt, long Version)
    : IntegrationEvent, IVersionedEvent;
