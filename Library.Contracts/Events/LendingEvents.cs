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

[EventName("loan.renewed")]
public sealed record LoanRenewed(Guid LoanId, Guid BookId, Guid UserId, DateTimeOffset DueAt, int Renewals) : IntegrationEvent;

/// <summary>Published once per loan, when it passes its due date unreturned.</summary>
[EventName("loan.overdue")]
public sealed record LoanOverdue(Guid LoanId, Guid BookId, Guid UserId, DateTimeOffset DueAt) : IntegrationEvent;

[EventName("hold.placed")]
public sealed record HoldPlaced(Guid HoldId, Guid BookId, Guid UserId, DateTimeOffset PlacedAt) : IntegrationEvent;

/// <summary>A copy is set aside for the reader until <see cref="ReadyUntil"/>.</summary>
[EventName("hold.ready")]
public sealed record HoldReady(Guid HoldId, Guid BookId, Guid UserId, DateTimeOffset ReadyUntil) : IntegrationEvent;
