namespace Library.EventBus;

/// <summary>
/// The Library's event routing: which service's queue receives which events (see
/// ARCHITECTURE.md, "Who owns what"). Every service declares all of it on connecting, so no
/// event is published into the void because its consumer has not started yet.
/// </summary>
public static class LibraryTopology
{
    public static EventBusTopology Create() => new EventBusTopology()
        // Lending keeps replicas of titles, readers and their patron groups, and turns its own
        // events into readers' notices (Library.LendingService/Notices).
        .Queue("lendingservice",
            "book.created", "book.updated", "book.deleted", "book.stock-changed",
            "user.registered", "user.updated", "user.deactivated",
            "patron-group.created", "patron-group.updated", "patron-group.deleted",
            "hold.ready", "hold.expired", "fine.charged", "loan.overdue", "loans.anonymised")
        // The catalog shows availability and learns loan history for recommendations (and
        // forgets the readers of anonymised loans).
        .Queue("bookservice",
            "book.availability-changed", "loan.created", "loan.returned", "loans.anonymised");
}
