using Library.EventBus;

namespace Library.Contracts.Events;

// Published by the catalog (book service). Version = the book's row version: a consumer keeps
// the newest state of each title and ignores older ones.

[EventName("book.created")]
public sealed record BookCreated(Guid BookId, string Isbn, string Title, int TotalCopies, long Version) : IntegrationEvent, IVersionedEvent;

[EventName("book.updated")]
public sealed record BookUpdated(Guid BookId, string Isbn, string Title, int TotalCopies, long Version) : IntegrationEvent, IVersionedEvent;

[EventName("book.deleted")]
public sealed record BookDeleted(Guid BookId, long Version) : IntegrationEvent, IVersionedEvent;

[EventName("book.stock-changed")]
public sealed record BookStockChanged(Guid BookId, int TotalCopies, long Version) : IntegrationEvent, IVersionedEvent;
