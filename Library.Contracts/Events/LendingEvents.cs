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

/// <summary>A ready hold's pickup deadline passed: the copy went to the next reader or back to the shelf.</summary>
[EventName("hold.expired")]
public sealed record HoldExpired(Guid HoldId, Guid BookId, Guid UserId, DateTimeOffset ExpiredAt) : IntegrationEvent;

/// <summary>
/// A fine was charged to a reader: <see cref="Kind"/> "overdue" (at check-in) or "lost" (a copy declared lost);
/// money in minor units of <see cref="Currency"/>.
/// </summary>
[EventName("fine.charged")]
public sealed record FineCharged(Guid FineId, Guid UserId, Guid? LoanId, Guid BookId, string Kind, long Amount, string Currency, DateTimeOffset ChargedAt) : IntegrationEvent;

/// <summary>
/// These returned loans no longer name their reader (privacy: anonymised after
/// Circulation:AnonymiseAfterDays, or at return for a reader who keeps no history). Every service
/// that keeps a copy of them forgets the reader too.
/// </summary>
[EventName("loans.anonymised")]
public sealed record LoansAnonymised(IReadOnlyList<Guid> LoanIds) : IntegrationEvent;
